//! The state of one tenant's key set that all VMs of an Envoy process share: one
//! [`SharedKeyRecord`] in Envoy's shared data, changed only with compare-and-swap. A VM that
//! wants to fetch must first *claim* the record (a lease with a deadline); the outcome of the
//! fetch is written back to it. The key-set document itself is kept next to the record, under
//! [`shared_document_key`], so that the per-tick check reads only the small record.

use serde::{Deserialize, Serialize};

use super::schedule::{ScheduleSettings, RETRY_BASE_MS, RETRY_MAX_MS};
use crate::policy::JwksSource;

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
    /// Incremented by every good fetch; a VM parses the shared document when it changes.
    pub generation: u64,
    /// When the last good document was fetched (0: never).
    pub fetched_at_ms: u64,
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

    pub(crate) fn lease_held(&self, now_ms: u64) -> bool {
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

    pub(crate) fn refetch_allowed(&self, now_ms: u64, settings: &ScheduleSettings) -> bool {
        self.last_refetch_ms == 0
            || now_ms.saturating_sub(self.last_refetch_ms) >= settings.min_refetch_ms
    }

    /// Records a good fetch (its document is stored beside the record) and releases the lease;
    /// returns when the next refresh is due.
    pub fn succeeded(&mut self, now_ms: u64, settings: &ScheduleSettings) -> u64 {
        self.generation = self.generation.wrapping_add(1);
        self.fetched_at_ms = now_ms;
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

/// The shared-data key of the key-set document that the record under `record_key` announces.
pub fn shared_document_key(record_key: &str) -> String {
    format!("{record_key}/document")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ScheduleSettings {
        ScheduleSettings::hourly()
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
        assert_eq!(record.succeeded(10, &settings()), 3_600_010);
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
        record.succeeded(10_000, &settings());
        assert_eq!(record.failed(20_000, 0), 21_000);
    }

    #[test]
    fn unknown_key_refetch_is_rate_limited_per_tenant() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(0, &settings());
        assert_eq!(record.claim_refetch(1_000, &settings()), Claim::Claimed);
        record.succeeded(1_500, &settings());
        assert_eq!(record.claim_refetch(2_000, &settings()), Claim::NotDue);
        assert_eq!(record.claim_refetch(300_999, &settings()), Claim::NotDue);
        assert_eq!(record.claim_refetch(301_000, &settings()), Claim::Claimed);
    }

    #[test]
    fn record_survives_its_serialized_form() {
        let mut record = SharedKeyRecord::default();
        record.succeeded(5, &settings());
        record.discovered_path = Some("/t/discovery/v2.0/keys".into());
        assert_eq!(SharedKeyRecord::decode(&record.encode()), Some(record));
        assert_eq!(SharedKeyRecord::decode(b"junk"), None);
    }
}
