//! Arbitrary bytes as a request line: the first byte picks the method, the second the client,
//! the rest is `:path`. Through `canonical_path`, `project_of`, `Policy::is_public` and
//! `Policy::authorize` on the fixed policy.
//!
//! Invariants: no panic; an accepted path starts with `/`, has no query or fragment, no empty or
//! dot segment (plain or percent-encoded), no `;`, `\`, `%2f`, `%5c`, `%3b` or `%25` (any case),
//! no control, space or non-ASCII character, and its percent-decoding is UTF-8 that adds no
//! `/`, `\`, `;`, `%`, ASCII control or `.`-only segment; a grant is only ever given for a path
//! that passed.

#![no_main]

use jira_entra_guard_core::path::{canonical_path, RequestPath, MAX_PATH_BYTES};
use jira_entra_guard_core::policy::{project_of, Caller, RequestTarget, TenantIndex};
use jira_entra_guard_fixtures::{CI_PIPELINE, REPORTING_BOT};
use jira_entra_guard_fuzz::Fixture;
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "*"];

fuzz_target!(|data: &[u8]| {
    let [method, client, raw @ ..] = data else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(raw) else {
        return;
    };
    let method = METHODS[usize::from(*method) % METHODS.len()];
    let Ok(path) = canonical_path(raw) else {
        return;
    };
    check_canonical(raw, &path);
    let _ = project_of(&path);

    let fx = Fixture::get();
    let target = RequestTarget {
        method,
        path: &path,
    };
    let _ = fx.policy.is_public(&target);
    let roles = vec!["Jira.Read".to_string(), "Jira.Write".to_string()];
    let (app_id, tenant) = match client % 3 {
        0 => (REPORTING_BOT, 0),
        1 => (CI_PIPELINE, 0),
        _ => (REPORTING_BOT, 1),
    };
    let caller = Caller {
        tenant: TenantIndex(tenant),
        app_id,
        credential_type: Some("2"),
        roles: &roles,
        delegated: false,
    };
    if let Ok(grant) = fx.policy.authorize(&caller, &target) {
        assert!(grant.matched_rule.contains(".allow["), "{grant:?}");
    }
});

fn check_canonical(raw: &str, path: &RequestPath<'_>) {
    let p = path.as_str();
    assert!(
        raw.starts_with(p),
        "the canonical path is a prefix of the request target"
    );
    assert!(p.starts_with('/') && p.len() <= MAX_PATH_BYTES, "{p:?}");
    assert!(!p.contains('?') && !p.contains('#'), "{p:?}");
    assert!(p == "/" || !p.ends_with('/'), "{p:?}");
    assert!(
        !p.contains("//") && !p.contains(';') && !p.contains('\\'),
        "{p:?}"
    );
    let lower = p.to_ascii_lowercase();
    for bad in ["%2f", "%5c", "%3b", "%25"] {
        assert!(!lower.contains(bad), "{p:?} contains {bad}");
    }
    assert!(p.bytes().all(|b| b.is_ascii_graphic()), "{p:?}");
    for segment in path.segments() {
        assert!(!segment.is_empty());
        let decoded = percent_decode(segment);
        let decoded = match String::from_utf8(decoded) {
            Ok(text) => text,
            Err(_) => panic!("{p:?}: segment {segment:?} does not decode to UTF-8"),
        };
        assert!(
            !decoded.chars().all(|c| c == '.'),
            "{p:?}: dot segment {segment:?}"
        );
        assert!(
            !decoded.contains(['/', '\\', ';', '%']),
            "{p:?}: segment {segment:?} decodes to a separator"
        );
        // The path rules refuse ASCII controls, raw or encoded; encoded C1 controls
        // (U+0080..U+009F, `%C2%80`..`%C2%9F`) are ordinary characters to Tomcat and Jira.
        assert!(!decoded.chars().any(|c| c.is_ascii_control()), "{p:?}");
    }
}

fn percent_decode(segment: &str) -> Vec<u8> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            match u8::from_str_radix(hex, 16) {
                Ok(b) => out.push(b),
                Err(_) => panic!("{segment:?}: malformed escape accepted"),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
