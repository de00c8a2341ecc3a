//! Arbitrary bytes as a bearer token, through `verify_token` and through the whole request
//! decision (`decide`, twice, so the second answer may come from the verified-token cache).
//!
//! The first byte picks how the rest is used (mod 8):
//! * `0..=5`: the `Authorization` header value, as sent;
//! * `6`: the claims JSON of a token with a genuine header, signed by the fixture key;
//! * `7`: `header JSON 0xff claims JSON`, signed by the fixture key.
//!
//! The signed modes reach the claim checks, which forged signatures never do; an RSA signature
//! per input makes them slow under the fuzzer's instrumentation, hence the weights. Invariants: no
//! panic; an accepted token is signed by a fixture key (checked independently of the filter's
//! key selection) and satisfies every claim rule (restated in the fixture); the fixed key store
//! never makes a request wait; a forwarded request with a grant carries a verifiable token; the
//! second decision equals the first.

#![no_main]

use jira_entra_guard_core::decide::decide;
use jira_entra_guard_core::outcome::{Decided, Outcome, Wait};
use jira_entra_guard_core::request::RequestHead;
use jira_entra_guard_core::token::bearer::bearer_token;
use jira_entra_guard_core::token::verify::{verify_token, VerifyFailure};
use jira_entra_guard_core::token_cache::{DigestKey, TokenCache};
use jira_entra_guard_fixtures::NOW;
use jira_entra_guard_fuzz::{claims_violation, Fixture, SKEW};
use libfuzzer_sys::fuzz_target;

const GENUINE_HEADER: &[u8] = br#"{"typ":"JWT","alg":"RS256","kid":"key-a"}"#;

fuzz_target!(|data: &[u8]| {
    let fx = Fixture::get();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 8 {
        0..=5 => check(fx, &String::from_utf8_lossy(rest)),
        6 => check(fx, &format!("Bearer {}", fx.sign(GENUINE_HEADER, rest))),
        _ => {
            let (header, claims) = match rest.iter().position(|b| *b == 0xff) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{}"[..]),
            };
            check(fx, &format!("Bearer {}", fx.sign(header, claims)));
        }
    }
});

fn check(fx: &Fixture, authorization: &str) {
    let direct = authorization
        .strip_prefix("Bearer ")
        .unwrap_or(authorization);
    check_verify(fx, direct);

    let head = RequestHead {
        method: "GET",
        path: "/rest/api/2/myself",
        authorization: vec![authorization],
        method_overrides: Vec::new(),
        ..Default::default()
    };
    let mut cache = TokenCache::new(4, DigestKey::new([7; 16]));
    let first = decide(&fx.policy, &head, &fx.keys, &mut cache, NOW);
    let second = decide(&fx.policy, &head, &fx.keys, &mut cache, NOW);
    let (a, b) = (
        format!("{:?}", first.outcome),
        format!("{:?}", second.outcome),
    );
    assert_eq!(a, b, "a cached decision differs from the first");
    match &first.outcome {
        Outcome::Decided(Decided::Allow(Some(grant))) => {
            let token = bearer_token(&[authorization]);
            assert!(
                token.is_ok_and(|t| check_verify(fx, t)),
                "forwarded with grant {grant:?} but the token does not verify: {authorization}"
            );
        }
        Outcome::Wait(Wait::Keys(_)) => panic!("the fixed key store never loads"),
        Outcome::Wait(Wait::Body) => panic!("GET /rest/api/2/myself never needs a body"),
        Outcome::Decided(Decided::Allow(None) | Decided::Deny(_) | Decided::WouldDeny { .. }) => {}
    }
}

/// Verifies `token`; when it is accepted, checks it independently. True when accepted.
fn check_verify(fx: &Fixture, token: &str) -> bool {
    match verify_token(token, &fx.policy, &fx.keys, NOW) {
        Ok(v) => {
            assert!(
                fx.signed_by_a_fixture_key(token),
                "accepted a token no fixture key signed: {token}"
            );
            if let Some(why) = claims_violation(token) {
                panic!("accepted a token that breaks a claim rule ({why}): {token}");
            }
            assert!(!v.app_id().is_empty());
            assert!(v.expires_at.saturating_add(SKEW) >= NOW);
            true
        }
        Err(VerifyFailure::AwaitKeys { .. }) => panic!("the fixed key store never loads"),
        Err(_) => false,
    }
}
