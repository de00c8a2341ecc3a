//! One VM's view of every tenant's key set ([`KeyStore`]): the last shared record it saw and the
//! key set parsed from it, and what a request at one instant may do with it ([`KeysAt`]):
//! decide, wait for a fetch in flight, or get a 503.

use std::rc::Rc;

use super::jwks::{
    parse_jwks, JwksError, KeySet, KeySetError, KeySetState, KeySets, Refetch, SignatureVerifier,
    VerificationKey,
};
use super::record::SharedKeyRecord;
use super::schedule::ScheduleSettings;
use crate::policy::TenantIndex;

/// What a VM learned from a record it had not seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Same generation as before: nothing to parse.
    Unchanged,
    /// A new key set was parsed.
    NewKeys {
        /// Usable keys.
        usable: usize,
        /// Entries skipped.
        skipped: usize,
    },
    /// The record's document did not parse (kept the previous set).
    Unusable(JwksError),
}

#[derive(Debug, Clone, Default)]
struct TenantKeys {
    record: SharedKeyRecord,
    set: Option<Rc<KeySet>>,
    parsed_generation: u64,
}

/// One VM's view of every tenant's key set: the last record it saw and the key set parsed from
/// it.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    settings: Vec<ScheduleSettings>,
    tenants: Vec<TenantKeys>,
}

impl KeyStore {
    /// A store for tenants with these settings, knowing nothing yet.
    pub fn new(settings: Vec<ScheduleSettings>) -> Self {
        let tenants = vec![TenantKeys::default(); settings.len()];
        KeyStore { settings, tenants }
    }

    /// The settings of a tenant.
    pub fn settings(&self, tenant: TenantIndex) -> Option<&ScheduleSettings> {
        self.settings.get(tenant.0)
    }

    /// The last record seen for a tenant.
    pub fn record(&self, tenant: TenantIndex) -> Option<&SharedKeyRecord> {
        self.tenants.get(tenant.0).map(|t| &t.record)
    }

    /// True when `record` announces a key set this VM has not parsed yet: its document must be
    /// read to [`observe`](Self::observe) it.
    pub fn wants_document(&self, tenant: TenantIndex, record: &SharedKeyRecord) -> bool {
        self.tenants
            .get(tenant.0)
            .is_some_and(|t| record.generation != 0 && record.generation != t.parsed_generation)
    }

    /// Takes in the current shared record of a tenant and, when it announces a new key set, the
    /// shared document, which is parsed.
    pub fn observe(
        &mut self,
        tenant: TenantIndex,
        record: SharedKeyRecord,
        document: Option<&[u8]>,
    ) -> Observed {
        let Some(t) = self.tenants.get_mut(tenant.0) else {
            return Observed::Unchanged;
        };
        let fresh = record.generation != t.parsed_generation;
        t.record = record;
        let Some(document) = document.filter(|d| fresh && !d.is_empty()) else {
            return Observed::Unchanged;
        };
        t.parsed_generation = t.record.generation;
        match parse_jwks(document) {
            Ok(set) => {
                let observed = Observed::NewKeys {
                    usable: set.len(),
                    skipped: set.skipped().len(),
                };
                t.set = Some(Rc::new(set));
                observed
            }
            Err(e) => Observed::Unusable(e),
        }
    }

    /// Takes in the record this VM wrote after its own good fetch, with the set it parsed from
    /// the response: the set is not parsed a second time.
    pub fn install(&mut self, tenant: TenantIndex, record: SharedKeyRecord, set: Rc<KeySet>) {
        if let Some(t) = self.tenants.get_mut(tenant.0) {
            t.parsed_generation = record.generation;
            t.record = record;
            t.set = Some(set);
        }
    }

    /// Number of usable keys of the tenant's current set.
    pub fn usable_keys(&self, tenant: TenantIndex) -> usize {
        self.tenants
            .get(tenant.0)
            .and_then(|t| t.set.as_ref())
            .map_or(0, |s| s.len())
    }

    /// Seconds since the tenant's key set in use was fetched (0 before the first good fetch).
    pub fn age_seconds(&self, tenant: TenantIndex, now_ms: u64) -> u64 {
        self.record(tenant)
            .filter(|r| r.fetched_at_ms != 0)
            .map_or(0, |r| now_ms.saturating_sub(r.fetched_at_ms) / 1_000)
    }

    /// The `Retry-After` for a tenant's 503.
    pub fn retry_after_seconds(&self, tenant: TenantIndex, now_ms: u64) -> u64 {
        self.record(tenant)
            .map_or(1, |r| r.retry_after_seconds(now_ms))
    }

    /// The soonest `Retry-After` over all tenants (a 503 that cannot name its tenant).
    pub fn soonest_retry_after_seconds(&self, now_ms: u64) -> u64 {
        self.tenants
            .iter()
            .map(|t| t.record.retry_after_seconds(now_ms))
            .min()
            .unwrap_or(1)
    }

    /// The view a request at `now_ms` decides with, checking signatures in Wasm.
    pub fn at(&self, now_ms: u64) -> KeysAt<'_> {
        KeysAt {
            store: self,
            now_ms,
            verifier: None,
        }
    }

    /// The view a request at `now_ms` decides with, checking signatures with `verifier`.
    pub fn at_with<'a>(&'a self, now_ms: u64, verifier: &'a dyn SignatureVerifier) -> KeysAt<'a> {
        KeysAt {
            store: self,
            now_ms,
            verifier: Some(verifier),
        }
    }
}

/// A [`KeyStore`] seen at one instant.
#[derive(Clone, Copy)]
pub struct KeysAt<'a> {
    store: &'a KeyStore,
    now_ms: u64,
    verifier: Option<&'a dyn SignatureVerifier>,
}

impl std::fmt::Debug for KeysAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysAt")
            .field("now_ms", &self.now_ms)
            .field("host_verifier", &self.verifier.is_some())
            .finish()
    }
}

impl KeySets for KeysAt<'_> {
    fn verify_rs256(&self, key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
        match self.verifier {
            Some(verifier) => verifier.verify_rs256(key, message, signature),
            None => key.verify_rs256(message, signature),
        }
    }

    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        let (Some(t), Some(settings)) = (
            self.store.tenants.get(tenant.0),
            self.store.settings.get(tenant.0),
        ) else {
            return KeySetState::Unavailable(KeySetError::Unavailable);
        };
        let age = self.now_ms.saturating_sub(t.record.fetched_at_ms);
        let fresh_enough = age <= settings.max_stale_ms;
        // Before the first fetch has even been tried, a request waits for it like for one in
        // flight: start-up is not an outage.
        let first_fetch_pending = t.record.generation == 0 && t.record.failures == 0;
        match &t.set {
            Some(set) if fresh_enough => KeySetState::Ready(set),
            _ if t.record.lease_held(self.now_ms) || first_fetch_pending => KeySetState::Loading,
            Some(_) => KeySetState::Unavailable(KeySetError::Stale),
            None => KeySetState::Unavailable(KeySetError::Unavailable),
        }
    }

    fn refetch(&self, tenant: TenantIndex) -> Refetch {
        let (Some(t), Some(settings)) = (
            self.store.tenants.get(tenant.0),
            self.store.settings.get(tenant.0),
        ) else {
            return Refetch::RateLimited;
        };
        if t.record.lease_held(self.now_ms) {
            Refetch::InFlight
        } else if t.record.failures > 0 {
            // The retry schedule already fetches as often as a failing key server should be
            // asked; a token naming an unknown key is decided with the set in hand.
            Refetch::Failed
        } else if t.record.refetch_allowed(self.now_ms, settings) {
            Refetch::Allowed
        } else {
            Refetch::RateLimited
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{jwk, key};

    fn settings() -> ScheduleSettings {
        ScheduleSettings::hourly()
    }

    fn document() -> Vec<u8> {
        json!({"keys": [jwk("key-a", &key("a"))]})
            .to_string()
            .into_bytes()
    }

    fn store_with(record: SharedKeyRecord) -> KeyStore {
        let mut store = KeyStore::new(vec![settings()]);
        store.observe(TenantIndex(0), record, Some(&document()));
        store
    }

    fn state_name(store: &KeyStore, now_ms: u64) -> &'static str {
        match store.at(now_ms).state(TenantIndex(0)) {
            KeySetState::Ready(_) => "ready",
            KeySetState::Loading => "loading",
            KeySetState::Unavailable(KeySetError::Stale) => "stale",
            KeySetState::Unavailable(KeySetError::Unavailable) => "unavailable",
        }
    }

    #[test]
    fn requests_wait_while_the_first_fetch_is_in_flight_then_get_unavailable() {
        let store = store_with(SharedKeyRecord::default());
        assert_eq!(state_name(&store, 0), "loading", "before the first claim");
        let mut record = SharedKeyRecord::default();
        record.claim_scheduled(0, &settings());
        let store = store_with(record.clone());
        assert_eq!(state_name(&store, 100), "loading");
        record.failed(200, 0);
        let store = store_with(record);
        assert_eq!(state_name(&store, 300), "unavailable");
    }

    #[test]
    fn failed_refresh_keeps_the_last_good_set_until_it_is_too_old() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(0, &settings());
        record.claim_scheduled(3_600_000, &settings());
        record.failed(3_600_500, 0);
        let store = store_with(record);
        assert_eq!(state_name(&store, 3_600_500), "ready");
        assert_eq!(state_name(&store, 86_400_000), "ready");
        assert_eq!(state_name(&store, 86_400_001), "stale");
    }

    #[test]
    fn refetch_view_follows_the_record() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(0, &settings());
        assert_eq!(
            store_with(record.clone()).at(1).refetch(TenantIndex(0)),
            Refetch::Allowed
        );
        record.claim_refetch(1, &settings());
        assert_eq!(
            store_with(record.clone()).at(2).refetch(TenantIndex(0)),
            Refetch::InFlight
        );
        record.succeeded(3, &settings());
        assert_eq!(
            store_with(record).at(4).refetch(TenantIndex(0)),
            Refetch::RateLimited
        );
    }

    #[test]
    fn refetch_view_refuses_to_press_a_failing_key_server() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(0, &settings());
        record.claim_scheduled(3_600_000, &settings());
        record.failed(3_600_500, 0);
        // Never refetched for an unknown key, yet the retry schedule governs.
        assert_eq!(
            store_with(record.clone())
                .at(3_600_600)
                .refetch(TenantIndex(0)),
            Refetch::Failed
        );
        // A retry in flight is waited for; a good one lifts the refusal.
        record.claim_scheduled(3_601_500, &settings());
        assert_eq!(
            store_with(record.clone())
                .at(3_601_600)
                .refetch(TenantIndex(0)),
            Refetch::InFlight
        );
        record.succeeded(3_601_700, &settings());
        assert_eq!(
            store_with(record).at(3_601_800).refetch(TenantIndex(0)),
            Refetch::Allowed
        );
    }

    #[test]
    fn a_vm_parses_each_generation_once_and_keeps_the_set_on_bad_documents() {
        let mut store = KeyStore::new(vec![settings()]);
        let mut record = SharedKeyRecord::default();
        record.succeeded(0, &settings());
        assert_eq!(
            store.observe(TenantIndex(0), record.clone(), Some(&document())),
            Observed::NewKeys {
                usable: 1,
                skipped: 0
            }
        );
        assert_eq!(
            store.observe(TenantIndex(0), record.clone(), Some(&document())),
            Observed::Unchanged
        );
        record.succeeded(1, &settings());
        assert!(matches!(
            store.observe(TenantIndex(0), record, Some(b"garbage")),
            Observed::Unusable(JwksError::NotAKeySet(_))
        ));
        assert_eq!(store.usable_keys(TenantIndex(0)), 1);
    }
}
