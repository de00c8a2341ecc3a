//! The root context: one per Wasm VM. It owns what requests share — the compiled policy, the key
//! schedule with each tenant's key set, and the list of requests waiting for keys — and it is
//! the only place that talks to Entra ID (through Envoy's cluster, with `dispatch_http_call`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::decide::{decide, Decision};
use jira_entra_guard_core::jwks::parse_jwks;
use jira_entra_guard_core::key_schedule::{KeySchedule, ScheduleSettings};
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::host;
use crate::http::GuardRequest;

/// How long a request may wait for a key set that is being fetched before it gets a 503.
pub const KEY_WAIT_MILLIS: u64 = 3_000;
/// Timeout of one key-set fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Granularity of the fetch schedule and of waiting-request deadlines.
const TICK: Duration = Duration::from_millis(250);

/// A request paused until its tenant's key set arrives.
#[derive(Debug, Clone, Copy)]
pub struct Waiter {
    /// The request's context id.
    pub context_id: u32,
    /// The tenant whose keys it needs.
    pub tenant: TenantIndex,
    /// When it stops waiting and gets a 503 (epoch milliseconds).
    pub deadline_ms: u64,
}

/// What the root context shares with the request contexts of its VM.
#[derive(Debug)]
pub struct Shared {
    /// The compiled configuration; `None` until `on_configure` succeeds.
    pub policy: Option<Rc<Policy>>,
    /// Key sets and their fetch schedule.
    pub keys: KeySchedule,
    /// Requests waiting for a key set.
    pub waiters: Vec<Waiter>,
}

/// Shared state handle.
pub type SharedState = Rc<RefCell<Shared>>;

/// The root context.
pub struct GuardRoot {
    state: SharedState,
    fetches: HashMap<u32, TenantIndex>,
}

impl GuardRoot {
    /// A root context with no configuration yet.
    pub fn new() -> Self {
        GuardRoot {
            state: Rc::new(RefCell::new(Shared {
                policy: None,
                keys: KeySchedule::new(0, ScheduleSettings::default(), 0),
                waiters: Vec::new(),
            })),
            fetches: HashMap::new(),
        }
    }

    fn policy(&self) -> Option<Rc<Policy>> {
        self.state.borrow().policy.clone()
    }

    /// Starts every fetch that is due.
    fn fetch_due(&mut self) {
        let Some(policy) = self.policy() else { return };
        let now = host::now_seconds();
        let due = self.state.borrow().keys.due(now);
        for tenant in due {
            let Some(t) = policy.tenants().get(tenant.0) else {
                continue;
            };
            let headers = vec![
                (":method", "GET"),
                (":path", t.jwks.path.as_str()),
                (":authority", t.jwks.authority.as_str()),
                ("accept", "application/json"),
                ("user-agent", "jira-entra-guard"),
            ];
            match self.dispatch_http_call(&t.jwks.cluster, headers, None, vec![], FETCH_TIMEOUT) {
                Ok(token) => {
                    self.fetches.insert(token, tenant);
                    self.state.borrow_mut().keys.fetch_started(tenant);
                }
                Err(status) => {
                    let next = self
                        .state
                        .borrow_mut()
                        .keys
                        .fetch_failed(tenant, now, jitter());
                    log::warn!(
                        "key set fetch for tenant {} not dispatched (cluster {:?}: {status:?}); next attempt in {}s",
                        t.tenant_id,
                        t.jwks.cluster,
                        next.saturating_sub(now)
                    );
                }
            }
        }
    }

    /// Decides again every request waiting for `tenant` (its keys arrived or failed), and
    /// answers requests whose wait is over.
    fn wake_waiters(&mut self, tenant: Option<TenantIndex>) {
        let now_ms = host::now_millis();
        let (ready, expired): (Vec<Waiter>, Vec<Waiter>) = {
            let mut shared = self.state.borrow_mut();
            let waiters = std::mem::take(&mut shared.waiters);
            let (act, keep): (Vec<Waiter>, Vec<Waiter>) = waiters
                .into_iter()
                .partition(|w| Some(w.tenant) == tenant || w.deadline_ms <= now_ms);
            shared.waiters = keep;
            act.into_iter().partition(|w| Some(w.tenant) == tenant)
        };
        for waiter in ready.into_iter().chain(expired) {
            if hostcalls::set_effective_context(waiter.context_id).is_err() {
                continue; // the client went away while waiting
            }
            let timed_out = waiter.deadline_ms <= now_ms;
            self.decide_for_waiter(waiter, timed_out);
        }
    }

    fn decide_for_waiter(&self, waiter: Waiter, timed_out: bool) {
        let Some(policy) = self.policy() else { return };
        let headers = host::request_headers();
        let head = host::request_head(&headers);
        let now = host::now_seconds();
        let shared = self.state.borrow();
        let decision = decide(&policy, &head, &shared.keys.at(now), now);
        let retry_after = shared.keys.retry_after(waiter.tenant, now);
        drop(shared);
        if let Decision::AwaitKeys(tenant) = decision {
            if !timed_out {
                self.state
                    .borrow_mut()
                    .waiters
                    .push(Waiter { tenant, ..waiter });
                return;
            }
        }
        if host::apply(&decision, retry_after) {
            let _ = hostcalls::resume_http_request();
        }
    }
}

impl Default for GuardRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// Pseudo-random spread for retry delays, so that workers and Envoy processes that failed
/// together do not retry together.
fn jitter() -> u32 {
    let nanos = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.subsec_nanos());
    nanos.rotate_left(13) ^ 0x9e37_79b9
}

impl Context for GuardRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let Some(tenant) = self.fetches.remove(&token) else {
            return;
        };
        let Some(policy) = self.policy() else { return };
        let tenant_id = policy
            .tenants()
            .get(tenant.0)
            .map(|t| t.tenant_id.to_string())
            .unwrap_or_default();
        let now = host::now_seconds();
        // A failed call arrives as a response without `:status`.
        let status = self.get_http_call_response_header(":status");
        let outcome = match status.as_deref().map(str::parse::<u16>) {
            Some(Ok(code)) if (200..300).contains(&code) => {
                let body = self
                    .get_http_call_response_body(0, body_size)
                    .unwrap_or_default();
                parse_jwks(&body).map_err(|e| format!("HTTP {code}, {e}"))
            }
            Some(Ok(code)) => Err(format!("HTTP {code}")),
            _ => Err("no response (connection failure or timeout)".to_owned()),
        };
        match outcome {
            Ok(set) => {
                let usable = set.len();
                let skipped = set.skipped().len();
                let next = self
                    .state
                    .borrow_mut()
                    .keys
                    .fetch_succeeded(tenant, set, now);
                log::info!(
                    "key set for tenant {tenant_id}: {usable} usable keys, {skipped} skipped; next refresh in {}s",
                    next.saturating_sub(now)
                );
            }
            Err(why) => {
                let mut shared = self.state.borrow_mut();
                let next = shared.keys.fetch_failed(tenant, now, jitter());
                let kept = shared.keys.usable_keys(tenant);
                drop(shared);
                log::warn!(
                    "key set fetch for tenant {tenant_id} failed: {why}; keeping {kept} usable keys; next attempt in {}s",
                    next.saturating_sub(now)
                );
            }
        }
        self.wake_waiters(Some(tenant));
    }
}

impl RootContext for GuardRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        let policy = match compile_policy(&config, &env) {
            Ok(policy) => policy,
            Err(e) => {
                log::error!("configuration refused: {e}");
                return false;
            }
        };
        let now = host::now_seconds();
        {
            let mut shared = self.state.borrow_mut();
            shared.keys =
                KeySchedule::new(policy.tenants().len(), ScheduleSettings::default(), now);
            shared.policy = Some(Rc::new(policy));
        }
        if let Err(status) = hostcalls::set_tick_period(TICK) {
            log::error!("cannot set tick period: {status:?}");
            return false;
        }
        self.fetch_due();
        true
    }

    fn on_tick(&mut self) {
        self.fetch_due();
        self.wake_waiters(None);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GuardRequest::new(context_id, self.state.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
