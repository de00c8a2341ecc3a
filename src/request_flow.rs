//! The one path every request takes, whether it is decided when its headers arrive or later,
//! when the key set it waited for arrives: decide with the core, then count, audit-log and carry
//! out the action.

use jira_entra_guard_core::audit::audit_line;
use jira_entra_guard_core::decide::{decide_with_body, Action, Decision, Verdict};
use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::keys::jwks::KeySetError;
use jira_entra_guard_core::keys::wait::KeyWait;
use jira_entra_guard_core::request::RequestHead;
use proxy_wasm::hostcalls;

use crate::host;
use crate::request_body::{self, Waiting};
use crate::root::{SharedState, Waiter};
use crate::signature::EnvoyVerifier;

/// Filter-state key (as `wasm.jira_entra_guard_audit`) carrying the audit record, for Envoy's
/// access log.
pub const AUDIT_PROPERTY: &str = "jira_entra_guard_audit";

/// What became of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// It may go on to Jira.
    Continue,
    /// It was answered locally, or it waits for keys.
    Stop,
}

/// Decides the effective request and carries out the decision. `wait`: the request's wait for
/// keys when it waited before; it keeps that wait's deadline however many fetches it sees.
pub fn process(state: &SharedState, context_id: u32, wait: Option<KeyWait>) -> Flow {
    process_request(state, context_id, wait, false)
}

/// [`process`], told whether the request ended with its headers (it has no body).
pub fn process_request(
    state: &SharedState,
    context_id: u32,
    wait: Option<KeyWait>,
    headers_ended: bool,
) -> Flow {
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
    let mut verdict = decide_with_body(
        &policy,
        &head,
        body.as_request_body(),
        &keys,
        &mut shared.cache,
        now,
    );
    if let Decision::NeedBody = verdict.decision {
        request_body::hold(shared, context_id, Waiting::Body, false);
        return Flow::Stop;
    }
    if let Decision::AwaitKeys { tenant, refetch } = verdict.decision {
        // A request held for its body after waiting for keys keeps the wait it started.
        let wait = wait.or_else(|| request_body::key_wait(shared, context_id));
        if wait.is_some_and(|w| w.is_over(now_ms)) {
            verdict = verdict.wait_over(&keys);
        } else {
            let wait = KeyWait::continued(wait, now_ms, policy.key_wait_ms());
            request_body::hold_for_keys(shared, context_id, headers_ended, wait);
            if refetch && !shared.refetch_requested.contains(&tenant) {
                shared.refetch_requested.push(tenant);
            }
            shared.waiters.push(Waiter {
                context_id,
                tenant,
                wait,
            });
            return Flow::Stop;
        }
    }
    request_body::release(shared, context_id);
    let action = verdict.action(&policy);
    count(shared, &verdict, &action);
    if let Some(line) = audit_line(&policy, &head, &verdict, &action, request_id, now) {
        log::info!("{line}");
        let _ = hostcalls::set_property(vec![AUDIT_PROPERTY], Some(line.as_bytes()));
    }
    // Only a denial carries `Retry-After`; an allowed request does not pay for it.
    let retry_after = || match &verdict.token {
        Some(t) => shared.keys.retry_after_seconds(t.tenant, now_ms),
        None => shared.keys.soonest_retry_after_seconds(now_ms),
    };
    match action {
        Action::Forward { identity, .. } => {
            host::forward(identity.as_ref(), &|name| {
                headers.iter().any(|(n, _)| n == name)
            });
            Flow::Continue
        }
        Action::Deny(denial) => {
            host::deny(&denial, retry_after());
            Flow::Stop
        }
        // Handled above: a request whose wait is over is decided with the keys in hand, and a
        // body is asked for only once.
        Action::AwaitKeys { .. } | Action::NeedBody => {
            host::deny(&Denial::KeySet(KeySetError::Unavailable), retry_after());
            Flow::Stop
        }
    }
}

fn count(shared: &mut crate::root::Shared, verdict: &Verdict<'_>, action: &Action<'_>) {
    let metrics = &mut shared.metrics;
    if verdict.token.is_some() {
        let result = if verdict.cache_hit { "hit" } else { "miss" };
        metrics.count("token_cache_total", Some(("result", result)));
    }
    let denial = match (&verdict.decision, action) {
        (Decision::Deny(d), Action::Forward { .. }) => {
            metrics.count("dry_run_denied_total", Some(("reason", d.metric_reason())));
            Some(d)
        }
        (Decision::Deny(d), _) => {
            metrics.count("denied_total", Some(("reason", d.metric_reason())));
            Some(d)
        }
        _ => {
            metrics.count("allowed_total", None);
            None
        }
    };
    if let Some(Denial::Token(e)) = denial {
        metrics.count("invalid_token_total", Some(("cause", e.code())));
    }
}
