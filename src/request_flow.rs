//! The one path every request takes, whether it is decided when its headers arrive or later
//! (its body complete or overdue, the key set it waited for arrived, or its wait over): decide
//! with the core, hold the request when the outcome is a wait, else count, audit-log and carry
//! out the outcome. It decides nothing itself: the outcome, the holding, the counters and the
//! response are the core's ([`jira_entra_guard_core::decide`],
//! [`jira_entra_guard_core::held_requests`], [`jira_entra_guard_core::metrics`],
//! [`jira_entra_guard_core::reply`]).

use jira_entra_guard_core::audit::audit_line;
use jira_entra_guard_core::decide::decide_with_body;
use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::held_requests::Hold;
use jira_entra_guard_core::keys::jwks::KeySetError;
use jira_entra_guard_core::metrics::request_counters;
use jira_entra_guard_core::reply::{response, Response};
use jira_entra_guard_core::request::RequestHead;
use proxy_wasm::hostcalls;

use crate::host;
use crate::request_body;
use crate::root::SharedState;
use crate::signature::EnvoyVerifier;

/// Filter-state key (as `wasm.jira_entra_guard_audit`) carrying the audit record, for Envoy's
/// access log.
pub const AUDIT_PROPERTY: &str = "jira_entra_guard_audit";

/// What became of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// It may go on to Jira.
    Continue,
    /// It was answered locally, or it is held.
    Stop,
}

/// Decides the effective request and carries out the decision. `headers_ended`: the request
/// ended with its headers (it has no body).
pub fn process_request(state: &SharedState, context_id: u32, headers_ended: bool) -> Flow {
    let Some(policy) = state.borrow().policy.clone() else {
        host::deny(&Denial::KeySet(KeySetError::Unavailable), 1);
        return Flow::Stop;
    };
    let headers = host::request_headers();
    let (head, request_id) = RequestHead::from_headers(&headers);
    let now_ms = host::now_millis();
    let now = host::seconds(now_ms);
    let mut shared = state.borrow_mut();
    let shared = &mut *shared;
    let keys = if shared.host_signatures {
        shared.keys.at_with(now_ms, &EnvoyVerifier)
    } else {
        shared.keys.at(now_ms)
    };
    let body = request_body::buffered(shared, context_id, headers_ended, policy.max_body_bytes());
    let verdict = decide_with_body(
        &policy,
        &head,
        body.as_request_body(),
        &keys,
        &mut shared.cache,
        now,
    );
    let verdict = match verdict.decided() {
        Ok(decided) => decided,
        Err(waiting) => {
            let hold = shared.held.hold(
                context_id,
                waiting.outcome,
                now_ms,
                policy.key_wait_ms(),
                headers_ended,
            );
            match hold {
                Hold::Paused => return Flow::Stop,
                Hold::WaitOver => waiting.wait_over(&policy, &keys),
            }
        }
    };
    shared.held.release(context_id);
    for (stat, tag) in request_counters(&verdict).into_iter().flatten() {
        shared.metrics.count(stat, tag);
    }
    if let Some(line) = audit_line(&policy, &head, &verdict, request_id, now) {
        log::info!("{line}");
        let _ = hostcalls::set_property(vec![AUDIT_PROPERTY], Some(line.as_bytes()));
    }
    match response(&verdict.outcome) {
        Response::Forward(changes) => {
            host::forward(&changes, &|name| headers.iter().any(|(n, _)| n == name));
            Flow::Continue
        }
        Response::Refuse(denial) => {
            // Only a denial carries `Retry-After`; an allowed request does not pay for it.
            let retry_after = match &verdict.token {
                Some(t) => shared.keys.retry_after_seconds(t.tenant, now_ms),
                None => shared.keys.soonest_retry_after_seconds(now_ms),
            };
            host::deny(denial, retry_after);
            Flow::Stop
        }
    }
}

/// Decides again a held request the root context woke (its keys arrived, its wait or its body
/// is overdue), and lets it go on to Jira when it may. A request that went away meanwhile is
/// forgotten.
pub fn decide_again(state: &SharedState, context_id: u32) {
    if hostcalls::set_effective_context(context_id).is_err() {
        state.borrow_mut().held.release(context_id);
        return;
    }
    if process_request(state, context_id, false) == Flow::Continue {
        let _ = hostcalls::resume_http_request();
    }
}
