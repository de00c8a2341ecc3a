//! Key sets in hand, fixed for every decision made with them: the policy check
//! (`jira-entra-guard check --jwks`), tests, fuzz targets and benchmarks. Nothing is fetched, so
//! a token naming a key the set lacks is decided with the set as it stands (a refetch reads as
//! rate-limited unless told otherwise).

use super::jwks::{KeySet, KeySetError, KeySetState, KeySets, Refetch};
use crate::policy::TenantIndex;

/// What a tenant without a key set reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WithoutSet {
    /// No set, and waiting will not bring one (503), for this reason.
    Unavailable(KeySetError),
    /// The first fetch is in flight: a request waits for it.
    Loading,
}

/// One key set (or none) per tenant, in policy order.
#[derive(Debug, Clone)]
pub struct FixedKeySets {
    sets: Vec<Option<KeySet>>,
    without_set: WithoutSet,
    refetch: Refetch,
}

impl FixedKeySets {
    /// `sets[i]` is the set of the policy's tenant `i`; a tenant without one is unavailable.
    pub fn new(sets: Vec<Option<KeySet>>) -> Self {
        FixedKeySets {
            sets,
            without_set: WithoutSet::Unavailable(KeySetError::Unavailable),
            refetch: Refetch::RateLimited,
        }
    }

    /// The same set for each of `tenants` tenants (Microsoft's signing keys are shared across
    /// tenants).
    pub fn same_for_every_tenant(tenants: usize, set: &KeySet) -> Self {
        Self::new(vec![Some(set.clone()); tenants])
    }

    /// A tenant without a set reads as loading (a request waits for it) instead of unavailable.
    #[must_use]
    pub fn loading_without_a_set(mut self) -> Self {
        self.without_set = WithoutSet::Loading;
        self
    }

    /// A tenant without a set is unavailable for `why` (e.g. a set too old to use).
    #[must_use]
    pub fn unavailable_without_a_set(mut self, why: KeySetError) -> Self {
        self.without_set = WithoutSet::Unavailable(why);
        self
    }

    /// Sets how a token naming an unknown key is treated.
    pub fn set_refetch(&mut self, refetch: Refetch) {
        self.refetch = refetch;
    }

    /// True when the tenant has a set.
    pub fn has(&self, tenant: TenantIndex) -> bool {
        self.sets.get(tenant.0).is_some_and(Option::is_some)
    }
}

impl KeySets for FixedKeySets {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        match (self.sets.get(tenant.0), self.without_set) {
            (Some(Some(set)), _) => KeySetState::Ready(set),
            (_, WithoutSet::Loading) => KeySetState::Loading,
            (_, WithoutSet::Unavailable(why)) => KeySetState::Unavailable(why),
        }
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        self.refetch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::jwks::parse_jwks;
    use crate::test_support::{jwk, key};

    fn set() -> KeySet {
        let document = serde_json::json!({"keys": [jwk("key-a", &key("a"))]});
        parse_jwks(document.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_tenant_with_a_set_is_ready_and_one_without_is_unavailable() {
        let keys = FixedKeySets::new(vec![Some(set()), None]);
        assert!(matches!(keys.state(TenantIndex(0)), KeySetState::Ready(s) if s.len() == 1));
        assert!(matches!(
            keys.state(TenantIndex(1)),
            KeySetState::Unavailable(KeySetError::Unavailable)
        ));
        assert!(matches!(
            keys.state(TenantIndex(2)),
            KeySetState::Unavailable(KeySetError::Unavailable)
        ));
        assert!(keys.has(TenantIndex(0)) && !keys.has(TenantIndex(1)) && !keys.has(TenantIndex(2)));
    }

    #[test]
    fn a_tenant_without_a_set_can_read_as_loading_or_unavailable_for_a_reason() {
        let keys = FixedKeySets::new(vec![None]).loading_without_a_set();
        assert!(matches!(keys.state(TenantIndex(0)), KeySetState::Loading));
        let stale = FixedKeySets::new(vec![None]).unavailable_without_a_set(KeySetError::Stale);
        assert!(matches!(
            stale.state(TenantIndex(0)),
            KeySetState::Unavailable(KeySetError::Stale)
        ));
    }

    #[test]
    fn every_tenant_can_share_one_set() {
        let keys = FixedKeySets::same_for_every_tenant(2, &set());
        assert!(keys.has(TenantIndex(0)) && keys.has(TenantIndex(1)) && !keys.has(TenantIndex(2)));
    }

    #[test]
    fn a_refetch_is_rate_limited_unless_told_otherwise() {
        let mut keys = FixedKeySets::new(vec![Some(set())]);
        assert_eq!(keys.refetch(TenantIndex(0)), Refetch::RateLimited);
        keys.set_refetch(Refetch::Allowed);
        assert_eq!(keys.refetch(TenantIndex(0)), Refetch::Allowed);
    }
}
