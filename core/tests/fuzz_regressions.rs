//! Inputs the fuzz targets in `fuzz/` found, kept as regression tests of the public API (see
//! `docs/hardening.md`). Each test is the finding, reduced to what it is about.

// This whole file is test code; clippy.toml's test allowances cover only `#[test]` functions,
// not the helpers an integration test shares between them.
#![allow(clippy::unwrap_used)]

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::keys::jwks::{parse_jwks, KeySet, KeySetState, KeySets, Refetch};
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use jira_entra_guard_core::token::verify::{verify_token, VerifyFailure};
use jira_entra_guard_core::token::TokenError;
use jira_entra_guard_fixtures::{jwk, key, policy_json, sign_bytes, NOW};
use serde_json::json;

fn sign(header: &[u8], claims: &[u8]) -> String {
    sign_bytes(&key("a"), header, claims)
}

struct OneTenant(KeySet);

impl KeySets for OneTenant {
    fn state(&self, _tenant: TenantIndex) -> KeySetState<'_> {
        KeySetState::Ready(&self.0)
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        Refetch::RateLimited
    }
}

fn keys() -> OneTenant {
    let jwks = json!({"keys": [jwk("key-a", &key("a"))]});
    OneTenant(parse_jwks(jwks.to_string().as_bytes()).unwrap())
}

fn policy() -> Policy {
    compile_policy(policy_json().to_string().as_bytes(), &|_| None).unwrap()
}

/// token_verify, first minutes: genuine claims whose ignored `sub` claim holds the byte 0xdc,
/// which is not UTF-8. A byte-slice JSON parser skips ignored strings without checking them,
/// so the token was accepted although its claims are not JSON (RFC 8259 §8.1, RFC 7519 §7.2).
const CLAIMS_WITH_A_NON_UTF8_BYTE: &[u8] = b"{\"aud\":\"b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b\",\
\"iss\":\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0\",\
\"iat\":1789999700,\"nbf\":1789999700,\"exp\":1790003300,\
\"azp\":\"3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01\",\"azpacr\":\"2\",\"idtyp\":\"app\",\
\"oid\":\"6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11\",\"roles\":[\"Jira.Read\"],\
\"sub\":\"6e1f6a9e-5a1c-4a52-9d\xdc43-2f6c0b1d3e11\",\
\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\",\"uti\":\"Zx1-abc\",\"ver\":\"2.0\"}";

const HEADER: &[u8] = br#"{"typ":"JWT","alg":"RS256","kid":"key-a"}"#;

#[test]
fn signed_claims_with_a_non_utf8_byte_in_an_ignored_claim_are_malformed() {
    let token = sign(HEADER, CLAIMS_WITH_A_NON_UTF8_BYTE);
    assert_eq!(
        verify_token(&token, &policy(), &keys(), NOW).unwrap_err(),
        VerifyFailure::Token(TokenError::MalformedClaims)
    );
}

#[test]
fn the_same_claims_in_utf8_are_accepted() {
    let utf8: Vec<u8> = CLAIMS_WITH_A_NON_UTF8_BYTE
        .iter()
        .map(|b| if *b == 0xdc { b'4' } else { *b })
        .collect();
    let token = sign(HEADER, &utf8);
    assert!(verify_token(&token, &policy(), &keys(), NOW).is_ok());
}

#[test]
fn signed_header_with_a_non_utf8_byte_in_an_ignored_member_is_malformed() {
    let header = b"{\"typ\":\"JWT\",\"alg\":\"RS256\",\"kid\":\"key-a\",\"x5u\":\"\xdc\"}";
    let utf8_claims: Vec<u8> = CLAIMS_WITH_A_NON_UTF8_BYTE
        .iter()
        .map(|b| if *b == 0xdc { b'4' } else { *b })
        .collect();
    let token = sign(header, &utf8_claims);
    assert_eq!(
        verify_token(&token, &policy(), &keys(), NOW).unwrap_err(),
        VerifyFailure::Token(TokenError::MalformedHeader)
    );
}
