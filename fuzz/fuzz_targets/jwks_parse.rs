//! Arbitrary bytes as a key-set document (`parse_jwks`), then the parsed keys at work.
//!
//! Invariants: no panic; a parsed set has at least one key; every entry of the document is
//! either a key or a recorded skip; a key the set returns for a `kid` or `x5t` verifies the
//! fixture's probe signature only when some entry with that id carries the fixture key's
//! modulus (a document cannot make a signature verify under a key it does not hold).

#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jira_entra_guard_core::keys::jwks::parse_jwks;
use jira_entra_guard_fuzz::Fixture;
use libfuzzer_sys::fuzz_target;
use rsa::traits::PublicKeyParts;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = parse_jwks(data) else {
        return;
    };
    assert!(!set.is_empty(), "a parsed key set has a key");
    let Ok(document) = serde_json::from_slice::<Value>(data) else {
        panic!("parse_jwks accepted a document serde_json cannot read");
    };
    let Some(entries) = document.get("keys").and_then(Value::as_array) else {
        panic!("parse_jwks accepted a document without a keys array");
    };
    assert_eq!(
        set.len() + set.skipped().len(),
        entries.len(),
        "every entry accounted for"
    );

    let fx = Fixture::get();
    let (message, signature) = probe(fx);
    let fixture_n = fx.public_keys[0].n().to_bytes_be();
    for member in ["kid", "x5t"] {
        for id in entries.iter().filter_map(|e| e.get(member)?.as_str()) {
            let key = if member == "kid" {
                set.by_kid(id)
            } else {
                set.by_x5t(id)
            };
            let Some(key) = key else { continue };
            if key.verify_rs256(message.as_bytes(), &signature) {
                let holds_fixture_key = entries.iter().any(|e| {
                    e.get(member).and_then(Value::as_str) == Some(id)
                        && e.get("n")
                            .and_then(Value::as_str)
                            .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                            .is_some_and(|n| strip(&n) == strip(&fixture_n))
                });
                assert!(
                    holds_fixture_key,
                    "{member} {id:?} verified without the fixture key"
                );
            }
        }
    }
});

fn strip(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A message and its RS256 signature by fixture key `a`.
fn probe(fx: &Fixture) -> (String, Vec<u8>) {
    let token = fx.sign(b"{\"alg\":\"RS256\"}", b"{}");
    let (input, sig) = token.rsplit_once('.').unwrap_or_default();
    (
        input.to_owned(),
        URL_SAFE_NO_PAD.decode(sig).unwrap_or_default(),
    )
}
