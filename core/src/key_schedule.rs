//! When to fetch each tenant's key set, and what a request may use meanwhile.
//!
//! The shell reports fetch starts and outcomes; this module decides when the next fetch is due
//! (the periodic refresh, or a retry with exponential backoff and jitter after a failure), keeps
//! the last good key set through failed fetches for at most `max_stale_seconds`, and tells a
//! request whether it can be decided now, should wait for a fetch in flight, or gets a 503.

use std::rc::Rc;

use crate::jwks::{KeySet, KeySetError, KeySetState, KeySets};
use crate::policy::TenantIndex;

/// Timing of key-set fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// Interval between background refreshes after a good fetch.
    pub refresh_seconds: i64,
    /// How long the last good set may be used after it was fetched.
    pub max_stale_seconds: i64,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub retry_base_seconds: i64,
    /// Upper bound of the retry delay.
    pub retry_max_seconds: i64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            refresh_seconds: 3600,
            max_stale_seconds: 86_400,
            retry_base_seconds: 1,
            retry_max_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct TenantKeys {
    set: Option<Rc<KeySet>>,
    fetched_at: i64,
    in_flight: bool,
    consecutive_failures: u32,
    next_attempt: i64,
}

/// The key-set state of every tenant of a policy.
#[derive(Debug, Clone)]
pub struct KeySchedule {
    settings: ScheduleSettings,
    tenants: Vec<TenantKeys>,
}

impl KeySchedule {
    /// A schedule for `tenant_count` tenants, each due for its first fetch now.
    pub fn new(tenant_count: usize, settings: ScheduleSettings, now: i64) -> Self {
        let fresh = TenantKeys {
            next_attempt: now,
            ..TenantKeys::default()
        };
        KeySchedule {
            settings,
            tenants: vec![fresh; tenant_count],
        }
    }

    /// Tenants whose fetch is due at `now` and not already in flight.
    pub fn due(&self, now: i64) -> Vec<TenantIndex> {
        self.tenants
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.in_flight && t.next_attempt <= now)
            .map(|(i, _)| TenantIndex(i))
            .collect()
    }

    /// A fetch for `tenant` was dispatched.
    pub fn fetch_started(&mut self, tenant: TenantIndex) {
        if let Some(t) = self.tenants.get_mut(tenant.0) {
            t.in_flight = true;
        }
    }

    /// A fetch brought a usable key set; returns when the next refresh is due.
    pub fn fetch_succeeded(&mut self, tenant: TenantIndex, set: KeySet, now: i64) -> i64 {
        let refresh = self.settings.refresh_seconds;
        match self.tenants.get_mut(tenant.0) {
            Some(t) => {
                t.set = Some(Rc::new(set));
                t.fetched_at = now;
                t.in_flight = false;
                t.consecutive_failures = 0;
                t.next_attempt = now.saturating_add(refresh);
                t.next_attempt
            }
            None => now,
        }
    }

    /// A fetch failed (or could not be dispatched); the last good set is kept. `jitter` is any
    /// pseudo-random value: up to a quarter of the delay is added so that Envoy processes that
    /// failed together do not retry together. Returns when the retry is due.
    pub fn fetch_failed(&mut self, tenant: TenantIndex, now: i64, jitter: u32) -> i64 {
        let ScheduleSettings {
            retry_base_seconds: base,
            retry_max_seconds: max,
            ..
        } = self.settings;
        match self.tenants.get_mut(tenant.0) {
            Some(t) => {
                t.in_flight = false;
                let exponent = t.consecutive_failures.min(16);
                t.consecutive_failures = t.consecutive_failures.saturating_add(1);
                let delay = base.saturating_mul(1_i64 << exponent).min(max).max(1);
                let spread = (delay / 4).max(1);
                let extra = i64::from(jitter)
                    .checked_rem(spread.saturating_add(1))
                    .unwrap_or(0);
                t.next_attempt = now.saturating_add(delay).saturating_add(extra);
                t.next_attempt
            }
            None => now,
        }
    }

    /// Seconds until the tenant's next fetch attempt, at least 1: the `Retry-After` of a 503.
    pub fn retry_after(&self, tenant: TenantIndex, now: i64) -> u64 {
        let wait = self
            .tenants
            .get(tenant.0)
            .map_or(1, |t| t.next_attempt.saturating_sub(now));
        u64::try_from(wait.max(1)).unwrap_or(1)
    }

    /// The soonest `Retry-After` over all tenants (a 503 that cannot name its tenant).
    pub fn soonest_retry_after(&self, now: i64) -> u64 {
        (0..self.tenants.len())
            .map(|i| self.retry_after(TenantIndex(i), now))
            .min()
            .unwrap_or(1)
    }

    /// Number of usable keys of the tenant's current set.
    pub fn usable_keys(&self, tenant: TenantIndex) -> usize {
        self.tenants
            .get(tenant.0)
            .and_then(|t| t.set.as_ref())
            .map_or(0, |s| s.len())
    }

    /// The view a request at `now` decides with.
    pub fn at(&self, now: i64) -> KeysAt<'_> {
        KeysAt {
            schedule: self,
            now,
        }
    }
}

/// A [`KeySchedule`] seen at one instant.
#[derive(Debug, Clone, Copy)]
pub struct KeysAt<'a> {
    schedule: &'a KeySchedule,
    now: i64,
}

impl KeySets for KeysAt<'_> {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        let Some(t) = self.schedule.tenants.get(tenant.0) else {
            return KeySetState::Unavailable(KeySetError::Unavailable);
        };
        let age = self.now.saturating_sub(t.fetched_at);
        match (&t.set, t.in_flight) {
            (Some(set), _) if age <= self.schedule.settings.max_stale_seconds => {
                KeySetState::Ready(set)
            }
            (_, true) => KeySetState::Loading,
            (Some(_), false) => KeySetState::Unavailable(KeySetError::Stale),
            (None, false) => KeySetState::Unavailable(KeySetError::Unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> KeySet {
        let t = crate::test_support::keys();
        match t.state(TenantIndex(0)) {
            KeySetState::Ready(s) => s.clone(),
            _ => panic!("fixture key set not ready"),
        }
    }

    fn state_name(s: &KeySchedule, now: i64) -> &'static str {
        match s.at(now).state(TenantIndex(0)) {
            KeySetState::Ready(_) => "ready",
            KeySetState::Loading => "loading",
            KeySetState::Unavailable(KeySetError::Stale) => "stale",
            KeySetState::Unavailable(KeySetError::Unavailable) => "unavailable",
        }
    }

    #[test]
    fn every_tenant_is_due_at_start() {
        let s = KeySchedule::new(2, ScheduleSettings::default(), 100);
        assert_eq!(s.due(100), vec![TenantIndex(0), TenantIndex(1)]);
    }

    #[test]
    fn request_waits_for_the_first_fetch_in_flight_then_gets_unavailable_if_it_fails() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 100);
        s.fetch_started(TenantIndex(0));
        assert_eq!(state_name(&s, 100), "loading");
        assert!(
            s.due(100).is_empty(),
            "no second fetch while one is in flight"
        );
        s.fetch_failed(TenantIndex(0), 101, 0);
        assert_eq!(state_name(&s, 101), "unavailable");
    }

    #[test]
    fn successful_fetch_is_refreshed_after_the_refresh_interval() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 100);
        s.fetch_started(TenantIndex(0));
        assert_eq!(s.fetch_succeeded(TenantIndex(0), set(), 100), 3700);
        assert_eq!(state_name(&s, 200), "ready");
        assert!(s.due(3699).is_empty());
        assert_eq!(s.due(3700), vec![TenantIndex(0)]);
    }

    #[test]
    fn failed_refresh_keeps_the_last_good_set_until_it_is_too_old() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 0);
        s.fetch_succeeded(TenantIndex(0), set(), 0);
        s.fetch_started(TenantIndex(0));
        s.fetch_failed(TenantIndex(0), 3600, 0);
        assert_eq!(state_name(&s, 3600), "ready");
        assert_eq!(state_name(&s, 86_400), "ready");
        assert_eq!(state_name(&s, 86_401), "stale");
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 0);
        let delays: Vec<i64> = (0..8)
            .map(|_| s.fetch_failed(TenantIndex(0), 0, 0))
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(s.retry_after(TenantIndex(0), 0), 30);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter_of_the_delay() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 0);
        for _ in 0..5 {
            s.fetch_failed(TenantIndex(0), 0, 0);
        }
        // sixth failure: delay 30, spread 7
        let next = s.fetch_failed(TenantIndex(0), 0, u32::MAX);
        assert!((30..=37).contains(&next), "{next}");
    }

    #[test]
    fn success_resets_the_backoff() {
        let mut s = KeySchedule::new(1, ScheduleSettings::default(), 0);
        for _ in 0..4 {
            s.fetch_failed(TenantIndex(0), 0, 0);
        }
        s.fetch_succeeded(TenantIndex(0), set(), 10);
        assert_eq!(s.fetch_failed(TenantIndex(0), 20, 0), 21);
    }
}
