//! The root context: one per Wasm VM. It owns what the requests of its VM share — the compiled
//! policy, the key store, and the requests waiting for keys — and it is the only place that
//! talks to Entra ID (through Envoy's cluster, with `dispatch_http_call`).
//!
//! Every tick it reads each tenant's shared key record (see
//! `jira_entra_guard_core::key_schedule`): a record changed by another VM brings a new key set
//! or a fetch outcome, and wakes the requests waiting for it; a record that is due is claimed
//! with compare-and-swap, and only the VM whose claim succeeded fetches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::held_requests::HeldRequests;
use jira_entra_guard_core::jwks::parse_jwks;
use jira_entra_guard_core::key_schedule::{
    discovered_jwks_path, Claim, FetchReason, KeyStore, Observed, ScheduleSettings,
};
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

/// Which request of a fetch an HTTP call answers.
#[derive(Debug, Clone)]
enum Step {
    Discovery,
    Keys { path: String },
}

/// A good key-set fetch.
struct Fetched {
    document: String,
    discovered: Option<String>,
    usable: usize,
    /// `N skipped (...)`: each skipped entry and why.
    skipped: String,
}

/// The root context.
pub struct GuardRoot {
    state: SharedState,
    records: SharedKeys,
    fetches: HashMap<u32, (TenantIndex, Step, FetchReason)>,
}

impl GuardRoot {
    /// A root context with no configuration yet.
    pub fn new() -> Self {
        GuardRoot {
            state: Rc::new(RefCell::new(Shared::default())),
            records: SharedKeys::default(),
            fetches: HashMap::new(),
        }
    }

    fn policy(&self) -> Option<Rc<Policy>> {
        self.state.borrow().policy.clone()
    }

    /// Reads every tenant's shared record, takes in what changed, claims what is due.
    fn tend_keys(&mut self) {
        let Some(policy) = self.policy() else { return };
        let requested = self.state.borrow_mut().held.take_refetch_requests();
        for index in 0..policy.tenants().len() {
            let tenant = TenantIndex(index);
            self.sync(tenant);
            let reason = if requested.contains(&tenant) {
                FetchReason::UnknownKey
            } else {
                FetchReason::Scheduled
            };
            self.try_claim(tenant, reason);
            if reason == FetchReason::UnknownKey {
                // The refetch may have been claimed elsewhere or rate-limited meanwhile:
                // either way the waiting requests are decided again with what is known.
                self.wake_waiters(Some(tenant));
            }
        }
        self.wake_waiters(None);
        self.record_gauges();
        self.state.borrow_mut().metrics.flush();
    }

    /// Takes in the tenant's shared record if it changed; wakes its waiters when it did.
    fn sync(&mut self, tenant: TenantIndex) {
        let Some(record) = self.records.read_if_changed(tenant) else {
            return;
        };
        let observed = self.state.borrow_mut().keys.observe(tenant, record);
        if let Observed::Unusable(e) = observed {
            log::warn!("shared key set of tenant #{} unusable: {e}", tenant.0);
        }
        self.wake_waiters(Some(tenant));
    }

    /// Claims a fetch for the tenant when one is due (or, for an unknown key, allowed), and
    /// starts it when this VM's claim won.
    fn try_claim(&mut self, tenant: TenantIndex, reason: FetchReason) {
        let Some(settings) = self.state.borrow().keys.settings(tenant).copied() else {
            return;
        };
        let now_ms = host::now_millis();
        let claim = self.records.claim(tenant, |record| match reason {
            FetchReason::Scheduled => record.claim_scheduled(now_ms, &settings),
            FetchReason::UnknownKey => {
                // A due scheduled fetch serves an unknown key just as well.
                match record.claim_scheduled(now_ms, &settings) {
                    Claim::NotDue => record.claim_refetch(now_ms, &settings),
                    other => other,
                }
            }
        });
        if claim == Claim::Claimed {
            self.sync(tenant);
            self.start_fetch(tenant, reason);
        }
    }

    fn start_fetch(&mut self, tenant: TenantIndex, reason: FetchReason) {
        let Some(policy) = self.policy() else { return };
        let Some(source) = policy.tenants().get(tenant.0).map(|t| t.jwks.clone()) else {
            return;
        };
        let (path, step) = match &source.discovery_path {
            Some(discovery) => (discovery.clone(), Step::Discovery),
            None => (
                source.path.clone(),
                Step::Keys {
                    path: source.path.clone(),
                },
            ),
        };
        self.dispatch(
            tenant,
            &source.cluster,
            &source.authority,
            &path,
            step,
            reason,
            source.fetch_timeout_ms,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        tenant: TenantIndex,
        cluster: &str,
        authority: &str,
        path: &str,
        step: Step,
        reason: FetchReason,
        timeout_ms: u64,
    ) {
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "jira-entra-guard"),
        ];
        let timeout = Duration::from_millis(timeout_ms);
        match self.dispatch_http_call(cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                self.fetches.insert(token, (tenant, step, reason));
            }
            Err(status) => self.fetch_failed(
                tenant,
                reason,
                &format!("not dispatched to cluster {cluster:?} ({status:?})"),
            ),
        }
    }

    fn fetch_succeeded(&mut self, tenant: TenantIndex, reason: FetchReason, fetched: Fetched) {
        let Fetched {
            document,
            discovered,
            usable,
            skipped,
        } = fetched;
        let Some(settings) = self.state.borrow().keys.settings(tenant).copied() else {
            return;
        };
        let now_ms = host::now_millis();
        let mut next = now_ms;
        self.records.publish_document(tenant, &document);
        self.records.update(tenant, |record| {
            next = record.succeeded(String::new(), now_ms, &settings);
            if discovered.is_some() {
                record.discovered_path.clone_from(&discovered);
            }
        });
        self.sync(tenant);
        self.count_fetch("success");
        log::info!(
            "key set for tenant {}: fetched ({}), {usable} usable keys, {skipped}; next refresh in {}s",
            self.tenant_id(tenant),
            reason_text(reason),
            next.saturating_sub(now_ms) / 1_000
        );
    }

    fn fetch_failed(&mut self, tenant: TenantIndex, reason: FetchReason, why: &str) {
        let now_ms = host::now_millis();
        let mut next = now_ms;
        let mut fetched_at = 0;
        self.records.update(tenant, |record| {
            next = record.failed(now_ms, host::jitter());
            fetched_at = record.fetched_at_ms;
        });
        self.sync(tenant);
        self.count_fetch("failure");
        let kept = self.state.borrow().keys.usable_keys(tenant);
        let kept_text = if fetched_at == 0 {
            "no key set yet: requests get 503".to_owned()
        } else {
            format!(
                "keeping the last good set ({kept} usable keys, fetched {}s ago)",
                now_ms.saturating_sub(fetched_at) / 1_000
            )
        };
        log::warn!(
            "key set fetch for tenant {} failed ({}): {why}; {kept_text}; next attempt in {}s",
            self.tenant_id(tenant),
            reason_text(reason),
            next.saturating_sub(now_ms).div_ceil(1_000)
        );
    }

    fn count_fetch(&self, outcome: &'static str) {
        self.state
            .borrow_mut()
            .metrics
            .count("key_fetch_total", Some(("outcome", outcome)));
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
            let age = shared
                .keys
                .record(TenantIndex(index))
                .filter(|r| r.fetched_at_ms != 0)
                .map_or(0, |r| now_ms.saturating_sub(r.fetched_at_ms) / 1_000);
            let usable = u64::try_from(usable).unwrap_or(0);
            let tenant = Some(("tenant", id.as_str()));
            shared.metrics.gauge(("usable_keys", tenant), usable);
            shared.metrics.gauge(("key_set_age_seconds", tenant), age);
        }
    }

    fn tenant_id(&self, tenant: TenantIndex) -> String {
        self.policy()
            .and_then(|p| p.tenants().get(tenant.0).map(|t| t.tenant_id.to_string()))
            .unwrap_or_default()
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

fn reason_text(reason: FetchReason) -> &'static str {
    match reason {
        FetchReason::Scheduled => "scheduled",
        FetchReason::UnknownKey => "unknown key id",
    }
}

impl Context for GuardRoot {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let Some((tenant, step, reason)) = self.fetches.remove(&token) else {
            return;
        };
        let Some(policy) = self.policy() else { return };
        let Some(source) = policy.tenants().get(tenant.0).map(|t| t.jwks.clone()) else {
            return;
        };
        // A failed call arrives as a response without `:status`.
        let status = self.get_http_call_response_header(":status");
        let body = match status.as_deref().map(str::parse::<u16>) {
            Some(Ok(code)) if (200..300).contains(&code) => Ok(self
                .get_http_call_response_body(0, body_size)
                .unwrap_or_default()),
            Some(Ok(code)) => Err(format!("HTTP {code}")),
            _ => Err("no response (connection failure or timeout)".to_owned()),
        };
        let what = match step {
            Step::Discovery => "discovery document",
            Step::Keys { .. } => "key set",
        };
        let body = match body {
            Ok(body) => body,
            Err(why) => return self.fetch_failed(tenant, reason, &format!("{what}: {why}")),
        };
        match step {
            Step::Discovery => match discovered_jwks_path(&body, &source.authority) {
                Ok(path) => self.dispatch(
                    tenant,
                    &source.cluster,
                    &source.authority,
                    &path.clone(),
                    Step::Keys { path },
                    reason,
                    source.fetch_timeout_ms,
                ),
                Err(e) => self.fetch_failed(tenant, reason, &format!("{what}: {e}")),
            },
            Step::Keys { path } => match parse_jwks(&body) {
                Ok(set) => {
                    let fetched = Fetched {
                        document: String::from_utf8_lossy(&body).into_owned(),
                        discovered: source.discovery_path.is_some().then_some(path),
                        usable: set.len(),
                        skipped: set.skipped_summary(),
                    };
                    self.fetch_succeeded(tenant, reason, fetched);
                }
                Err(e) => self.fetch_failed(tenant, reason, &format!("{what}: {e}")),
            },
        }
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
