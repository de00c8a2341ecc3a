//! The core's own test glue on top of the fixtures crate (re-exported here): a fixed key store,
//! the reference policy compiled, and a verified-token cache with a fixed key.

pub use jira_entra_guard_fixtures::*;
use serde_json::json;

use crate::keys::jwks::{parse_jwks, KeySet, KeySetState, KeySets, Refetch};
use crate::policy::{Policy, TenantIndex};

/// Key sets per tenant index, fixed for a test; unknown kids are rate-limited unless changed.
pub struct FixedKeys {
    pub sets: Vec<Option<KeySet>>,
    pub refetch: Refetch,
}

impl FixedKeys {
    pub fn new(sets: Vec<Option<KeySet>>) -> Self {
        FixedKeys {
            sets,
            refetch: Refetch::RateLimited,
        }
    }
}

impl KeySets for FixedKeys {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        match self.sets.get(tenant.0) {
            Some(Some(set)) => KeySetState::Ready(set),
            _ => KeySetState::Loading,
        }
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        self.refetch
    }
}

/// Tenant 0 publishes keys `a` (kid "key-a") and `b` (kid "key-b"); tenant 1 publishes `a`
/// under kid "shared-a" (Microsoft's keys are shared across tenants).
pub fn keys() -> FixedKeys {
    let t0 = json!({"keys": [jwk("key-a", &key("a")), jwk("key-b", &key("b"))]});
    let t1 = json!({"keys": [jwk("shared-a", &key("a"))]});
    FixedKeys::new(vec![
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
