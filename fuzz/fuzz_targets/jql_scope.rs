//! Arbitrary bytes as a JQL query (and, the same bytes, as the JSON body of the calls whose
//! projects are in their body). Through `jql::project_restrictions`, `strict_json::parse` and
//! `scope::request_scope`.
//!
//! Invariants: no panic; every query the checker accepts is, by an independent reading made
//! here with plain string operations (quoted strings blanked, parentheses counted, connectives
//! found as words or symbols), a top-level conjunction — no `OR`/`|` outside parentheses before
//! `ORDER BY` — and every restriction it reports is one of its top-level operands (or of a
//! wholly parenthesised conjunction among them) reading `project = V` or `project in (V, …)`
//! with exactly the reported keys; every reported key is a project key.

#![no_main]

use jira_entra_guard_core::path::canonical_path;
use jira_entra_guard_core::policy::jql::{project_restrictions, ProjectValue};
use jira_entra_guard_core::policy::scope::{request_scope, BodyFacts, ProjectIds, RequestBody};
use jira_entra_guard_core::policy::strict_json::parse;
use libfuzzer_sys::fuzz_target;

const BODY_CALLS: [&str; 4] = [
    "/rest/api/2/issue",
    "/rest/api/2/issue/bulk",
    "/rest/api/2/issueLink",
    "/rest/api/2/search",
];

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    for call in BODY_CALLS {
        let path = canonical_path(call).unwrap();
        let facts = BodyFacts {
            content_type: &["application/json"],
            content_encoding: false,
            body: RequestBody::Complete(data),
        };
        let _ = request_scope("POST", &path, None, &facts, &ProjectIds::default());
    }
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(restrictions) = project_restrictions(query) else {
        return;
    };
    assert!(!restrictions.is_empty());
    let masked = mask_quotes(query).expect("accepted query has balanced quotes");
    let condition = before_order_by(&masked);
    assert!(
        !has_top_level_or(condition),
        "accepted a top-level OR: {query:?}"
    );
    let mut clauses = Vec::new();
    top_level_operands(query, &masked, condition_range(&masked), &mut clauses);
    for restriction in &restrictions {
        let keys: Vec<String> = restriction
            .values
            .iter()
            .map(|v| match v {
                ProjectValue::Key(k) => {
                    assert!(is_key(k), "reported {k:?} as a key");
                    k.clone()
                }
                ProjectValue::Id(id) => {
                    assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
                    id.clone()
                }
            })
            .collect();
        assert!(
            clauses.iter().any(|c| c == &keys),
            "restriction {keys:?} is not a top-level project clause of {query:?} (found {clauses:?})"
        );
    }
});

/// The query with every quoted string's content replaced by `_` (quotes kept), or `None` when
/// a quote is not closed.
fn mask_quotes(query: &str) -> Option<String> {
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        match quote {
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.push(c);
            }
            Some(q) => {
                // Same byte length as the original, so offsets agree.
                let blank = "_".repeat(c.len_utf8());
                if escaped {
                    escaped = false;
                    out.push_str(&blank);
                } else if c == '\\' {
                    escaped = true;
                    out.push_str(&blank);
                } else if c == q {
                    quote = None;
                    out.push(c);
                } else {
                    out.push_str(&blank);
                }
            }
        }
    }
    quote.is_none().then_some(out)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-[]".contains(c)
}

/// The words (with their byte offsets) of a masked text; a quoted string counts as one word.
fn words(masked: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut in_quote: Option<(char, usize)> = None;
    for (i, c) in masked.char_indices() {
        if let Some((q, from)) = in_quote {
            if c == q {
                in_quote = None;
                out.push((from, &masked[from..i + 1]));
            }
            continue;
        }
        if c == '"' || c == '\'' {
            if let Some(s) = start.take() {
                out.push((s, &masked[s..i]));
            }
            in_quote = Some((c, i));
            continue;
        }
        if is_word_char(c) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, &masked[s..i]));
        }
    }
    if let Some(s) = start {
        out.push((s, &masked[s..]));
    }
    out
}

/// The parenthesis depth at byte `at` of a masked text.
fn depth_at(masked: &str, at: usize) -> i64 {
    let mut depth = 0;
    let mut in_quote = None;
    for (i, c) in masked.char_indices() {
        if i >= at {
            break;
        }
        match (in_quote, c) {
            (Some(q), c) if c == q => in_quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => in_quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Where a top-level `ORDER BY` starts, else the end.
fn condition_end(masked: &str) -> usize {
    let w = words(masked);
    for pair in w.windows(2) {
        let ((at, order), (_, by)) = (pair[0], pair[1]);
        if order.eq_ignore_ascii_case("order")
            && by.eq_ignore_ascii_case("by")
            && depth_at(masked, at) == 0
        {
            return at;
        }
    }
    masked.len()
}

fn condition_range(masked: &str) -> (usize, usize) {
    (0, condition_end(masked))
}

fn before_order_by(masked: &str) -> &str {
    &masked[..condition_end(masked)]
}

/// A `|` or an `OR` word at depth 0.
fn has_top_level_or(masked: &str) -> bool {
    let pipe = masked
        .char_indices()
        .any(|(i, c)| c == '|' && depth_at(masked, i) == 0 && !inside_quotes(masked, i));
    let word = words(masked)
        .iter()
        .any(|(at, w)| w.eq_ignore_ascii_case("or") && depth_at(masked, *at) == 0);
    pipe || word
}

fn inside_quotes(masked: &str, at: usize) -> bool {
    let mut in_quote = None;
    for (i, c) in masked.char_indices() {
        if i >= at {
            break;
        }
        match (in_quote, c) {
            (Some(q), c) if c == q => in_quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => in_quote = Some(c),
            _ => {}
        }
    }
    in_quote.is_some()
}

/// The project clauses among the top-level operands of `range`, descending into operands
/// wholly in parentheses that hold no top-level OR; each clause as its list of keys.
fn top_level_operands(
    query: &str,
    masked: &str,
    range: (usize, usize),
    out: &mut Vec<Vec<String>>,
) {
    let (start, end) = range;
    let text = &masked[start..end];
    // Split points: `&` runs and `AND` words at depth 0 of this range.
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'&' && depth_at(text, i) == 0 && !inside_quotes(text, i) {
            let mut j = i;
            while j < bytes.len() && bytes[j] == b'&' {
                j += 1;
            }
            cuts.push((i, j));
            i = j;
            continue;
        }
        i += 1;
    }
    for (at, w) in words(text) {
        if w.eq_ignore_ascii_case("and") && depth_at(text, at) == 0 {
            cuts.push((at, at + w.len()));
        }
    }
    cuts.sort();
    let mut from = 0;
    let mut pieces = Vec::new();
    for (a, b) in cuts {
        pieces.push((from, a));
        from = b;
    }
    pieces.push((from, text.len()));
    for (a, b) in pieces {
        let (a, b) = (start + a, start + b);
        let piece = masked[a..b].trim();
        let offset = a + (masked[a..b].len() - masked[a..b].trim_start().len());
        if piece.starts_with('(') && piece.ends_with(')') && encloses(piece) {
            let inner = (offset + 1, offset + piece.len() - 1);
            if !has_top_level_or(&masked[inner.0..inner.1]) {
                top_level_operands(query, masked, inner, out);
            }
            continue;
        }
        if let Some(keys) = clause_keys(&query[offset..offset + piece.len()]) {
            out.push(keys);
        }
    }
}

/// True when the first `(` closes at the last character.
fn encloses(piece: &str) -> bool {
    let mut depth = 0;
    for (i, c) in piece.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1 == piece.len();
                }
            }
            _ => {}
        }
    }
    false
}

/// `project = V` or `project in (V, …)` (original text, values possibly quoted): the keys.
fn clause_keys(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    let rest = strip_word(text, "project")
        .or_else(|| strip_word(text, "\"project\""))
        .or_else(|| strip_word(text, "'project'"))?;
    let rest = rest.trim_start();
    if let Some(value) = rest.strip_prefix('=') {
        return Some(vec![value_key(value.trim())?]);
    }
    let list = strip_word(rest, "in")?.trim();
    let list = list.strip_prefix('(')?.strip_suffix(')')?;
    list.split(',').map(|v| value_key(v.trim())).collect()
}

fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word) && !rest.starts_with(is_word_char)).then_some(rest)
}

/// A single value: a bare word or a quoted string without escapes other than `\uXXXX`, decoded
/// and uppercased (ids as written).
fn value_key(value: &str) -> Option<String> {
    let inner = if (value.starts_with('"') && value.ends_with('"'))
        || (value.starts_with('\'') && value.ends_with('\''))
    {
        if value.len() < 2 {
            return None;
        }
        decode(&value[1..value.len() - 1])?
    } else {
        if !value.chars().all(is_word_char) {
            return None;
        }
        value.to_owned()
    };
    Some(if inner.bytes().all(|b| b.is_ascii_digit()) {
        inner
    } else {
        inner.to_ascii_uppercase()
    })
}

fn decode(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            other => out.push(other),
        }
    }
    Some(out)
}

fn is_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.len() > 0
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}
