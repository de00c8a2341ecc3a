//! The timing of each tenant's key-set fetches: how often a good set is refreshed, how long it
//! may be used, how often a token naming an unknown key may cause an early fetch, how long a
//! fetch may hold its lease, and how failed fetches back off.

use crate::policy::JwksSource;

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

#[cfg(test)]
impl ScheduleSettings {
    /// Hourly refresh, a day of staleness, five minutes between refetches, a 6 s lease.
    pub(crate) fn hourly() -> Self {
        ScheduleSettings {
            refresh_ms: 3_600_000,
            max_stale_ms: 86_400_000,
            min_refetch_ms: 300_000,
            lease_ms: 6_000,
        }
    }
}
