//! The core's own test glue on top of the fixtures crate (re-exported here): fixed key sets,
//! the reference policy compiled, and a verified-token cache with a fixed key.

pub use jira_entra_guard_fixtures::*;
use serde_json::json;

pub use crate::keys::fixed::FixedKeySets;
use crate::keys::jwks::{parse_jwks, KeySet};
use crate::policy::Policy;

/// Key sets per tenant index, fixed for a test: a tenant without one is loading (its first
/// fetch in flight); unknown kids are rate-limited unless changed.
pub fn fixed_keys(sets: Vec<Option<KeySet>>) -> FixedKeySets {
    FixedKeySets::new(sets).loading_without_a_set()
}

/// Tenant 0 publishes keys `a` (kid "key-a") and `b` (kid "key-b"); tenant 1 publishes `a`
/// under kid "shared-a" (Microsoft's keys are shared across tenants).
pub fn keys() -> FixedKeySets {
    let t0 = json!({"keys": [jwk("key-a", &key("a")), jwk("key-b", &key("b"))]});
    let t1 = json!({"keys": [jwk("shared-a", &key("a"))]});
    fixed_keys(vec![
        Some(parse_jwks(t0.to_string().as_bytes()).unwrap()),
        Some(parse_jwks(t1.to_string().as_bytes()).unwrap()),
    ])
}

/// [`policy_json`], compiled.
pub fn policy() -> Policy {
    crate::config::compile_policy(policy_json().to_string().as_bytes(), &|_| None).unwrap()
}

/// A verified-token cache of `capacity` entries with a fixed digest key.
pub fn test_cache(capacity: usize) -> crate::token_cache::TokenCache {
    crate::token_cache::TokenCache::new(capacity, crate::token_cache::DigestKey::new([7; 16]))
}
