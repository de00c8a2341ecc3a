//! The signing-key lifecycle of each tenant: when to fetch, who fetches, and what a request may
//! use meanwhile.
//!
//! Envoy runs one Wasm VM per worker thread (plus one on the main thread). So that an Envoy
//! process fetches each key set once, not once per VM, the lifecycle state of a tenant is one
//! [`SharedKeyRecord`] that all VMs keep in Envoy's shared data and change only with
//! compare-and-swap: a VM that wants to fetch must first *claim* the record (a lease with a
//! deadline), and the result of the fetch — the key-set document itself — is written back to
//! the record, where every VM picks it up. This module holds the pure part: the record, its
//! transitions, and the per-VM [`KeyStore`] that turns records into parsed key sets and tells a
//! request whether it can be decided, must wait, or gets a 503. The shell does the shared-data
//! reads and writes and the HTTP calls.
//!
//! Timing: a good fetch is refreshed every `refresh_seconds` in the background; a failed fetch
//! is retried with exponential backoff (1 s doubling to 30 s) plus up to a quarter of jitter,
//! while the last good set stays in use for at most `max_stale_seconds` after it was fetched; a
//! token naming an unknown `kid` may trigger an early fetch at most once per
//! `min_refetch_seconds` per tenant, across all VMs, and none while the last fetch failed. A
//! request waits for keys at most `key_wait_ms` in all ([`KeyWait`]).

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::jwks::{
    parse_jwks, JwksError, KeySet, KeySetError, KeySetState, KeySets, Refetch, SignatureVerifier,
    VerificationKey,
};
use crate::policy::{JwksSource, TenantIndex};

/// First retry delay after a failed fetch.
pub const RETRY_BASE_MS: u64 = 1_000;
/// Longest retry delay after repeated failures.
pub const RETRY_MAX_MS: u64 = 30_000;
/// Extra time a fetch lease lasts beyond the fetch timeouts, so a slow answer is not raced.
const LEASE_SLACK_MS: u64 = 1_000;

/// The timing of one tenant's key-set fetches, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// Interval between background refreshes after a good fetch.
    pub refresh_ms: u64,
    /// How long the last good set may be used after it was fetched.
    pub max_stale_ms: u64,
    /// Least time between two fetches caused by unknown key ids.
    pub min_refetch_ms: u64,
    /// How long one fetch (discovery and key set together) may hold the lease.
    pub lease_ms: u64,
}

impl ScheduleSettings {
    /// The settings of a configured key-set source.
    pub fn for_source(source: &JwksSource) -> Self {
        let ms = |seconds: i64| u64::try_from(seconds).unwrap_or(0).saturating_mul(1_000);
        // Discovery adds a second request to every fetch.
        let requests: u64 = if source.discovery_path.is_some() {
            2
        } else {
            1
        };
        ScheduleSettings {
            refresh_ms: ms(source.refresh_seconds),
            max_stale_ms: ms(source.max_stale_seconds),
            min_refetch_ms: ms(source.min_refetch_seconds),
            lease_ms: source
                .fetch_timeout_ms
                .saturating_mul(requests)
                .saturating_add(LEASE_SLACK_MS),
        }
    }
}

/// Why a fetch was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// The first fetch, a periodic refresh, or a retry after a failure.
    Scheduled,
    /// A token named a key the set does not have.
    UnknownKey,
}

/// The outcome of trying to claim a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This VM now holds the lease and must fetch.
    Claimed,
    /// Another fetch holds the lease.
    InFlight,
    /// Nothing to do now (not due, or an unknown-key refetch is rate-limited).
    NotDue,
}

/// The state of one tenant's key set shared by all VMs of an Envoy process (serialized into
/// Envoy's shared data). Times are milliseconds since the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedKeyRecord {
    /// Incremented by every good fetch; a VM re-parses the document when it changes.
    pub generation: u64,
    /// When the last good document was fetched (0: never).
    pub fetched_at_ms: u64,
    /// The last good key-set document, as fetched.
    pub document: String,
    /// The key-set path found through OIDC discovery, when discovery is configured.
    pub discovered_path: Option<String>,
    /// When the next scheduled fetch is due.
    pub next_attempt_ms: u64,
    /// Failed fetches since the last good one.
    pub failures: u32,
    /// A fetch holds the lease until then (0: no fetch in flight).
    pub lease_until_ms: u64,
    /// When the last unknown-key refetch was claimed (0: never).
    pub last_refetch_ms: u64,
}

impl SharedKeyRecord {
    /// The serialized form kept in shared data.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a serialized record; `None` for anything unreadable (treated as a fresh record).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    fn lease_held(&self, now_ms: u64) -> bool {
        self.lease_until_ms > now_ms
    }

    /// Claims the fetch a scheduled refresh, retry or first load calls for.
    pub fn claim_scheduled(&mut self, now_ms: u64, settings: &ScheduleSettings) -> Claim {
        if self.lease_held(now_ms) {
            return Claim::InFlight;
        }
        if self.next_attempt_ms > now_ms {
            return Claim::NotDue;
        }
        self.lease_until_ms = now_ms.saturating_add(settings.lease_ms);
        Claim::Claimed
    }

    /// Claims an early fetch because a token named an unknown key, within the rate limit.
    pub fn claim_refetch(&mut self, now_ms: u64, settings: &ScheduleSettings) -> Claim {
        if self.lease_held(now_ms) {
            return Claim::InFlight;
        }
        if !self.refetch_allowed(now_ms, settings) {
            return Claim::NotDue;
        }
        self.lease_until_ms = now_ms.saturating_add(settings.lease_ms);
        self.last_refetch_ms = now_ms;
        Claim::Claimed
    }

    fn refetch_allowed(&self, now_ms: u64, settings: &ScheduleSettings) -> bool {
        self.last_refetch_ms == 0
            || now_ms.saturating_sub(self.last_refetch_ms) >= settings.min_refetch_ms
    }

    /// Records a good fetch and releases the lease; returns when the next refresh is due.
    pub fn succeeded(&mut self, document: String, now_ms: u64, settings: &ScheduleSettings) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        self.fetched_at_ms = now_ms;
        self.document = document;
        self.failures = 0;
        self.lease_until_ms = 0;
        self.next_attempt_ms = now_ms.saturating_add(settings.refresh_ms);
        self.next_attempt_ms
    }

    /// Records a failed fetch and releases the lease, keeping the last good document; returns
    /// when the retry is due. `jitter` is any pseudo-random value: up to a quarter of the delay
    /// is added so that VMs and Envoy processes that failed together do not retry together.
    pub fn failed(&mut self, now_ms: u64, jitter: u32) -> u64 {
        let exponent = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let delay = RETRY_BASE_MS
            .saturating_mul(1_u64 << exponent)
            .min(RETRY_MAX_MS);
        let spread = delay / 4;
        let extra = u64::from(jitter)
            .checked_rem(spread.saturating_add(1))
            .unwrap_or(0);
        self.lease_until_ms = 0;
        self.next_attempt_ms = now_ms.saturating_add(delay).saturating_add(extra);
        self.next_attempt_ms
    }

    /// Seconds until the next fetch attempt, at least 1: the `Retry-After` of a 503.
    pub fn retry_after_seconds(&self, now_ms: u64) -> u64 {
        let wait_ms = self
            .next_attempt_ms
            .max(self.lease_until_ms)
            .saturating_sub(now_ms);
        wait_ms.div_ceil(1_000).max(1)
    }
}

/// How long one request may still wait for keys. The wait is fixed when the request first
/// waits and is not renewed by the fetches it sees end: a token naming an unknown key that
/// waited for a scheduled refresh, which did not bring the key, and then waits for the refetch
/// it asks for still answers by its first deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWait {
    deadline_ms: u64,
}

impl KeyWait {
    /// The wait of a request that must wait at `now_ms`: the one it already has, or a new one
    /// of `key_wait_ms`.
    pub fn continued(previous: Option<KeyWait>, now_ms: u64, key_wait_ms: u64) -> KeyWait {
        previous.unwrap_or(KeyWait {
            deadline_ms: now_ms.saturating_add(key_wait_ms),
        })
    }

    /// When the wait ends (epoch milliseconds).
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// True once the request has waited as long as it may.
    pub fn is_over(&self, now_ms: u64) -> bool {
        now_ms >= self.deadline_ms
    }
}

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

    /// Takes in the current shared record of a tenant, parsing its document when it is new.
    pub fn observe(&mut self, tenant: TenantIndex, record: SharedKeyRecord) -> Observed {
        let Some(t) = self.tenants.get_mut(tenant.0) else {
            return Observed::Unchanged;
        };
        let fresh = record.generation != t.parsed_generation && !record.document.is_empty();
        t.record = record;
        if !fresh {
            return Observed::Unchanged;
        }
        t.parsed_generation = t.record.generation;
        match parse_jwks(t.record.document.as_bytes()) {
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

    /// Number of usable keys of the tenant's current set.
    pub fn usable_keys(&self, tenant: TenantIndex) -> usize {
        self.tenants
            .get(tenant.0)
            .and_then(|t| t.set.as_ref())
            .map_or(0, |s| s.len())
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

/// The shared-data key of a tenant's record. It names the tenant and a fingerprint of where its
/// keys come from, so a configuration that changes the source starts from a fresh record.
pub fn shared_record_key(tenant_id: &str, source: &JwksSource) -> String {
    // FNV-1a: a stable, dependency-free fingerprint; collisions only cost a shared record.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        source.cluster.as_str(),
        source.authority.as_str(),
        source.path.as_str(),
        source.discovery_path.as_deref().unwrap_or(""),
    ];
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("jira-entra-guard/keys/{tenant_id}/{hash:016x}")
}

/// Why an OIDC discovery document could not name the key-set path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not JSON, or no string `jwks_uri`.
    Malformed,
    /// `jwks_uri` is not an absolute `https://` (or `http://`) URL.
    NotAUrl,
    /// `jwks_uri` names another host than the configured authority.
    ForeignHost(String),
}

impl std::fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiscoveryError::Malformed => f.write_str("discovery document has no jwks_uri"),
            DiscoveryError::NotAUrl => f.write_str("jwks_uri is not an absolute URL"),
            DiscoveryError::ForeignHost(host) => write!(
                f,
                "jwks_uri host {host:?} is not the configured authority; refused"
            ),
        }
    }
}

/// The key-set path named by an OIDC discovery document, provided its host is `authority`:
/// keys are only ever fetched from the configured authority, through the configured cluster.
pub fn discovered_jwks_path(document: &[u8], authority: &str) -> Result<String, DiscoveryError> {
    #[derive(Deserialize)]
    struct Discovery {
        jwks_uri: String,
    }
    let discovery: Discovery =
        serde_json::from_slice(document).map_err(|_| DiscoveryError::Malformed)?;
    let rest = discovery
        .jwks_uri
        .strip_prefix("https://")
        .or_else(|| discovery.jwks_uri.strip_prefix("http://"))
        .ok_or(DiscoveryError::NotAUrl)?;
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => return Err(DiscoveryError::NotAUrl),
    };
    if !host.eq_ignore_ascii_case(authority) {
        return Err(DiscoveryError::ForeignHost(host.to_owned()));
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DiscoveryError::NotAUrl);
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{jwk, key};

    fn settings() -> ScheduleSettings {
        ScheduleSettings {
            refresh_ms: 3_600_000,
            max_stale_ms: 86_400_000,
            min_refetch_ms: 300_000,
            lease_ms: 6_000,
        }
    }

    fn document() -> String {
        json!({"keys": [jwk("key-a", &key("a"))]}).to_string()
    }

    fn store_with(record: SharedKeyRecord) -> KeyStore {
        let mut store = KeyStore::new(vec![settings()]);
        store.observe(TenantIndex(0), record);
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
    fn fresh_record_is_due_and_only_one_claim_wins() {
        let mut record = SharedKeyRecord::default();
        assert_eq!(record.claim_scheduled(1_000, &settings()), Claim::Claimed);
        // The second VM reads the claimed record: the fetch is already in flight.
        let mut seen_by_other = record.clone();
        assert_eq!(
            seen_by_other.claim_scheduled(1_001, &settings()),
            Claim::InFlight
        );
        assert_eq!(
            seen_by_other.claim_refetch(1_001, &settings()),
            Claim::InFlight
        );
    }

    #[test]
    fn an_expired_lease_can_be_taken_over() {
        let mut record = SharedKeyRecord::default();
        record.claim_scheduled(1_000, &settings());
        assert_eq!(record.claim_scheduled(7_001, &settings()), Claim::Claimed);
    }

    #[test]
    fn good_fetch_schedules_the_refresh_and_bumps_the_generation() {
        let mut record = SharedKeyRecord::default();
        record.claim_scheduled(0, &settings());
        assert_eq!(record.succeeded(document(), 10, &settings()), 3_600_010);
        assert_eq!(record.generation, 1);
        assert_eq!(
            record.claim_scheduled(3_600_009, &settings()),
            Claim::NotDue
        );
        assert_eq!(
            record.claim_scheduled(3_600_010, &settings()),
            Claim::Claimed
        );
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
        record.succeeded(document(), 0, &settings());
        record.claim_scheduled(3_600_000, &settings());
        record.failed(3_600_500, 0);
        let store = store_with(record);
        assert_eq!(state_name(&store, 3_600_500), "ready");
        assert_eq!(state_name(&store, 86_400_000), "ready");
        assert_eq!(state_name(&store, 86_400_001), "stale");
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let mut record = SharedKeyRecord::default();
        let delays: Vec<u64> = (0..8).map(|_| record.failed(0, 0)).collect();
        assert_eq!(
            delays,
            vec![1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(record.retry_after_seconds(0), 30);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter_of_the_delay() {
        let mut record = SharedKeyRecord::default();
        for _ in 0..5 {
            record.failed(0, 0);
        }
        let next = record.failed(0, u32::MAX);
        assert!((30_000..=37_500).contains(&next), "{next}");
    }

    #[test]
    fn success_resets_the_backoff() {
        let mut record = SharedKeyRecord::default();
        for _ in 0..4 {
            record.failed(0, 0);
        }
        record.succeeded(document(), 10_000, &settings());
        assert_eq!(record.failed(20_000, 0), 21_000);
    }

    #[test]
    fn unknown_key_refetch_is_rate_limited_per_tenant() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(document(), 0, &settings());
        assert_eq!(record.claim_refetch(1_000, &settings()), Claim::Claimed);
        record.succeeded(document(), 1_500, &settings());
        assert_eq!(record.claim_refetch(2_000, &settings()), Claim::NotDue);
        assert_eq!(record.claim_refetch(300_999, &settings()), Claim::NotDue);
        assert_eq!(record.claim_refetch(301_000, &settings()), Claim::Claimed);
    }

    #[test]
    fn refetch_view_follows_the_record() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(document(), 0, &settings());
        assert_eq!(
            store_with(record.clone()).at(1).refetch(TenantIndex(0)),
            Refetch::Allowed
        );
        record.claim_refetch(1, &settings());
        assert_eq!(
            store_with(record.clone()).at(2).refetch(TenantIndex(0)),
            Refetch::InFlight
        );
        record.succeeded(document(), 3, &settings());
        assert_eq!(
            store_with(record).at(4).refetch(TenantIndex(0)),
            Refetch::RateLimited
        );
    }

    #[test]
    fn refetch_view_refuses_to_press_a_failing_key_server() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(document(), 0, &settings());
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
        record.succeeded(document(), 3_601_700, &settings());
        assert_eq!(
            store_with(record).at(3_601_800).refetch(TenantIndex(0)),
            Refetch::Allowed
        );
    }

    #[test]
    fn a_request_waits_key_wait_ms_in_total_however_many_fetches_it_sees() {
        let first = KeyWait::continued(None, 10_000, 3_000);
        assert_eq!(first.deadline_ms(), 13_000);
        // Woken at 12.5 s by a refresh that did not bring its key, it waits again for its own
        // refetch: the deadline it started with still holds.
        let again = KeyWait::continued(Some(first), 12_500, 3_000);
        assert_eq!(again.deadline_ms(), 13_000);
        assert!(!again.is_over(12_999));
        assert!(again.is_over(13_000));
    }

    #[test]
    fn a_vm_parses_each_generation_once_and_keeps_the_set_on_bad_documents() {
        let mut store = KeyStore::new(vec![settings()]);
        let mut record = SharedKeyRecord::default();
        record.succeeded(document(), 0, &settings());
        assert_eq!(
            store.observe(TenantIndex(0), record.clone()),
            Observed::NewKeys {
                usable: 1,
                skipped: 0
            }
        );
        assert_eq!(
            store.observe(TenantIndex(0), record.clone()),
            Observed::Unchanged
        );
        record.succeeded("garbage".into(), 1, &settings());
        assert!(matches!(
            store.observe(TenantIndex(0), record),
            Observed::Unusable(JwksError::NotAKeySet(_))
        ));
        assert_eq!(store.usable_keys(TenantIndex(0)), 1);
    }

    #[test]
    fn record_survives_its_serialized_form() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(document(), 5, &settings());
        record.discovered_path = Some("/t/discovery/v2.0/keys".into());
        assert_eq!(SharedKeyRecord::decode(&record.encode()), Some(record));
        assert_eq!(SharedKeyRecord::decode(b"junk"), None);
    }

    #[test]
    fn discovery_names_the_key_set_path_on_the_configured_authority() {
        let doc = br#"{"issuer":"x","jwks_uri":"https://login.microsoftonline.com/t/discovery/v2.0/keys"}"#;
        assert_eq!(
            discovered_jwks_path(doc, "login.microsoftonline.com").unwrap(),
            "/t/discovery/v2.0/keys"
        );
        assert_eq!(
            discovered_jwks_path(doc, "LOGIN.microsoftonline.com").unwrap(),
            "/t/discovery/v2.0/keys"
        );
    }

    #[test]
    fn discovery_pointing_elsewhere_is_refused() {
        let doc = br#"{"jwks_uri":"https://evil.example/keys"}"#;
        assert_eq!(
            discovered_jwks_path(doc, "login.microsoftonline.com").unwrap_err(),
            DiscoveryError::ForeignHost("evil.example".into())
        );
        for bad in [
            &br#"{"jwks_uri":"/keys"}"#[..],
            br#"{"jwks_uri":"https://host"}"#,
        ] {
            assert_eq!(
                discovered_jwks_path(bad, "host").unwrap_err(),
                DiscoveryError::NotAUrl
            );
        }
        assert_eq!(
            discovered_jwks_path(b"{}", "host").unwrap_err(),
            DiscoveryError::Malformed
        );
    }
}
