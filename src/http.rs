//! The request context: reads the request head, asks the core for a decision and applies it.
//! A request whose tenant's key set is still loading is parked in the root context's waiting
//! list; the root context decides it again when the keys arrive or the wait bound passes.

use jira_entra_guard_core::decide::{decide, Decision};
use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::jwks::KeySetError;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host;
use crate::root::{SharedState, Waiter};

/// One request.
pub struct GuardRequest {
    context_id: u32,
    state: SharedState,
}

impl GuardRequest {
    /// A request context sharing its VM's state.
    pub fn new(context_id: u32, state: SharedState) -> Self {
        GuardRequest { context_id, state }
    }
}

impl Context for GuardRequest {}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.state.borrow().policy.clone() else {
            host::deny(&Denial::KeySet(KeySetError::Unavailable), 1);
            return Action::Pause;
        };
        let headers = host::request_headers();
        let head = host::request_head(&headers);
        let now_ms = host::now_millis();
        let shared = self.state.borrow();
        let decision = decide(
            &policy,
            &head,
            &shared.keys.at(now_ms),
            host::seconds(now_ms),
        );
        let retry_after = shared.keys.soonest_retry_after_seconds(now_ms);
        drop(shared);
        if let Decision::AwaitKeys { tenant, refetch } = decision {
            let mut shared = self.state.borrow_mut();
            if refetch && !shared.refetch_requested.contains(&tenant) {
                shared.refetch_requested.push(tenant);
            }
            shared.waiters.push(Waiter {
                context_id: self.context_id,
                tenant,
                deadline_ms: now_ms.saturating_add(policy.key_wait_ms()),
            });
            return Action::Pause;
        }
        if host::apply(&decision, retry_after) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}
