//! The strict JSON check every token header and claims set passes before any member is read.
//!
//! The typed readers ([`super::jws`], [`super::claims`]) take only the members the filter uses
//! and skip the rest; a skipping reader is lenient where other readers of the same token (Jira
//! plugins, Envoy's `jwt_authn`, audit tools) are strict, and such differences are where
//! parser-differential attacks live. So the whole text is checked first, members the filter
//! never reads included, and is refused when:
//!
//! - it is not UTF-8, not RFC 8259 JSON, or not a single object;
//! - any object, at any depth, names a member twice (names compared after unescaping, so
//!   `"a"` and `"\u0061"` are the same name);
//! - a string has an invalid escape or an escaped surrogate that is not part of a pair;
//! - a number lies outside ±(2^53 − 1), the range in which every JSON reader agrees on an
//!   integer's exact value (`1e400`, `2^64` and `9007199254740993` are refused; `1.5` is not);
//! - containers nest deeper than [`MAX_DEPTH`] levels, the top-level object counting as one
//!   (Entra ID tokens nest at most 3: the claims object, an array or object claim, and an
//!   object inside it).
//!
//! The check is one forward pass without recursion beyond [`MAX_DEPTH`]; the only allocations
//! are one list of member names (borrowed from the input) and the unescaped copy of a member
//! name that contains escapes. String text is skipped eight bytes at a time. Duplicate names are
//! found per object by comparing the few names pairwise (a one-word fingerprint first, the text
//! only when the fingerprints are equal), or by sorting them when an object has many.

use std::borrow::Cow;

/// Deepest container nesting accepted; the top-level object is level 1.
pub const MAX_DEPTH: usize = 8;
/// Largest magnitude a number may have: 2^53 − 1.
pub const MAX_EXACT_INTEGER: u64 = 9_007_199_254_740_991;
/// Objects with more members than this find duplicates by sorting instead of pairwise.
const PAIRWISE_LIMIT: usize = 16;

/// Why a text failed the strict check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDefect {
    /// Not UTF-8.
    NotUtf8,
    /// Not JSON (RFC 8259), or more than one value.
    Syntax,
    /// Valid JSON, but not an object.
    NotAnObject,
    /// An object names a member twice.
    DuplicateMember,
    /// A backslash escape that JSON does not define, or a `\u` without four hex digits.
    BadEscape,
    /// A `\uD800`–`\uDFFF` escape that is not a high surrogate followed by a low one.
    UnpairedSurrogate,
    /// A number outside ±[`MAX_EXACT_INTEGER`].
    NumberOutOfRange,
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// Checks that `bytes` is one JSON object meeting every rule of the module, and returns it as
/// text for the typed reader.
pub fn check_object(bytes: &[u8]) -> Result<&str, JsonDefect> {
    let text = std::str::from_utf8(bytes).map_err(|_| JsonDefect::NotUtf8)?;
    let mut reader = Reader {
        text,
        bytes,
        pos: 0,
        // Entra ID claims have about 20 members: one allocation for the common case.
        names: Vec::with_capacity(32),
    };
    reader.skip_whitespace();
    match reader.peek() {
        Some(b'{') => reader.object(0)?,
        Some(_) => {
            reader.value(0)?;
            reader.skip_whitespace();
            return Err(if reader.peek().is_none() {
                JsonDefect::NotAnObject
            } else {
                JsonDefect::Syntax
            });
        }
        None => return Err(JsonDefect::Syntax),
    }
    reader.skip_whitespace();
    if reader.peek().is_some() {
        return Err(JsonDefect::Syntax);
    }
    Ok(text)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Member names of the objects being read, innermost object last, each after its
    /// [`fingerprint`].
    names: Vec<(u64, Cow<'a, str>)>,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn advance(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.advance();
        Some(byte)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.advance();
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonDefect> {
        if self.next_byte() == Some(byte) {
            Ok(())
        } else {
            Err(JsonDefect::Syntax)
        }
    }

    /// A value of a container at nesting level `depth`.
    fn value(&mut self, depth: usize) -> Result<(), JsonDefect> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(false).map(drop),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(JsonDefect::Syntax),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonDefect> {
        let end = self.pos.saturating_add(word.len());
        if self.bytes.get(self.pos..end) != Some(word) {
            return Err(JsonDefect::Syntax);
        }
        self.pos = end;
        Ok(())
    }

    /// An object starting at `{`, inside a container at level `depth`.
    fn object(&mut self, depth: usize) -> Result<(), JsonDefect> {
        let depth = deeper(depth)?;
        self.advance();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.advance();
            return Ok(());
        }
        let first_name = self.names.len();
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(JsonDefect::Syntax);
            }
            let name = self.string(true)?;
            self.names.push((fingerprint(&name), name));
            self.skip_whitespace();
            self.expect(b':')?;
            self.value(depth)?;
            self.skip_whitespace();
            match self.next_byte() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err(JsonDefect::Syntax),
            }
        }
        let distinct = self
            .names
            .get_mut(first_name..)
            .is_none_or(|names| all_distinct(names));
        self.names.truncate(first_name);
        if distinct {
            Ok(())
        } else {
            Err(JsonDefect::DuplicateMember)
        }
    }

    /// An array starting at `[`, inside a container at level `depth`.
    fn array(&mut self, depth: usize) -> Result<(), JsonDefect> {
        let depth = deeper(depth)?;
        self.advance();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.advance();
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_whitespace();
            match self.next_byte() {
                Some(b',') => {}
                Some(b']') => return Ok(()),
                _ => return Err(JsonDefect::Syntax),
            }
        }
    }

    /// A string starting at `"`. With `keep`, returns its unescaped text (borrowed when it has
    /// no escapes); without, only checks it and returns nothing useful.
    fn string(&mut self, keep: bool) -> Result<Cow<'a, str>, JsonDefect> {
        self.advance();
        let start = self.pos;
        // The common case: no escapes, the text is a slice of the input.
        let stop = self.skip_plain_run()?;
        let end = self.pos;
        self.advance();
        if stop == b'"' {
            let text = self.slice(start, end)?;
            return Ok(Cow::Borrowed(if keep { text } else { "" }));
        }
        if stop != b'\\' {
            return Err(JsonDefect::Syntax);
        }
        let mut unescaped = if keep {
            Some(String::from(self.slice(start, end)?))
        } else {
            None
        };
        self.escape(unescaped.as_mut())?;
        loop {
            let run_start = self.pos;
            let stop = self.skip_plain_run()?;
            if let Some(out) = unescaped.as_mut() {
                out.push_str(self.slice(run_start, self.pos)?);
            }
            self.advance();
            match stop {
                b'"' => return Ok(unescaped.map_or(Cow::Borrowed(""), Cow::Owned)),
                b'\\' => self.escape(unescaped.as_mut())?,
                _ => return Err(JsonDefect::Syntax),
            }
        }
    }

    /// Moves to the next `"`, backslash or control character inside a string and returns it.
    /// Eight bytes at a time: most of a token's JSON is plain string text.
    fn skip_plain_run(&mut self) -> Result<u8, JsonDefect> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let mut chunks = rest.chunks_exact(8);
        let mut skipped = 0usize;
        for chunk in chunks.by_ref() {
            let word = chunk.try_into().map_or(0, u64::from_le_bytes);
            if may_stop_string(word) {
                break;
            }
            skipped = skipped.saturating_add(8);
        }
        let tail = rest.get(skipped..).unwrap_or_default();
        let offset = tail
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(JsonDefect::Syntax)?;
        self.pos = self.pos.saturating_add(skipped).saturating_add(offset);
        tail.get(offset).copied().ok_or(JsonDefect::Syntax)
    }

    /// The text between two byte offsets that are known to sit next to ASCII bytes (so on
    /// character boundaries).
    fn slice(&self, start: usize, end: usize) -> Result<&'a str, JsonDefect> {
        self.text.get(start..end).ok_or(JsonDefect::Syntax)
    }

    /// One escape, after its backslash.
    fn escape(&mut self, out: Option<&mut String>) -> Result<(), JsonDefect> {
        let c = match self.next_byte() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => self.unicode_escape()?,
            _ => return Err(JsonDefect::BadEscape),
        };
        if let Some(out) = out {
            out.push(c);
        }
        Ok(())
    }

    /// A `\u` escape after its `u`, with the low surrogate's escape when it is a high one.
    fn unicode_escape(&mut self) -> Result<char, JsonDefect> {
        let unit = self.hex4()?;
        match unit {
            0xD800..=0xDBFF => {
                if self.next_byte() != Some(b'\\') || self.next_byte() != Some(b'u') {
                    return Err(JsonDefect::UnpairedSurrogate);
                }
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(JsonDefect::UnpairedSurrogate);
                }
                // Added, not or-ed: the high surrogate's ten bits reach bit 16, so `0x1_0000 | …`
                // would turn U+20000 into U+10000.
                let code = 0x1_0000u32
                    .wrapping_add((unit & 0x3FF).wrapping_shl(10))
                    .wrapping_add(low & 0x3FF);
                char::from_u32(code).ok_or(JsonDefect::UnpairedSurrogate)
            }
            0xDC00..=0xDFFF => Err(JsonDefect::UnpairedSurrogate),
            _ => char::from_u32(unit).ok_or(JsonDefect::BadEscape),
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonDefect> {
        let mut unit = 0u32;
        for _ in 0..4 {
            let digit = self
                .next_byte()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(JsonDefect::BadEscape)?;
            unit = unit.wrapping_shl(4) | digit;
        }
        Ok(unit)
    }

    /// A number: RFC 8259 grammar, and a magnitude of at most [`MAX_EXACT_INTEGER`].
    fn number(&mut self) -> Result<(), JsonDefect> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.advance();
        }
        let magnitude_start = self.pos;
        match self.next_byte() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(JsonDefect::Syntax),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.advance();
            integer = false;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.advance();
            integer = false;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.advance();
            }
            self.required_digits()?;
        }
        let in_range = if integer {
            // At most 16 digits: anything longer is beyond 2^53 without parsing it.
            let magnitude = self.slice(magnitude_start, self.pos)?;
            magnitude.len() <= 16
                && magnitude
                    .parse::<u64>()
                    .is_ok_and(|m| m <= MAX_EXACT_INTEGER)
        } else {
            // Rust's float grammar accepts every JSON number; a decimal too large for f64
            // becomes infinity, which is out of range too.
            let literal = self.slice(start, self.pos)?;
            literal
                .parse::<f64>()
                .is_ok_and(|v| v.abs() <= MAX_EXACT_INTEGER as f64)
        };
        if in_range {
            Ok(())
        } else {
            Err(JsonDefect::NumberOutOfRange)
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.advance();
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonDefect> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(JsonDefect::Syntax);
        }
        self.digits();
        Ok(())
    }
}

/// True when any of the eight bytes in `word` is `"`, a backslash or below 0x20 (the classic
/// "has a byte less than n" bit trick, exact for whether any byte matches).
fn may_stop_string(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES.wrapping_mul(n)) & !w & HIGH_BITS != 0;
    below(word ^ ONES.wrapping_mul(u64::from(b'"')), 1)
        || below(word ^ ONES.wrapping_mul(u64::from(b'\\')), 1)
        || below(word, 0x20)
}

/// The nesting level inside a new container opened at level `depth`.
fn deeper(depth: usize) -> Result<usize, JsonDefect> {
    match depth.checked_add(1) {
        Some(inner) if inner <= MAX_DEPTH => Ok(inner),
        _ => Err(JsonDefect::TooDeep),
    }
}

/// A name's length and first seven bytes in one word: equal names have equal fingerprints, and
/// most different names differ in it, so names are compared as text only when it is equal.
fn fingerprint(name: &str) -> u64 {
    let mut prefix = [0u8; 8];
    for (slot, byte) in prefix.iter_mut().zip(name.bytes().take(7)) {
        *slot = byte;
    }
    let length = u8::try_from(name.len()).unwrap_or(u8::MAX);
    if let Some(last) = prefix.last_mut() {
        *last = length;
    }
    u64::from_le_bytes(prefix)
}

/// True when no two names are equal. Reorders `names` when there are many.
fn all_distinct(names: &mut [(u64, Cow<'_, str>)]) -> bool {
    if names.len() <= PAIRWISE_LIMIT {
        let mut rest: &[(u64, Cow<'_, str>)] = names;
        while let Some((name, tail)) = rest.split_first() {
            if tail
                .iter()
                .any(|other| other.0 == name.0 && other.1 == name.1)
            {
                return false;
            }
            rest = tail;
        }
        return true;
    }
    names.sort_unstable();
    !names.iter().zip(names.iter().skip(1)).any(|(a, b)| a == b)
}

#[cfg(test)]
mod tests;
