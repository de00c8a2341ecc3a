//! The one path every request takes, whether it is decided when its headers arrive or later,
//! when the key set it waited for arrives: decide with the core, then count, audit-log and carry
//! out the action.

use jira_entra_guard_core::audit::audit_line;
use jira_entra_guard_core::decide::{decide, Action, Decision, Verdict};
use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::jwks::KeySetError;
use jira_entra_guard_core::key_schedule::KeyWait;
use proxy_wasm::hostcalls;

use crate::host;
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
    let Some(policy) = state.borrow().policy.clone() else {
        host::deny(&Denial::KeySet(KeySetError::Unavailable), 1);
        return Flow::Stop;
    };
    let headers = host::request_headers();
    let (head, request_id) = host::request_head(&headers);
    let now_ms = host::now_millis();
    let now = host::seconds(now_ms);
    let mut shared = state.borrow_mut();
    let shared = &mut *shared;
    let keys = if shared.host_signatures {
        shared.keys.at_with(now_ms, &EnvoyVerifier)
    } else {
        shared.keys.at(now_ms)
    };
    let mut verdict = decide(&policy, &head, &keys, &mut shared.cache, now);
    if let Decision::AwaitKeys { tenant, refetch } = verdict.decision {
        if wait.is_some_and(|w| w.is_over(now_ms)) {
            verdict = verdict.wait_over(&keys);
        } else {
            if refetch && !shared.refetch_requested.contains(&tenant) {
                shared.refetch_requested.push(tenant);
            }
            shared.waiters.push(Waiter {
                context_id,
                tenant,
                wait: KeyWait::continued(wait, now_ms, policy.key_wait_ms()),
            });
            return Flow::Stop;
        }
    }
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
        // Handled above: a request never waits twice past its deadline.
        Action::AwaitKeys { .. } => {
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
