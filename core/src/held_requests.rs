//! Requests held undecided: those waiting for their tenant's key set and those waiting for
//! their body (the few calls whose projects are in it). One record per request, kept by the
//! VM's root context, says what the request waits for, how much body arrived, whether it is
//! complete, and how long the request may still wait; each event the shell sees (a decision
//! that waits, a body chunk, the trailers, a key set that changed, a tick of the clock) comes
//! back as what the shell does: pause, pass the body on, decide again now, or answer now.
//!
//! A request waiting for keys buffers its body meanwhile, so nothing reaches Jira before the
//! decision, and keeps the deadline of its first wait for keys however often it is decided
//! again (for its body, or after fetches that did not bring its key). A body is waited for at
//! most [`BODY_WAIT_MS`] after it was asked for — also what bounds an Envoy without
//! `allow_on_headers_stop_iteration`, which holds the body back from a request paused at its
//! headers.

use std::collections::BTreeMap;

use crate::keys::wait::KeyWait;
use crate::outcome::Wait;
use crate::policy::TenantIndex;

/// How long a held request may take to deliver the rest of its body, in milliseconds.
pub const BODY_WAIT_MS: u64 = 30_000;

/// What a held request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// This tenant's key set.
    Keys(TenantIndex),
    /// The rest of its body.
    Body,
    /// Nothing: its wait for keys ended and it is being decided again.
    Decision,
}

/// One held request.
#[derive(Debug, Clone, Copy)]
struct Held {
    waiting: Waiting,
    /// Body bytes buffered so far.
    received: usize,
    /// The body is complete (end of stream or trailers seen, or there is none).
    complete: bool,
    /// When the body was asked for (epoch milliseconds).
    since_ms: u64,
    /// The body did not arrive within [`BODY_WAIT_MS`].
    timed_out: bool,
    /// The request's wait for keys, once it has waited.
    key_wait: Option<KeyWait>,
}

/// What a held request's body is, for deciding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBody {
    /// Not (yet) complete, or not asked for.
    Unread,
    /// Complete: `size` bytes are buffered (read them all).
    Complete {
        /// Bytes buffered.
        size: usize,
    },
    /// More than `max_body_bytes` arrived.
    TooLarge,
    /// Not complete in time.
    TimedOut,
}

/// What the shell does after a decision that waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Pause the request; it is decided again when its wait ends.
    Paused,
    /// Its wait for keys is over: answer it now with what is known
    /// ([`crate::outcome::Verdict::wait_over`]).
    WaitOver,
}

/// What the shell does with a body callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStep {
    /// Pass the body on: the request is not held.
    Continue,
    /// Stop and buffer.
    Pause,
    /// Decide the request again now.
    Decide,
}

/// Every held request of a VM, by context id, and the tenants whose waiting requests asked for
/// a refetch.
#[derive(Debug, Default)]
pub struct HeldRequests {
    held: BTreeMap<u32, Held>,
    refetch_requested: Vec<TenantIndex>,
}

impl HeldRequests {
    /// Holds request `id`, decided at `now_ms` as waiting. `key_wait_ms`: how long a request may
    /// wait for keys in all; `headers_ended`: the request has no body.
    pub fn hold(
        &mut self,
        id: u32,
        wait: Wait,
        now_ms: u64,
        key_wait_ms: u64,
        headers_ended: bool,
    ) -> Hold {
        let held = self.held.entry(id).or_insert(Held {
            waiting: Waiting::Decision,
            received: 0,
            complete: false,
            since_ms: now_ms,
            timed_out: false,
            key_wait: None,
        });
        held.complete |= headers_ended;
        match wait {
            Wait::Body => {
                if held.waiting != Waiting::Body {
                    held.since_ms = now_ms;
                }
                held.waiting = Waiting::Body;
            }
            Wait::Keys(needed) => {
                if held.key_wait.is_some_and(|w| w.is_over(now_ms)) {
                    return Hold::WaitOver;
                }
                held.key_wait = Some(KeyWait::continued(held.key_wait, now_ms, key_wait_ms));
                held.waiting = Waiting::Keys(needed.tenant);
                if needed.refetch && !self.refetch_requested.contains(&needed.tenant) {
                    self.refetch_requested.push(needed.tenant);
                }
            }
        }
        Hold::Paused
    }

    /// The body of request `id` for a decision. `headers_ended`: the request has no body;
    /// `max`: `max_body_bytes`.
    pub fn body(&self, id: u32, headers_ended: bool, max: usize) -> HeldBody {
        if headers_ended {
            return HeldBody::Complete { size: 0 };
        }
        match self.held.get(&id) {
            Some(held) if held.received > max => HeldBody::TooLarge,
            Some(held) if held.timed_out => HeldBody::TimedOut,
            Some(held) if held.complete => HeldBody::Complete {
                size: held.received,
            },
            _ => HeldBody::Unread,
        }
    }

    /// A body chunk of request `id` arrived: `size` bytes are buffered in all.
    pub fn on_body(&mut self, id: u32, size: usize, end_of_stream: bool, max: usize) -> BodyStep {
        let Some(held) = self.held.get_mut(&id) else {
            return BodyStep::Continue;
        };
        held.received = size;
        held.complete |= end_of_stream;
        match held.waiting {
            Waiting::Body if end_of_stream || size > max => BodyStep::Decide,
            // A request waiting for keys buffers its body; it is decided when they arrive.
            Waiting::Body | Waiting::Keys(_) | Waiting::Decision => BodyStep::Pause,
        }
    }

    /// The trailers of request `id` arrived: its body is complete.
    pub fn on_trailers(&mut self, id: u32) -> BodyStep {
        let Some(held) = self.held.get_mut(&id) else {
            return BodyStep::Continue;
        };
        held.complete = true;
        match held.waiting {
            Waiting::Body => BodyStep::Decide,
            Waiting::Keys(_) | Waiting::Decision => BodyStep::Pause,
        }
    }

    /// Request `id` is decided, or gone: its body callbacks pass everything on.
    pub fn release(&mut self, id: u32) {
        self.held.remove(&id);
    }

    /// The requests to decide again at `now_ms`: those waiting for `tenant`'s keys (its key
    /// set changed, or a refetch it asked for was settled), and those whose wait for keys is
    /// over (`None`: only these). They wait for nothing until they are decided.
    pub fn wake(&mut self, tenant: Option<TenantIndex>, now_ms: u64) -> Vec<u32> {
        let mut due = Vec::new();
        for (id, held) in &mut self.held {
            let Waiting::Keys(waited_for) = held.waiting else {
                continue;
            };
            if Some(waited_for) == tenant || held.key_wait.is_some_and(|w| w.is_over(now_ms)) {
                held.waiting = Waiting::Decision;
                due.push(*id);
            }
        }
        due
    }

    /// The requests whose body is overdue at `now_ms`: decide them again now (their body is
    /// [`HeldBody::TimedOut`]).
    pub fn expire(&mut self, now_ms: u64) -> Vec<u32> {
        let mut overdue = Vec::new();
        for (id, held) in &mut self.held {
            if held.waiting == Waiting::Body
                && !held.complete
                && now_ms.saturating_sub(held.since_ms) > BODY_WAIT_MS
            {
                held.timed_out = true;
                overdue.push(*id);
            }
        }
        overdue
    }

    /// The tenants whose waiting requests asked for a refetch since the last call.
    pub fn take_refetch_requests(&mut self) -> Vec<TenantIndex> {
        std::mem::take(&mut self.refetch_requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::KeysNeeded;

    const KEY_WAIT_MS: u64 = 3_000;
    const MAX: usize = 100;
    const T0: TenantIndex = TenantIndex(0);
    const T1: TenantIndex = TenantIndex(1);

    fn keys(tenant: TenantIndex, refetch: bool) -> Wait {
        Wait::Keys(KeysNeeded { tenant, refetch })
    }

    fn hold(held: &mut HeldRequests, id: u32, wait: Wait, now_ms: u64) -> Hold {
        held.hold(id, wait, now_ms, KEY_WAIT_MS, false)
    }

    /// Request 1 held for its body since time 0.
    fn holding_a_body() -> HeldRequests {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, Wait::Body, 0);
        held
    }

    #[test]
    fn requests_that_are_not_held_pass_their_body_on() {
        let mut held = HeldRequests::default();
        assert_eq!(held.on_body(1, 10, false, MAX), BodyStep::Continue);
        assert_eq!(held.on_trailers(1), BodyStep::Continue);
        assert_eq!(held.body(1, false, MAX), HeldBody::Unread);
        hold(&mut held, 1, Wait::Body, 0);
        held.release(1);
        assert_eq!(held.on_body(1, 10, true, MAX), BodyStep::Continue);
        assert_eq!(held.body(1, false, MAX), HeldBody::Unread);
    }

    #[test]
    fn a_body_is_buffered_until_its_end_then_decided() {
        let mut held = HeldRequests::default();
        assert_eq!(hold(&mut held, 1, Wait::Body, 0), Hold::Paused);
        assert_eq!(held.on_body(1, 40, false, MAX), BodyStep::Pause);
        assert_eq!(held.body(1, false, MAX), HeldBody::Unread);
        assert_eq!(held.on_body(1, 90, true, MAX), BodyStep::Decide);
        assert_eq!(held.body(1, false, MAX), HeldBody::Complete { size: 90 });
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_complete_and_one_byte_more_is_too_large() {
        let mut held = holding_a_body();
        assert_eq!(held.on_body(1, MAX, false, MAX), BodyStep::Pause);
        assert_eq!(held.on_body(1, MAX, true, MAX), BodyStep::Decide);
        assert_eq!(held.body(1, false, MAX), HeldBody::Complete { size: MAX });
        hold(&mut held, 2, Wait::Body, 0);
        assert_eq!(held.on_body(2, MAX + 1, false, MAX), BodyStep::Decide);
        assert_eq!(held.body(2, false, MAX), HeldBody::TooLarge);
    }

    #[test]
    fn trailers_complete_the_body() {
        let mut held = holding_a_body();
        held.on_body(1, 12, false, MAX);
        assert_eq!(held.on_trailers(1), BodyStep::Decide);
        assert_eq!(held.body(1, false, MAX), HeldBody::Complete { size: 12 });
    }

    #[test]
    fn a_request_without_a_body_has_an_empty_complete_one() {
        let held = HeldRequests::default();
        assert_eq!(held.body(7, true, MAX), HeldBody::Complete { size: 0 });
    }

    #[test]
    fn a_body_arriving_while_keys_load_is_buffered_and_kept_for_the_decision() {
        let mut held = HeldRequests::default();
        assert_eq!(hold(&mut held, 1, keys(T0, false), 0), Hold::Paused);
        assert_eq!(held.on_body(1, 30, true, MAX), BodyStep::Pause);
        assert_eq!(held.on_trailers(1), BodyStep::Pause);
        assert_eq!(held.wake(Some(T0), 10), [1]);
        assert_eq!(held.body(1, false, MAX), HeldBody::Complete { size: 30 });
        // Woken, it waits for nothing until decided: a chunk now is still buffered.
        assert_eq!(held.on_body(1, 30, true, MAX), BodyStep::Pause);
        assert_eq!(held.on_trailers(1), BodyStep::Pause);
    }

    #[test]
    fn a_request_that_ended_with_its_headers_is_complete_while_it_waits_for_keys() {
        let mut held = HeldRequests::default();
        held.hold(1, keys(T0, false), 0, KEY_WAIT_MS, true);
        assert_eq!(held.body(1, false, MAX), HeldBody::Complete { size: 0 });
    }

    #[test]
    fn key_changes_wake_only_the_requests_of_that_tenant() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, keys(T0, false), 0);
        hold(&mut held, 2, keys(T1, false), 0);
        hold(&mut held, 3, Wait::Body, 0);
        assert_eq!(held.wake(Some(T1), 10), [2]);
        assert_eq!(held.wake(Some(T1), 10), Vec::<u32>::new(), "woken once");
        assert_eq!(held.wake(Some(T0), 10), [1]);
    }

    #[test]
    fn requests_whose_wait_for_keys_is_over_are_woken_on_any_tick() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, keys(T0, false), 1_000);
        hold(&mut held, 2, keys(T0, false), 2_000);
        assert!(held.wake(None, 1_000 + KEY_WAIT_MS - 1).is_empty());
        assert_eq!(held.wake(None, 1_000 + KEY_WAIT_MS), [1]);
        assert_eq!(held.wake(Some(T1), 2_000 + KEY_WAIT_MS), [2]);
    }

    #[test]
    fn a_request_keeps_its_first_deadline_however_often_it_waits_again() {
        let mut held = HeldRequests::default();
        assert_eq!(hold(&mut held, 1, keys(T0, false), 1_000), Hold::Paused);
        held.wake(Some(T0), 2_000);
        // Decided again before the deadline: waits again, for the rest of the first wait.
        assert_eq!(hold(&mut held, 1, keys(T0, false), 2_000), Hold::Paused);
        assert!(held.wake(None, 1_000 + KEY_WAIT_MS - 1).is_empty());
        assert_eq!(held.wake(None, 1_000 + KEY_WAIT_MS), [1]);
        let at_deadline = hold(&mut held, 1, keys(T0, false), 1_000 + KEY_WAIT_MS);
        assert_eq!(at_deadline, Hold::WaitOver, "decided again at the deadline");
    }

    #[test]
    fn the_key_wait_is_carried_across_a_body_hold() {
        let mut held = HeldRequests::default();
        held.hold(1, keys(T1, false), 1_000, KEY_WAIT_MS, false);
        assert_eq!(held.wake(Some(T1), 1_500), [1]);
        held.hold(1, Wait::Body, 1_500, KEY_WAIT_MS, false);
        assert_eq!(held.on_body(1, 5, true, MAX), BodyStep::Decide);
        // The body completes after the first deadline and the keys are needed again.
        let again = held.hold(1, keys(T1, true), 1_000 + KEY_WAIT_MS, KEY_WAIT_MS, false);
        assert_eq!(again, Hold::WaitOver, "no second wait");
    }

    #[test]
    fn refetches_are_asked_for_once_per_tenant_until_taken() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, keys(T0, true), 0);
        hold(&mut held, 2, keys(T0, true), 0);
        hold(&mut held, 3, keys(T1, false), 0);
        assert_eq!(held.take_refetch_requests(), [T0]);
        assert!(held.take_refetch_requests().is_empty());
        hold(&mut held, 4, keys(T1, true), 0);
        assert_eq!(held.take_refetch_requests(), [T1]);
    }

    #[test]
    fn a_request_whose_wait_is_over_asks_for_no_refetch() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, keys(T0, false), 0);
        assert_eq!(
            hold(&mut held, 1, keys(T0, true), KEY_WAIT_MS),
            Hold::WaitOver
        );
        assert!(held.take_refetch_requests().is_empty());
    }

    #[test]
    fn an_incomplete_body_times_out_after_the_body_wait() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, Wait::Body, 1_000);
        held.on_body(1, 10, false, MAX);
        assert!(held.expire(1_000 + BODY_WAIT_MS).is_empty());
        assert_eq!(held.body(1, false, MAX), HeldBody::Unread);
        assert_eq!(held.expire(1_000 + BODY_WAIT_MS + 1), [1]);
        assert_eq!(held.body(1, false, MAX), HeldBody::TimedOut);
    }

    #[test]
    fn a_too_large_body_is_refused_as_too_large_even_once_late() {
        let mut held = holding_a_body();
        held.on_body(1, MAX + 1, false, MAX);
        held.expire(BODY_WAIT_MS + 1);
        assert_eq!(held.body(1, false, MAX), HeldBody::TooLarge);
    }

    #[test]
    fn complete_bodies_and_requests_waiting_for_keys_never_time_out() {
        let mut held = holding_a_body();
        held.on_body(1, 10, true, MAX);
        hold(&mut held, 2, keys(T0, false), 0);
        hold(&mut held, 3, Wait::Body, 0);
        held.on_trailers(3);
        assert!(held.expire(10 * BODY_WAIT_MS).is_empty());
    }

    #[test]
    fn the_body_wait_starts_when_the_body_is_asked_for_not_at_the_wait_for_keys() {
        let mut held = HeldRequests::default();
        hold(&mut held, 1, keys(T0, false), 0);
        held.wake(Some(T0), BODY_WAIT_MS);
        hold(&mut held, 1, Wait::Body, BODY_WAIT_MS);
        assert!(held.expire(2 * BODY_WAIT_MS).is_empty());
        assert_eq!(held.expire(2 * BODY_WAIT_MS + 1), [1]);
        // Asked for again while still waiting for it: the first request's clock keeps running.
        let mut held = HeldRequests::default();
        hold(&mut held, 2, Wait::Body, 0);
        hold(&mut held, 2, Wait::Body, 10);
        assert_eq!(held.expire(BODY_WAIT_MS + 1), [2]);
    }
}
