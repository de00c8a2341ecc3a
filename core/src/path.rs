//! Request path canonicalisation: the ACL only ever sees a path that Jira's Tomcat cannot resolve
//! to anything else. Paths with dot segments, empty segments, path parameters, backslashes or
//! encoded separators are refused before any rule is evaluated (400).
//!
//! [`canonical_path`] takes Envoy's `:path` as received. Everything from the first `?` on is the
//! query string: it is split off and never inspected by the ACL (JQL lives there). What remains
//! must be a path in which every byte means exactly what it says, because the rules in
//! [`crate::policy`] compare segments byte for byte and Tomcat, Jersey and Jira must arrive at
//! the same segments. A path is refused when it
//!
//! * contains a `#` anywhere (a fragment is never sent to a server; one here is an attack or a
//!   broken client) — [`PathRejection::Fragment`];
//! * does not start with `/` (asterisk-form, absolute-form or an empty path) —
//!   [`PathRejection::NotAbsolute`];
//! * is longer than [`MAX_PATH_BYTES`] before the query — [`PathRejection::TooLong`];
//! * has an empty segment (`//`) — [`PathRejection::EmptySegment`];
//! * ends with `/`, except the root path `/` itself: Jira treats `/rest/api/2/issue/` and
//!   `/rest/api/2/issue` as different resources, and a rule is written for one of them —
//!   [`PathRejection::TrailingSlash`];
//! * has a segment made only of dots, written plainly or percent-encoded in any mix of case
//!   (`.`, `..`, `%2e`, `.%2E`, `%2e%2e`, `...`) — [`PathRejection::DotSegment`];
//! * contains `;` raw or as `%3b`: Tomcat strips path parameters before routing, so
//!   `/rest;x=1/api` would reach `/rest/api` — [`PathRejection::PathParameter`];
//! * contains `\` raw or as `%5c`, which some servers treat as `/` — [`PathRejection::Backslash`];
//! * contains `%2f`, an encoded `/` that hides a segment boundary —
//!   [`PathRejection::EncodedSlash`];
//! * contains `%25`, an encoded `%` that decodes into another escape on a second decoding —
//!   [`PathRejection::EncodedPercent`];
//! * contains a control character, raw (NUL, CR, LF, TAB, DEL, …) or percent-encoded
//!   (`%00`–`%1f`, `%7f`) — [`PathRejection::ControlCharacter`];
//! * contains a percent-encoded unreserved character (`A-Z a-z 0-9 - . _ ~`, e.g. `%41`, `%2D`,
//!   or `%2e` inside a longer segment). These are never encoded in canonical form, and `%49ssue`
//!   would otherwise reach Jira as `issue` while escaping a rule that names `issue` —
//!   [`PathRejection::EncodedUnreserved`];
//! * has a `%` not followed by two hex digits — [`PathRejection::MalformedEscape`];
//! * percent-encodes bytes that are not well-formed UTF-8 (RFC 3629): a stray continuation byte,
//!   an overlong form such as `%c0%ae` (a `.` to a lenient decoder, the trick of
//!   CVE-2008-2938 against Tomcat) or `%c0%af` (a `/`), a surrogate, a code point above
//!   U+10FFFF, or a sequence cut short by a raw character or the end of the segment. Decoders
//!   disagree about such bytes, so they have no single meaning — [`PathRejection::InvalidUtf8`];
//! * contains a raw space, a non-ASCII byte, or any other character that RFC 3986 does not
//!   allow unencoded in a path (`"`, `<`, `>`, `[`, `]`, `^`, `` ` ``, `{`, `|`, `}`) —
//!   [`PathRejection::InvalidCharacter`].
//!
//! Other percent-encodings (`%20`, `%3A`, `%40`, encoded UTF-8 such as `%C3%A9`, or the
//! fullwidth full stop `%EF%BC%8E`, which is not a `.`) are accepted: they cannot change which
//! segments Jira sees, and the rules only ever compare literal segments made of unreserved
//! characters, which cannot be written encoded.
//!
//! Segments are checked left to right; within a segment, the dot-segment check comes before the
//! character checks, so `%2e%2e` is reported as a dot segment rather than an encoded character.

/// Longest path (before the query string) that is accepted. Jira's REST paths are short; a
/// longer one is either broken or probing.
pub const MAX_PATH_BYTES: usize = 4096;

/// A request path that passed canonicalisation: no query string, no ambiguous segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath<'a> {
    path: &'a str,
}

impl<'a> RequestPath<'a> {
    /// The path without its query string, exactly as received (it is already canonical).
    pub fn as_str(&self) -> &'a str {
        self.path
    }

    /// The segments after the leading `/`; `/` alone has none.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.path.split('/').skip(1).filter(|s| !s.is_empty())
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// The path contains `#`.
    Fragment,
    /// The path is empty or does not start with `/`.
    NotAbsolute,
    /// The path is longer than [`MAX_PATH_BYTES`].
    TooLong,
    /// The path contains `//`.
    EmptySegment,
    /// The path ends with `/` and is not `/`.
    TrailingSlash,
    /// A segment is made only of dots, plain or percent-encoded.
    DotSegment,
    /// The path contains `;` or `%3b`.
    PathParameter,
    /// The path contains `\` or `%5c`.
    Backslash,
    /// The path contains `%2f`.
    EncodedSlash,
    /// The path contains `%25`.
    EncodedPercent,
    /// The path contains a control character, raw or percent-encoded.
    ControlCharacter,
    /// The path contains a percent-encoded letter, digit, `-`, `.`, `_` or `~`.
    EncodedUnreserved,
    /// A `%` is not followed by two hex digits.
    MalformedEscape,
    /// Percent-encoded bytes that are not well-formed UTF-8 (e.g. the overlong `%c0%ae`).
    InvalidUtf8,
    /// The path contains a space, a non-ASCII byte or another character not allowed in a path.
    InvalidCharacter,
}

impl PathRejection {
    /// A short human-readable reason for the 400 body; never echoes the path.
    pub fn description(&self) -> &'static str {
        match self {
            PathRejection::Fragment => "request path must not contain a fragment",
            PathRejection::NotAbsolute => "request path must start with /",
            PathRejection::TooLong => "request path is too long",
            PathRejection::EmptySegment => "request path must not contain empty segments",
            PathRejection::TrailingSlash => "request path must not end with /",
            PathRejection::DotSegment => "request path must not contain dot segments",
            PathRejection::PathParameter => "request path must not contain path parameters (;)",
            PathRejection::Backslash => "request path must not contain backslashes",
            PathRejection::EncodedSlash => "request path must not contain an encoded /",
            PathRejection::EncodedPercent => "request path must not contain an encoded %",
            PathRejection::ControlCharacter => "request path must not contain control characters",
            PathRejection::EncodedUnreserved => {
                "request path must not percent-encode letters, digits or -._~"
            }
            PathRejection::MalformedEscape => "request path contains a malformed percent escape",
            PathRejection::InvalidUtf8 => {
                "request path percent-encodes bytes that are not valid UTF-8"
            }
            PathRejection::InvalidCharacter => "request path contains a character not allowed",
        }
    }
}

/// Checks the `:path` pseudo-header and splits off the query string.
pub fn canonical_path(raw: &str) -> Result<RequestPath<'_>, PathRejection> {
    if raw.as_bytes().contains(&b'#') {
        return Err(PathRejection::Fragment);
    }
    let path = match raw.split_once('?') {
        Some((path, _query)) => path,
        None => raw,
    };
    let Some(after_root) = path.strip_prefix('/') else {
        return Err(PathRejection::NotAbsolute);
    };
    if path.len() > MAX_PATH_BYTES {
        return Err(PathRejection::TooLong);
    }
    if !after_root.is_empty() {
        let mut segments = after_root.split('/').peekable();
        while let Some(segment) = segments.next() {
            let is_last = segments.peek().is_none();
            check_segment(segment, is_last)?;
        }
    }
    Ok(RequestPath { path })
}

/// Checks one segment of a path other than `/`.
fn check_segment(segment: &str, is_last: bool) -> Result<(), PathRejection> {
    if segment.is_empty() {
        return Err(if is_last {
            PathRejection::TrailingSlash
        } else {
            PathRejection::EmptySegment
        });
    }
    if is_dot_segment(segment) {
        return Err(PathRejection::DotSegment);
    }
    let mut bytes = segment.bytes();
    let mut utf8 = Utf8Sequence::default();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let decoded = match (bytes.next(), bytes.next()) {
                (Some(high), Some(low)) => crate::hex::byte(high, low),
                _ => None,
            }
            .ok_or(PathRejection::MalformedEscape)?;
            check_encoded(decoded)?;
            utf8.push(decoded)?;
        } else {
            check_raw(byte)?;
            // A raw byte is ASCII (anything else was refused above): it cuts an open sequence.
            utf8.push(byte)?;
        }
    }
    if utf8.is_open() {
        return Err(PathRejection::InvalidUtf8);
    }
    Ok(())
}

/// Follows the decoded bytes of one segment through RFC 3629's table of well-formed UTF-8.
#[derive(Debug, Default)]
struct Utf8Sequence {
    /// Continuation bytes still expected.
    remaining: u8,
    /// Smallest acceptable next byte while `remaining > 0`.
    lo: u8,
    /// Largest acceptable next byte while `remaining > 0`.
    hi: u8,
}

impl Utf8Sequence {
    fn push(&mut self, byte: u8) -> Result<(), PathRejection> {
        if self.remaining > 0 {
            if !(self.lo..=self.hi).contains(&byte) {
                return Err(PathRejection::InvalidUtf8);
            }
            self.remaining = self.remaining.saturating_sub(1);
            (self.lo, self.hi) = (0x80, 0xbf);
            return Ok(());
        }
        let (remaining, lo, hi) = match byte {
            0x00..=0x7f => return Ok(()),
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xec | 0xee..=0xef => (2, 0x80, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            // A continuation byte with no lead, the overlong leads 0xc0/0xc1, or 0xf5..=0xff.
            _ => return Err(PathRejection::InvalidUtf8),
        };
        *self = Utf8Sequence { remaining, lo, hi };
        Ok(())
    }

    /// True when a multi-byte sequence has begun and not ended.
    fn is_open(&self) -> bool {
        self.remaining > 0
    }
}

/// True when the segment consists only of `.` and `%2e`/`%2E`, in any mix.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
    }
    true
}

/// Checks a byte written unencoded in a segment.
fn check_raw(byte: u8) -> Result<(), PathRejection> {
    match byte {
        b';' => Err(PathRejection::PathParameter),
        b'\\' => Err(PathRejection::Backslash),
        0x00..=0x1f | 0x7f => Err(PathRejection::ControlCharacter),
        // RFC 3986 pchar: unreserved, sub-delims (`;` handled above), ':' and '@'.
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => Ok(()),
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@' => {
            Ok(())
        }
        _ => Err(PathRejection::InvalidCharacter),
    }
}

/// Checks the byte a `%XX` escape decodes to.
fn check_encoded(decoded: u8) -> Result<(), PathRejection> {
    match decoded {
        b'/' => Err(PathRejection::EncodedSlash),
        b'\\' => Err(PathRejection::Backslash),
        b';' => Err(PathRejection::PathParameter),
        b'%' => Err(PathRejection::EncodedPercent),
        0x00..=0x1f | 0x7f => Err(PathRejection::ControlCharacter),
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
            Err(PathRejection::EncodedUnreserved)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(raw: &str) -> PathRejection {
        canonical_path(raw).unwrap_err()
    }

    fn accepted(raw: &str) -> &str {
        canonical_path(raw).unwrap().as_str()
    }

    fn assert_rejected(cases: &[&str], expected: PathRejection) {
        for raw in cases {
            assert_eq!(canonical_path(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn ordinary_jira_paths_are_accepted_unchanged() {
        for raw in [
            "/",
            "/status",
            "/rest/api/2/search",
            "/rest/api/2/issue/OPS-12",
            "/rest/api/2/issue/OPS-12/comment/10001",
            "/rest/api/latest/project/OPS",
            "/rest/api/2/user/properties/my%20key",
            "/rest/api/2/issue/OPS-1/properties/a:b@c!$&'()*+,=",
            "/rest/api/2/issue/OPS-1/attachments/r%C3%A9sum%C3%A9",
            "/rest/api/2/a%3Fb%23c%3a",
            "/rest/agile/1.0/board",
            "/rest/api/2/a.b/c..d/.e/f.",
        ] {
            assert_eq!(accepted(raw), raw);
        }
    }

    #[test]
    fn query_string_is_split_off_and_not_inspected() {
        assert_eq!(
            accepted("/rest/api/2/search?jql=project%20%3D%20OPS"),
            "/rest/api/2/search"
        );
        assert_eq!(
            accepted("/rest/api/2/search?a=../..//%2f%5c;%00\\ é%zz"),
            "/rest/api/2/search"
        );
        assert_eq!(accepted("/?x"), "/");
        assert_eq!(accepted("/status?"), "/status");
    }

    #[test]
    fn query_is_split_at_the_first_question_mark() {
        assert_eq!(accepted("/a?b/../c?d"), "/a");
    }

    #[test]
    fn root_has_no_segments() {
        let path = canonical_path("/").unwrap();
        assert_eq!(path.segments().count(), 0);
    }

    #[test]
    fn segments_are_yielded_in_order() {
        let path = canonical_path("/rest/api/2/issue/OPS-1?fields=summary").unwrap();
        assert_eq!(
            path.segments().collect::<Vec<_>>(),
            ["rest", "api", "2", "issue", "OPS-1"]
        );
    }

    #[test]
    fn fragment_is_refused_in_path_and_query() {
        assert_rejected(
            &["/rest/api/2/issue#x", "/#", "/rest?jql=a#b", "#/rest"],
            PathRejection::Fragment,
        );
    }

    #[test]
    fn relative_and_empty_paths_are_refused() {
        assert_rejected(
            &[
                "",
                "*",
                "rest/api/2/search",
                "http://jira/rest/api/2/search",
                "?a=b",
                "./rest",
                "\\rest",
            ],
            PathRejection::NotAbsolute,
        );
    }

    #[test]
    fn path_longer_than_the_limit_is_refused() {
        let at_limit = format!("/{}", "a".repeat(MAX_PATH_BYTES - 1));
        assert_eq!(accepted(&at_limit), at_limit);
        let over = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(rejection(&over), PathRejection::TooLong);
    }

    #[test]
    fn long_query_does_not_count_towards_the_limit() {
        let raw = format!("/rest/api/2/search?jql={}", "a".repeat(2 * MAX_PATH_BYTES));
        assert_eq!(accepted(&raw), "/rest/api/2/search");
    }

    #[test]
    fn empty_segments_are_refused() {
        assert_rejected(
            &["//", "//rest", "/rest//api", "/rest/api/2//search?x"],
            PathRejection::EmptySegment,
        );
    }

    #[test]
    fn trailing_slash_is_refused_except_for_the_root() {
        assert_rejected(
            &["/rest/", "/rest/api/2/issue/", "/rest/api/2/issue/?x=1"],
            PathRejection::TrailingSlash,
        );
        assert_eq!(accepted("/"), "/");
    }

    #[test]
    fn plain_dot_segments_are_refused() {
        assert_rejected(
            &[
                "/.",
                "/..",
                "/rest/.",
                "/rest/..",
                "/rest/./api",
                "/rest/../admin",
                "/rest/.../api",
                "/../rest?x",
            ],
            PathRejection::DotSegment,
        );
    }

    #[test]
    fn encoded_and_mixed_dot_segments_are_refused() {
        assert_rejected(
            &[
                "/rest/%2e",
                "/rest/%2E",
                "/rest/%2e%2e",
                "/rest/%2E%2E",
                "/rest/%2e%2E",
                "/rest/%2E%2e",
                "/rest/.%2e",
                "/rest/.%2E",
                "/rest/%2e.",
                "/rest/%2E.",
                "/rest/%2e%2e/admin",
                "/rest/.%2e/api/2/issue/OPS-1",
                "/%2e%2e",
            ],
            PathRejection::DotSegment,
        );
    }

    #[test]
    fn encoded_dot_inside_a_longer_segment_is_an_encoded_unreserved_character() {
        assert_rejected(
            &["/rest/a%2e", "/rest/%2ea", "/rest/%2e%2ex", "/rest/1%2E0"],
            PathRejection::EncodedUnreserved,
        );
    }

    #[test]
    fn path_parameters_are_refused_raw_and_encoded() {
        assert_rejected(
            &[
                "/rest/api/2/issue;jsessionid=x",
                "/rest;x=1/api",
                "/rest/;/api",
                "/;",
                "/rest/..;/admin",
                "/rest/api/2/issue%3bx",
                "/rest/api/2/issue%3Bx",
            ],
            PathRejection::PathParameter,
        );
    }

    #[test]
    fn backslashes_are_refused_raw_and_encoded() {
        assert_rejected(
            &[
                "/rest\\api",
                "/rest/api\\",
                "/rest/%5capi",
                "/rest/%5Capi",
                "/rest/%5C..",
            ],
            PathRejection::Backslash,
        );
    }

    #[test]
    fn encoded_slash_is_refused_in_either_case() {
        assert_rejected(
            &[
                "/rest%2fapi",
                "/rest%2Fapi",
                "/rest/api/2/issue/OPS-1%2f..%2fadmin",
            ],
            PathRejection::EncodedSlash,
        );
    }

    #[test]
    fn encoded_percent_is_refused() {
        assert_rejected(
            &["/rest/%252e%252e", "/rest/%25", "/rest/a%252fb"],
            PathRejection::EncodedPercent,
        );
    }

    #[test]
    fn raw_control_characters_are_refused() {
        assert_rejected(
            &[
                "/rest\0",
                "/rest/\r\nX: y",
                "/rest\t/api",
                "/rest\x7f",
                "/a\x1f",
            ],
            PathRejection::ControlCharacter,
        );
    }

    #[test]
    fn encoded_control_characters_are_refused() {
        assert_rejected(
            &[
                "/rest/%00",
                "/rest%0d%0a",
                "/rest%0D%0A",
                "/rest%09",
                "/rest%1f",
                "/rest%1F",
                "/rest%7f",
                "/rest%7F",
            ],
            PathRejection::ControlCharacter,
        );
    }

    #[test]
    fn every_encoded_unreserved_character_is_refused() {
        for byte in (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain([b'-', b'.', b'_', b'~'])
        {
            for raw in [format!("/x%{byte:02x}y"), format!("/x%{byte:02X}y")] {
                assert_eq!(rejection(&raw), PathRejection::EncodedUnreserved, "{raw:?}");
            }
        }
        assert_eq!(
            rejection("/rest/api/2/%69ssue/OPS-1"),
            PathRejection::EncodedUnreserved
        );
    }

    #[test]
    fn every_other_encoded_ascii_character_is_accepted_or_has_its_own_reason() {
        for byte in 0u8..=0x7f {
            let raw = format!("/x%{byte:02X}y");
            let expected = match byte {
                b'/' => Err(PathRejection::EncodedSlash),
                b'\\' => Err(PathRejection::Backslash),
                b';' => Err(PathRejection::PathParameter),
                b'%' => Err(PathRejection::EncodedPercent),
                0x00..=0x1f | 0x7f => Err(PathRejection::ControlCharacter),
                _ if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                    Err(PathRejection::EncodedUnreserved)
                }
                _ => Ok(raw.as_str()),
            };
            assert_eq!(
                canonical_path(&raw).map(|p| p.as_str()),
                expected,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn encoded_utf8_is_accepted() {
        for raw in [
            "/x%C3%A9",
            "/%e2%82%ac",
            "/%F0%9F%98%80x",
            // Every 4-byte lead with its own second-byte range (RFC 3629).
            "/%f0%90%80%80",
            "/%f1%80%80%80",
            "/%f2%bf%bf%bf",
            "/%f3%80%bf%80",
            "/%f4%80%80%80",
            "/rest/api/2/issue/%ef%bc%8e%ef%bc%8e",
            "/%c2%80%df%bf%e0%a0%80%ed%9f%bf%ee%80%80%f4%8f%bf%bf",
            "/%C3%A9/%C3%A9",
        ] {
            assert_eq!(accepted(raw), raw);
        }
    }

    #[test]
    fn encoded_bytes_that_are_not_utf8_are_refused() {
        assert_rejected(
            &[
                "/x%80",
                "/x%ff",
                "/x%80%ff%FF",
                "/rest/api/2/issue/%c0%ae%c0%ae/serverInfo",
                "/rest/api/2/issue/OPS-1%c0%af..%c0%afserverInfo",
                "/%c1%bf",
                "/%e0%80%ae",
                "/%e0%9f%bf",
                "/%ed%a0%80",
                "/%f0%80%80%ae",
                "/%f2%c0%80%80",
                "/%f4%90%80%80",
                "/%f5%80%80%80",
                "/%c3",
                "/%e2%82",
                "/%c3x",
                "/%c3%20",
                "/%c3/%a9",
                "/%c3%a9%a9",
            ],
            PathRejection::InvalidUtf8,
        );
    }

    #[test]
    fn an_ascii_reason_inside_a_utf8_sequence_comes_first() {
        assert_eq!(rejection("/%e2%2f"), PathRejection::EncodedSlash);
        assert_eq!(rejection("/%e2;"), PathRejection::PathParameter);
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert_rejected(
            &[
                "/rest%", "/rest%2", "/rest%zz", "/rest%2g", "/rest%g2", "/%%32%65", "/rest%-1",
                "/rest%+f", "/a%2?x",
            ],
            PathRejection::MalformedEscape,
        );
    }

    #[test]
    fn raw_space_non_ascii_and_other_unsafe_characters_are_refused() {
        assert_rejected(
            &[
                "/rest/api 2",
                "/rest/é",
                "/rest/\u{ff0f}",
                "/a\"b",
                "/a<b",
                "/a>b",
                "/a[b",
                "/a]b",
                "/a^b",
                "/a`b",
                "/a{b",
                "/a|b",
                "/a}b",
            ],
            PathRejection::InvalidCharacter,
        );
    }

    #[test]
    fn the_leftmost_problem_is_reported() {
        assert_eq!(rejection("/a//b/.."), PathRejection::EmptySegment);
        assert_eq!(rejection("/../a//b"), PathRejection::DotSegment);
        assert_eq!(rejection("/a;b/%2f"), PathRejection::PathParameter);
        assert_eq!(rejection("/a%2fb;c"), PathRejection::EncodedSlash);
    }

    #[test]
    fn every_rejection_says_how_the_path_is_wrong_in_its_own_words() {
        use PathRejection::*;
        let all = [
            Fragment,
            NotAbsolute,
            TooLong,
            EmptySegment,
            TrailingSlash,
            DotSegment,
            PathParameter,
            Backslash,
            EncodedSlash,
            EncodedPercent,
            ControlCharacter,
            EncodedUnreserved,
            MalformedEscape,
            InvalidUtf8,
            InvalidCharacter,
        ];
        let texts: std::collections::HashSet<&str> = all.iter().map(|r| r.description()).collect();
        assert_eq!(texts.len(), all.len(), "one reason per rejection");
        assert!(texts.iter().all(|t| t.starts_with("request path ")));
        assert_eq!(
            DotSegment.description(),
            "request path must not contain dot segments"
        );
    }

    #[test]
    fn descriptions_never_echo_the_path() {
        for (raw, expected) in [
            ("/secret#x", PathRejection::Fragment),
            ("secret", PathRejection::NotAbsolute),
            ("/secret//x", PathRejection::EmptySegment),
            ("/secret/", PathRejection::TrailingSlash),
            ("/secret/..", PathRejection::DotSegment),
            ("/secret;x", PathRejection::PathParameter),
            ("/secret\\x", PathRejection::Backslash),
            ("/secret%2f", PathRejection::EncodedSlash),
            ("/secret%25", PathRejection::EncodedPercent),
            ("/secret%00", PathRejection::ControlCharacter),
            ("/secret%41", PathRejection::EncodedUnreserved),
            ("/secret%4", PathRejection::MalformedEscape),
            ("/secret%c0%ae", PathRejection::InvalidUtf8),
            ("/secret x", PathRejection::InvalidCharacter),
        ] {
            let rejection = rejection(raw);
            assert_eq!(rejection, expected, "{raw:?}");
            assert!(!rejection.description().contains("secret"));
        }
    }
}
