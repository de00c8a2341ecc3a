//! The root context: one per Wasm VM. It owns what the requests of its VM share — the compiled
//! policy, the key store, and the requests waiting for keys — and it is the only place that
//! talks to Entra ID (through Envoy's cluster, with `dispatch_http_call`).
//!
//! For keys it decides nothing: it hands the key lifecycle
//! (`jira_entra_guard_core::keys::lifecycle`) its events — the tick, shared-data reads and
//! writes, HTTP call responses — and carries out the commands that come back with host calls
//! (shared data through [`crate::shared_keys`], `dispatch_http_call`, logging, metrics), waking
//! the waiting requests of a tenant when told to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::held_requests::HeldRequests;
use jira_entra_guard_core::keys::lifecycle::{
    Command, Event, FetchId, KeyLifecycle, LogLevel, Moment,
};
use jira_entra_guard_core::keys::schedule::ScheduleSettings;
use jira_entra_guard_core::keys::store::KeyStore;
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use jira_entra_guard_core::token_cache::TokenCache;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::host;
use crate::http::GuardRequest;
use crate::metrics::Metrics;
use crate::request_flow::decide_again;
use crate::shared_keys::SharedKeys;

/// Granularity of the fetch schedule and of waiting-request deadlines.
const TICK: Duration = Duration::from_millis(250);

/// What the root context shares with the request contexts of its VM.
#[derive(Debug, Default)]
pub struct Shared {
    /// The compiled configuration; `None` until `on_configure` succeeds.
    pub policy: Option<Rc<Policy>>,
    /// This VM's view of every tenant's key set.
    pub keys: KeyStore,
    /// Verified tokens of this VM.
    pub cache: TokenCache,
    /// This VM's stats.
    pub metrics: Metrics,
    /// True when Envoy's `verify_signature` checks signatures, false for RSA in Wasm.
    pub host_signatures: bool,
    /// Requests held undecided, waiting for keys or for their body, and the refetches they
    /// asked for.
    pub held: HeldRequests,
}

/// Shared state handle.
pub type SharedState = Rc<RefCell<Shared>>;

/// The root context.
pub struct GuardRoot {
    state: SharedState,
    lifecycle: KeyLifecycle,
    records: SharedKeys,
    /// The key fetch each pending HTTP call belongs to, by call token.
    fetches: HashMap<u32, FetchId>,
}

impl GuardRoot {
    /// A root context with no configuration yet.
    pub fn new() -> Self {
        GuardRoot {
            state: Rc::new(RefCell::new(Shared::default())),
            lifecycle: KeyLifecycle::default(),
            records: SharedKeys::default(),
            fetches: HashMap::new(),
        }
    }

    fn policy(&self) -> Option<Rc<Policy>> {
        self.state.borrow().policy.clone()
    }

    /// Runs the key lifecycle for a tick: refetches asked for by requests, then every tenant's
    /// shared record; then answers the requests whose wait is over.
    fn tend_keys(&mut self) {
        if self.policy().is_none() {
            return;
        }
        let at = moment();
        let requested = self.state.borrow_mut().held.take_refetch_requests();
        for tenant in requested {
            self.run(at, Event::RefetchRequested { tenant });
        }
        self.run(at, Event::Tick);
        self.wake_waiters(None);
        self.record_gauges();
        self.state.borrow_mut().metrics.flush();
    }

    /// Hands one event to the key lifecycle and carries out what it asks for.
    fn run(&mut self, at: Moment, event: Event) {
        let commands = {
            let mut shared = self.state.borrow_mut();
            self.lifecycle.handle(&mut shared.keys, at, event)
        };
        for command in commands {
            self.carry_out(at, command);
        }
    }

    fn carry_out(&mut self, at: Moment, command: Command) {
        match command {
            Command::ReadRecord { tenant } => {
                let (bytes, cas) = self.records.read_record(tenant);
                self.run(at, Event::RecordRead { tenant, bytes, cas });
            }
            Command::ReadDocument { tenant } => {
                let document = self.records.read_document(tenant);
                self.run(at, Event::DocumentRead { tenant, document });
            }
            Command::WriteRecord { tenant, bytes, cas } => {
                let result = self.records.write_record(tenant, &bytes, cas);
                self.run(at, Event::RecordWritten { tenant, result });
            }
            Command::PublishDocument { tenant, document } => {
                self.records.publish_document(tenant, &document);
            }
            Command::Dispatch {
                fetch,
                cluster,
                authority,
                path,
                timeout_ms,
            } => {
                let headers = vec![
                    (":method", "GET"),
                    (":path", path.as_str()),
                    (":authority", authority.as_str()),
                    ("accept", "application/json"),
                    ("user-agent", "jira-entra-guard"),
                ];
                let timeout = Duration::from_millis(timeout_ms);
                match self.dispatch_http_call(&cluster, headers, None, vec![], timeout) {
                    Ok(token) => {
                        self.fetches.insert(token, fetch);
                    }
                    Err(status) => {
                        let status = format!("{status:?}");
                        self.run(at, Event::DispatchFailed { fetch, status });
                    }
                }
            }
            Command::KeysChanged { tenant } | Command::RefetchSettled { tenant } => {
                self.wake_waiters(Some(tenant));
            }
            Command::Log { level, text } => match level {
                LogLevel::Info => log::info!("{text}"),
                LogLevel::Warn => log::warn!("{text}"),
            },
            Command::CountFetch(outcome) => self
                .state
                .borrow_mut()
                .metrics
                .count("key_fetch_total", Some(("outcome", outcome.label()))),
        }
    }

    /// Per-tenant gauges: usable keys and the age of the key set in use.
    fn record_gauges(&self) {
        let Some(policy) = self.policy() else { return };
        let now_ms = host::now_millis();
        let mut shared = self.state.borrow_mut();
        let shared = &mut *shared;
        for (index, tenant) in policy.tenants().iter().enumerate() {
            let id = tenant.tenant_id.to_string();
            let usable = shared.keys.usable_keys(TenantIndex(index));
            let age = shared.keys.age_seconds(TenantIndex(index), now_ms);
            let usable = u64::try_from(usable).unwrap_or(0);
            let tenant = Some(("tenant", id.as_str()));
            shared.metrics.gauge(("usable_keys", tenant), usable);
            shared.metrics.gauge(("key_set_age_seconds", tenant), age);
        }
    }

    /// Decides again the requests waiting for `tenant` (its record changed), and answers those
    /// whose wait is over (`None`: only the latter).
    fn wake_waiters(&mut self, tenant: Option<TenantIndex>) {
        let due = self
            .state
            .borrow_mut()
            .held
            .wake(tenant, host::now_millis());
        for context_id in due {
            decide_again(&self.state, context_id);
        }
    }
}

/// A cache of `capacity` verified tokens, its digest key drawn from the host's random source
/// (WASI `random_get`). Without randomness the cache stays off: every token is verified.
fn verified_token_cache(capacity: usize) -> TokenCache {
    let (cache, failure) =
        TokenCache::with_random_key(capacity, |key| getrandom::getrandom(key.as_mut_slice()));
    if let Some(e) = failure {
        log::error!("token cache disabled: the host gave no random bytes for its key ({e})");
    }
    cache
}

impl Default for GuardRoot {
    fn default() -> Self {
        Self::new()
    }
}

/// The instant of a host callback, with the jitter its retries are spread by.
fn moment() -> Moment {
    Moment {
        now_ms: host::now_millis(),
        jitter: host::jitter(),
    }
}

impl Context for GuardRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let Some(fetch) = self.fetches.remove(&token) else {
            return;
        };
        let status = self.get_http_call_response_header(":status");
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let answer = Event::FetchAnswered {
            fetch,
            status,
            body,
        };
        self.run(moment(), answer);
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
        let host_signatures = match crate::signature::choose(policy.signature_backend()) {
            Ok(host) => host,
            Err(e) => {
                log::error!("configuration refused: {e}");
                return false;
            }
        };
        log::info!(
            "RS256 signatures checked by {}",
            if host_signatures {
                "Envoy's verify_signature (BoringSSL)"
            } else {
                "RSA compiled into the module"
            }
        );
        let settings = policy
            .tenants()
            .iter()
            .map(|t| ScheduleSettings::for_source(&t.jwks))
            .collect();
        crate::metrics::define_every_counter();
        self.records = SharedKeys::for_policy(&policy);
        self.lifecycle = KeyLifecycle::for_policy(&policy);
        {
            let mut shared = self.state.borrow_mut();
            shared.keys = KeyStore::new(settings);
            shared.cache = verified_token_cache(policy.token_cache_size());
            shared.host_signatures = host_signatures;
            shared.policy = Some(Rc::new(policy));
        }
        // Fetches start from the first tick, not from here: Envoy also configures short-lived
        // VMs (on the main thread) that would claim a fetch and vanish before its answer.
        if let Err(status) = hostcalls::set_tick_period(TICK) {
            log::error!("cannot set tick period: {status:?}");
            return false;
        }
        true
    }

    fn on_tick(&mut self) {
        self.tend_keys();
        crate::request_body::expire(&self.state, host::now_millis());
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(GuardRequest::new(context_id, self.state.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
