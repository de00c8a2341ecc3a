//! The key-set lifecycle of one VM, for all its tenants, as a state machine without I/O: the
//! shell hands in [`Event`]s and carries out the [`Command`]s that come back, and this module
//! decides everything in between.
//!
//! Every tick each tenant's shared record is read. A record another VM changed is taken into the
//! VM's [`KeyStore`] (its document read and parsed when it announces a new key set) and wakes
//! the tenant's waiting requests. A record that is due — a scheduled refresh or retry, or an
//! early refetch a token naming an unknown key asked for — is claimed with compare-and-swap,
//! and only the VM whose claim was stored fetches: the OIDC discovery document first when one
//! is configured, then the key set. The response is parsed once; a good set is published for
//! every VM (the document before the record that announces it) and installed in this VM's
//! store; a failure is recorded with a backoff, the last good set staying in use.
//!
//! The contract with the shell: commands are carried out in order, and a command that asks for
//! an answer ([`Command::ReadRecord`], [`Command::ReadDocument`], [`Command::WriteRecord`]) is
//! answered with its event before the next command is carried out. All events of one host
//! callback share one [`Moment`].

use std::rc::Rc;

use super::discovery::discovered_jwks_path;
use super::jwks::{parse_jwks, KeySet};
use super::record::{Claim, FetchReason, SharedKeyRecord};
use super::store::{KeyStore, Observed};
use crate::policy::{JwksSource, Policy, TenantIndex};

/// How often recording a fetch's end is retried when another VM changed the record in between.
pub const CAS_ATTEMPTS: usize = 8;

/// When an event happens, with a pseudo-random value that spreads retries (see
/// [`SharedKeyRecord::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Epoch milliseconds.
    pub now_ms: u64,
    /// Any pseudo-random value.
    pub jitter: u32,
}

/// One fetch of this VM, from its first request to its last answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchId(pub u64);

/// What happened, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The periodic tick: every tenant's record is looked at.
    Tick,
    /// A token named a key its tenant's set does not have; an early fetch may be due.
    RefetchRequested {
        /// The token's tenant.
        tenant: TenantIndex,
    },
    /// The answer to [`Command::ReadRecord`]: the stored bytes (none when absent or unreadable)
    /// and their compare-and-swap token.
    RecordRead {
        /// The tenant.
        tenant: TenantIndex,
        /// The stored record.
        bytes: Option<Vec<u8>>,
        /// The compare-and-swap token of what was read.
        cas: Option<u32>,
    },
    /// The answer to [`Command::ReadDocument`].
    DocumentRead {
        /// The tenant.
        tenant: TenantIndex,
        /// The stored key-set document, when there is one.
        document: Option<Vec<u8>>,
    },
    /// The answer to [`Command::WriteRecord`].
    RecordWritten {
        /// The tenant.
        tenant: TenantIndex,
        /// What the write did.
        result: WriteResult,
    },
    /// The response to [`Command::Dispatch`].
    FetchAnswered {
        /// The fetch the response belongs to.
        fetch: FetchId,
        /// The response's `:status` header; none for a failed call (connection failure or
        /// timeout), which arrives as a response without one.
        status: Option<String>,
        /// The response body.
        body: Vec<u8>,
    },
    /// [`Command::Dispatch`] could not be carried out.
    DispatchFailed {
        /// The fetch.
        fetch: FetchId,
        /// The host's reason.
        status: String,
    },
}

/// What a compare-and-swap write of a record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The record was stored.
    Stored,
    /// Another VM changed the record since it was read; nothing was stored.
    CasMismatch,
    /// The host refused the write for another reason.
    Failed(String),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Read the tenant's shared record with its compare-and-swap token; answer with
    /// [`Event::RecordRead`].
    ReadRecord {
        /// The tenant.
        tenant: TenantIndex,
    },
    /// Read the tenant's shared key-set document; answer with [`Event::DocumentRead`].
    ReadDocument {
        /// The tenant.
        tenant: TenantIndex,
    },
    /// Store the tenant's record if it is still as read (`cas`); answer with
    /// [`Event::RecordWritten`].
    WriteRecord {
        /// The tenant.
        tenant: TenantIndex,
        /// The serialized record.
        bytes: Vec<u8>,
        /// The compare-and-swap token of the read it is based on.
        cas: Option<u32>,
    },
    /// Store a good key-set document for every VM (written before the record announcing it).
    PublishDocument {
        /// The tenant.
        tenant: TenantIndex,
        /// The document, as fetched.
        document: Vec<u8>,
    },
    /// Send `GET path` to `authority` through `cluster`; answer with [`Event::FetchAnswered`]
    /// when it returns, or [`Event::DispatchFailed`] when it cannot be sent.
    Dispatch {
        /// The fetch it belongs to.
        fetch: FetchId,
        /// Envoy cluster.
        cluster: String,
        /// `:authority`.
        authority: String,
        /// `:path`.
        path: String,
        /// Timeout of the call.
        timeout_ms: u64,
    },
    /// The tenant's keys or fetch state changed: decide its waiting requests again.
    KeysChanged {
        /// The tenant.
        tenant: TenantIndex,
    },
    /// The tenant's early refetch was claimed, is in flight elsewhere, or is rate-limited:
    /// decide its waiting requests again with what is known.
    RefetchSettled {
        /// The tenant.
        tenant: TenantIndex,
    },
    /// Write a log line.
    Log {
        /// Its level.
        level: LogLevel,
        /// Its text.
        text: String,
    },
    /// Count a fetch's end (`key_fetch_total{outcome}`).
    CountFetch(FetchOutcome),
}

/// The level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Normal operation.
    Info,
    /// Something failed; the filter carries on.
    Warn,
}

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A usable key set was fetched.
    Success,
    /// The fetch failed.
    Failure,
}

impl FetchOutcome {
    /// The `outcome` label of `key_fetch_total`.
    pub fn label(self) -> &'static str {
        match self {
            FetchOutcome::Success => "success",
            FetchOutcome::Failure => "failure",
        }
    }
}

/// Which request of a fetch is in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Discovery,
    Keys { path: String },
}

#[derive(Debug, Clone)]
struct InFlight {
    fetch: FetchId,
    tenant: TenantIndex,
    reason: FetchReason,
    step: Step,
}

/// How a fetch ended, to be recorded in the shared record.
#[derive(Debug, Clone)]
enum Ending {
    Fetched {
        set: Rc<KeySet>,
        discovered: Option<String>,
    },
    Failed {
        why: String,
    },
}

/// A fetch's end on its way into the shared record and the log.
#[derive(Debug, Clone)]
struct Finish {
    reason: FetchReason,
    ending: Ending,
    /// When the next fetch is due, as last recorded.
    next_ms: u64,
    /// When the last good set was fetched, as last recorded.
    fetched_at_ms: u64,
}

/// What the tenant's next record read or write is for.
#[derive(Debug, Clone, Default)]
enum Pending {
    #[default]
    Idle,
    /// Take in changes, then claim a fetch if one is due.
    Claim(FetchReason),
    /// The claim is being stored.
    ClaimWrite(FetchReason),
    /// The claim was stored: take it in, then start the fetch.
    Claimed(FetchReason),
    /// Record a fetch's end (the how-many-th attempt).
    Finish(Finish, usize),
    /// A fetch's end is being stored.
    FinishWrite(Finish, usize, SharedKeyRecord),
    /// The fetch's end was recorded: take it in, then count and log it.
    Report(Finish),
}

#[derive(Debug, Clone)]
struct Tenant {
    id: String,
    source: JwksSource,
    seen_cas: Option<u32>,
    refetch_requested: bool,
    pending: Pending,
    /// A record read whose document is being read, with its compare-and-swap token.
    awaiting_document: Option<(SharedKeyRecord, Option<u32>)>,
}

/// The key-set lifecycle of one VM.
#[derive(Debug, Clone, Default)]
pub struct KeyLifecycle {
    tenants: Vec<Tenant>,
    fetches: Vec<InFlight>,
    next_fetch: u64,
}

impl KeyLifecycle {
    /// The lifecycle of tenants named by their id (for log lines), with their key sources, in
    /// [`TenantIndex`] order.
    pub fn new(tenants: Vec<(String, JwksSource)>) -> Self {
        let tenants = tenants
            .into_iter()
            .map(|(id, source)| Tenant {
                id,
                source,
                seen_cas: None,
                refetch_requested: false,
                pending: Pending::Idle,
                awaiting_document: None,
            })
            .collect();
        KeyLifecycle {
            tenants,
            fetches: Vec::new(),
            next_fetch: 0,
        }
    }

    /// The lifecycle of a policy's tenants.
    pub fn for_policy(policy: &Policy) -> Self {
        Self::new(
            policy
                .tenants()
                .iter()
                .map(|t| (t.tenant_id.to_string(), t.jwks.clone()))
                .collect(),
        )
    }

    /// Takes in one event; `keys` is this VM's key store, which the lifecycle keeps up to date.
    pub fn handle(&mut self, keys: &mut KeyStore, at: Moment, event: Event) -> Vec<Command> {
        match event {
            Event::Tick => self.tick(),
            Event::RefetchRequested { tenant } => {
                if let Some(t) = self.tenants.get_mut(tenant.0) {
                    t.refetch_requested = true;
                }
                Vec::new()
            }
            Event::RecordRead { tenant, bytes, cas } => {
                let record = bytes
                    .and_then(|b| SharedKeyRecord::decode(&b))
                    .unwrap_or_default();
                self.record_read(keys, at, tenant, record, cas)
            }
            Event::DocumentRead { tenant, document } => {
                let Some((record, cas)) = self
                    .tenants
                    .get_mut(tenant.0)
                    .and_then(|t| t.awaiting_document.take())
                else {
                    return Vec::new();
                };
                let mut out = self.take_in(keys, tenant, record.clone(), document.as_deref());
                out.extend(self.proceed(keys, at, tenant, record, cas));
                out
            }
            Event::RecordWritten { tenant, result } => self.record_written(keys, tenant, result),
            Event::FetchAnswered {
                fetch,
                status,
                body,
            } => self.answered(fetch, status.as_deref(), body),
            Event::DispatchFailed { fetch, status } => {
                let Some(flight) = self.take_fetch(fetch) else {
                    return Vec::new();
                };
                let cluster = self
                    .tenants
                    .get(flight.tenant.0)
                    .map(|t| t.source.cluster.clone())
                    .unwrap_or_default();
                let why = format!("not dispatched to cluster {cluster:?} ({status})");
                self.finish(flight.tenant, flight.reason, Ending::Failed { why })
            }
        }
    }

    fn tick(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        for (index, t) in self.tenants.iter_mut().enumerate() {
            let reason = if std::mem::take(&mut t.refetch_requested) {
                FetchReason::UnknownKey
            } else {
                FetchReason::Scheduled
            };
            t.pending = Pending::Claim(reason);
            out.push(Command::ReadRecord {
                tenant: TenantIndex(index),
            });
        }
        out
    }

    /// A record was read: a change since this VM last looked is taken in first, then the read
    /// serves what it was made for.
    fn record_read(
        &mut self,
        keys: &mut KeyStore,
        at: Moment,
        tenant: TenantIndex,
        record: SharedKeyRecord,
        cas: Option<u32>,
    ) -> Vec<Command> {
        let Some(t) = self.tenants.get_mut(tenant.0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if cas != t.seen_cas {
            t.seen_cas = cas;
            if keys.wants_document(tenant, &record) {
                t.awaiting_document = Some((record, cas));
                return vec![Command::ReadDocument { tenant }];
            }
            out = self.take_in(keys, tenant, record.clone(), None);
        }
        out.extend(self.proceed(keys, at, tenant, record, cas));
        out
    }

    /// Takes a changed record (and its document) into the store; the tenant's waiting requests
    /// are decided again.
    fn take_in(
        &mut self,
        keys: &mut KeyStore,
        tenant: TenantIndex,
        record: SharedKeyRecord,
        document: Option<&[u8]>,
    ) -> Vec<Command> {
        let mut out = Vec::new();
        if let Observed::Unusable(e) = keys.observe(tenant, record, document) {
            out.push(Command::Log {
                level: LogLevel::Warn,
                text: format!("shared key set of tenant #{} unusable: {e}", tenant.0),
            });
        }
        out.push(Command::KeysChanged { tenant });
        out
    }

    /// Serves the purpose of a record read, once its changes are taken in.
    fn proceed(
        &mut self,
        keys: &mut KeyStore,
        at: Moment,
        tenant: TenantIndex,
        mut record: SharedKeyRecord,
        cas: Option<u32>,
    ) -> Vec<Command> {
        let (Some(t), Some(settings)) = (self.tenants.get_mut(tenant.0), keys.settings(tenant))
        else {
            return Vec::new();
        };
        match std::mem::take(&mut t.pending) {
            // A read that nothing waits for (or that a write awaits) only took in changes.
            waiting @ (Pending::Idle | Pending::ClaimWrite(_) | Pending::FinishWrite(..)) => {
                t.pending = waiting;
                Vec::new()
            }
            Pending::Claim(reason) => {
                let claim = match reason {
                    FetchReason::Scheduled => record.claim_scheduled(at.now_ms, settings),
                    // A due scheduled fetch serves an unknown key just as well.
                    FetchReason::UnknownKey => match record.claim_scheduled(at.now_ms, settings) {
                        Claim::NotDue => record.claim_refetch(at.now_ms, settings),
                        other => other,
                    },
                };
                if claim != Claim::Claimed {
                    return settled(tenant, reason);
                }
                t.pending = Pending::ClaimWrite(reason);
                vec![Command::WriteRecord {
                    tenant,
                    bytes: record.encode(),
                    cas,
                }]
            }
            Pending::Claimed(reason) => {
                let mut out = self.start_fetch(tenant, reason);
                out.extend(settled(tenant, reason));
                out
            }
            Pending::Finish(mut finish, attempt) => {
                finish.next_ms = match &finish.ending {
                    Ending::Fetched { discovered, .. } => {
                        if discovered.is_some() {
                            record.discovered_path.clone_from(discovered);
                        }
                        record.succeeded(at.now_ms, settings)
                    }
                    Ending::Failed { .. } => record.failed(at.now_ms, at.jitter),
                };
                finish.fetched_at_ms = record.fetched_at_ms;
                let bytes = record.encode();
                t.pending = Pending::FinishWrite(finish, attempt, record);
                vec![Command::WriteRecord { tenant, bytes, cas }]
            }
            Pending::Report(finish) => report(&t.id, &finish, at.now_ms, keys.usable_keys(tenant)),
        }
    }

    fn record_written(
        &mut self,
        keys: &mut KeyStore,
        tenant: TenantIndex,
        result: WriteResult,
    ) -> Vec<Command> {
        let Some(t) = self.tenants.get_mut(tenant.0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let WriteResult::Failed(status) = &result {
            out.push(Command::Log {
                level: LogLevel::Warn,
                text: format!("cannot store key record: {status}"),
            });
        }
        match (std::mem::take(&mut t.pending), result) {
            (Pending::ClaimWrite(reason), WriteResult::Stored) => {
                // Take in the claim (the lease) before fetching, as for any changed record.
                t.pending = Pending::Claimed(reason);
                out.push(Command::ReadRecord { tenant });
            }
            // Lost to another VM's change: its fetch is in flight.
            (Pending::ClaimWrite(reason), _) => out.extend(settled(tenant, reason)),
            (Pending::FinishWrite(finish, attempt, record), result) => {
                match (&finish.ending, result) {
                    (Ending::Fetched { set, .. }, WriteResult::Stored) => {
                        keys.install(tenant, record, Rc::clone(set));
                    }
                    (_, WriteResult::CasMismatch) if attempt.saturating_add(1) < CAS_ATTEMPTS => {
                        t.pending = Pending::Finish(finish, attempt.saturating_add(1));
                        out.push(Command::ReadRecord { tenant });
                        return out;
                    }
                    (_, WriteResult::CasMismatch) => out.push(Command::Log {
                        level: LogLevel::Warn,
                        text: format!(
                            "key record of tenant #{} changed too often to update",
                            tenant.0
                        ),
                    }),
                    _ => {}
                }
                t.pending = Pending::Report(finish);
                out.push(Command::ReadRecord { tenant });
            }
            // A write result that no write awaits changes nothing.
            (waiting, _) => t.pending = waiting,
        }
        out
    }

    fn start_fetch(&mut self, tenant: TenantIndex, reason: FetchReason) -> Vec<Command> {
        let Some(source) = self.tenants.get(tenant.0).map(|t| &t.source) else {
            return Vec::new();
        };
        let step = match &source.discovery_path {
            Some(_) => Step::Discovery,
            None => Step::Keys {
                path: source.path.clone(),
            },
        };
        let fetch = FetchId(self.next_fetch);
        self.next_fetch = self.next_fetch.wrapping_add(1);
        self.dispatch(InFlight {
            fetch,
            tenant,
            reason,
            step,
        })
    }

    fn dispatch(&mut self, flight: InFlight) -> Vec<Command> {
        let Some(source) = self.tenants.get(flight.tenant.0).map(|t| &t.source) else {
            return Vec::new();
        };
        let path = match &flight.step {
            Step::Discovery => source.discovery_path.clone().unwrap_or_default(),
            Step::Keys { path } => path.clone(),
        };
        let command = Command::Dispatch {
            fetch: flight.fetch,
            cluster: source.cluster.clone(),
            authority: source.authority.clone(),
            path,
            timeout_ms: source.fetch_timeout_ms,
        };
        self.fetches.push(flight);
        vec![command]
    }

    fn take_fetch(&mut self, fetch: FetchId) -> Option<InFlight> {
        let index = self.fetches.iter().position(|f| f.fetch == fetch)?;
        Some(self.fetches.swap_remove(index))
    }

    /// A response: the discovery document leads to the key set; the key set is parsed once.
    fn answered(&mut self, fetch: FetchId, status: Option<&str>, body: Vec<u8>) -> Vec<Command> {
        let Some(flight) = self.take_fetch(fetch) else {
            return Vec::new();
        };
        let Some(source) = self.tenants.get(flight.tenant.0).map(|t| &t.source) else {
            return Vec::new();
        };
        let what = match flight.step {
            Step::Discovery => "discovery document",
            Step::Keys { .. } => "key set",
        };
        let body = match status.map(str::parse::<u16>) {
            Some(Ok(code)) if (200..300).contains(&code) => Ok(body),
            Some(Ok(code)) => Err(format!("HTTP {code}")),
            _ => Err("no response (connection failure or timeout)".to_owned()),
        };
        let ending = match (body, &flight.step) {
            (Err(why), _) => Ending::Failed {
                why: format!("{what}: {why}"),
            },
            (Ok(body), Step::Discovery) => match discovered_jwks_path(&body, &source.authority) {
                Ok(path) => {
                    return self.dispatch(InFlight {
                        step: Step::Keys { path },
                        ..flight
                    })
                }
                Err(e) => Ending::Failed {
                    why: format!("{what}: {e}"),
                },
            },
            (Ok(body), Step::Keys { path }) => match parse_jwks(&body) {
                Ok(set) => {
                    let ending = Ending::Fetched {
                        set: Rc::new(set),
                        discovered: source.discovery_path.is_some().then(|| path.clone()),
                    };
                    let mut out = vec![Command::PublishDocument {
                        tenant: flight.tenant,
                        document: body,
                    }];
                    out.extend(self.finish(flight.tenant, flight.reason, ending));
                    return out;
                }
                Err(e) => Ending::Failed {
                    why: format!("{what}: {e}"),
                },
            },
        };
        self.finish(flight.tenant, flight.reason, ending)
    }

    /// Starts recording a fetch's end in the shared record.
    fn finish(&mut self, tenant: TenantIndex, reason: FetchReason, ending: Ending) -> Vec<Command> {
        let Some(t) = self.tenants.get_mut(tenant.0) else {
            return Vec::new();
        };
        let finish = Finish {
            reason,
            ending,
            next_ms: 0,
            fetched_at_ms: 0,
        };
        t.pending = Pending::Finish(finish, 0);
        vec![Command::ReadRecord { tenant }]
    }
}

/// The waiting requests of a tenant are decided again once an early refetch is settled.
fn settled(tenant: TenantIndex, reason: FetchReason) -> Vec<Command> {
    match reason {
        FetchReason::UnknownKey => vec![Command::RefetchSettled { tenant }],
        FetchReason::Scheduled => Vec::new(),
    }
}

fn reason_text(reason: FetchReason) -> &'static str {
    match reason {
        FetchReason::Scheduled => "scheduled",
        FetchReason::UnknownKey => "unknown key id",
    }
}

/// The count and the log line of a fetch's end; `kept`: the usable keys the VM has now.
fn report(tenant_id: &str, finish: &Finish, now_ms: u64, kept: usize) -> Vec<Command> {
    let reason = reason_text(finish.reason);
    let (outcome, level, text) = match &finish.ending {
        Ending::Fetched { set, .. } => (
            FetchOutcome::Success,
            LogLevel::Info,
            format!(
                "key set for tenant {tenant_id}: fetched ({reason}), {} usable keys, {}; next refresh in {}s",
                set.len(),
                set.skipped_summary(),
                finish.next_ms.saturating_sub(now_ms) / 1_000
            ),
        ),
        Ending::Failed { why } => {
            let kept_text = if finish.fetched_at_ms == 0 {
                "no key set yet: requests get 503".to_owned()
            } else {
                format!(
                    "keeping the last good set ({kept} usable keys, fetched {}s ago)",
                    now_ms.saturating_sub(finish.fetched_at_ms) / 1_000
                )
            };
            (
                FetchOutcome::Failure,
                LogLevel::Warn,
                format!(
                    "key set fetch for tenant {tenant_id} failed ({reason}): {why}; {kept_text}; next attempt in {}s",
                    finish.next_ms.saturating_sub(now_ms).div_ceil(1_000)
                ),
            )
        }
    };
    vec![Command::CountFetch(outcome), Command::Log { level, text }]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::jwks::{KeySetState, KeySets};
    use crate::keys::schedule::ScheduleSettings;
    use crate::test_support::{jwk, key};

    const T0: TenantIndex = TenantIndex(0);
    const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const START: u64 = 1_700_000_000_000;
    const HOUR: u64 = 3_600_000;

    fn source(discovery: bool) -> JwksSource {
        JwksSource {
            cluster: "entra".into(),
            authority: "login.microsoftonline.com".into(),
            path: format!("/{TENANT_ID}/discovery/v2.0/keys"),
            discovery_path: discovery
                .then(|| format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration")),
            refresh_seconds: 3_600,
            min_refetch_seconds: 300,
            max_stale_seconds: 86_400,
            fetch_timeout_ms: 2_500,
        }
    }

    fn key_set() -> Vec<u8> {
        json!({"keys": [jwk("key-a", &key("a"))]})
            .to_string()
            .into_bytes()
    }

    /// Envoy's shared data as one Envoy process holds it, for the VMs of a test.
    #[derive(Debug, Default)]
    struct SharedData {
        record: Option<(Vec<u8>, u32)>,
        document: Option<Vec<u8>>,
        /// The next this many record writes find the record changed by some other VM.
        races_to_lose: usize,
        /// Every record write is refused with this status.
        refusal: Option<String>,
    }

    impl SharedData {
        fn record(&self) -> SharedKeyRecord {
            self.record
                .as_ref()
                .and_then(|(bytes, _)| SharedKeyRecord::decode(bytes))
                .unwrap_or_default()
        }

        fn store(&mut self, record: &SharedKeyRecord) {
            let cas = self.record.as_ref().map_or(1, |r| r.1.wrapping_add(1));
            self.record = Some((record.encode(), cas));
        }

        fn write(&mut self, bytes: Vec<u8>, cas: Option<u32>) -> WriteResult {
            if let Some(status) = &self.refusal {
                return WriteResult::Failed(status.clone());
            }
            if self.races_to_lose > 0 {
                self.races_to_lose = self.races_to_lose.saturating_sub(1);
                let record = self.record();
                self.store(&record);
                return WriteResult::CasMismatch;
            }
            let current = self.record.as_ref().map(|r| r.1);
            if cas.is_some() && cas != current {
                return WriteResult::CasMismatch;
            }
            let next = current.map_or(1, |c| c.wrapping_add(1));
            self.record = Some((bytes, next));
            WriteResult::Stored
        }
    }

    /// One VM: its lifecycle and key store, and a shell that carries out the shared-data
    /// commands against [`SharedData`] and records every command in order.
    struct Vm {
        lifecycle: KeyLifecycle,
        keys: KeyStore,
        commands: Vec<Command>,
    }

    impl Vm {
        fn new(discovery: bool) -> Self {
            let source = source(discovery);
            Vm {
                keys: KeyStore::new(vec![ScheduleSettings::for_source(&source)]),
                lifecycle: KeyLifecycle::new(vec![(TENANT_ID.to_owned(), source)]),
                commands: Vec::new(),
            }
        }

        fn at(now_ms: u64) -> Moment {
            Moment { now_ms, jitter: 0 }
        }

        fn handle(&mut self, data: &mut SharedData, at: Moment, event: Event) {
            for command in self.lifecycle.handle(&mut self.keys, at, event) {
                self.commands.push(command.clone());
                let answer = match command {
                    Command::ReadRecord { tenant } => Event::RecordRead {
                        tenant,
                        bytes: data.record.as_ref().map(|r| r.0.clone()),
                        cas: data.record.as_ref().map(|r| r.1),
                    },
                    Command::ReadDocument { tenant } => Event::DocumentRead {
                        tenant,
                        document: data.document.clone(),
                    },
                    Command::WriteRecord { tenant, bytes, cas } => Event::RecordWritten {
                        tenant,
                        result: data.write(bytes, cas),
                    },
                    Command::PublishDocument { document, .. } => {
                        data.document = Some(document);
                        continue;
                    }
                    _ => continue,
                };
                self.handle(data, at, answer);
            }
        }

        /// A tick at `now_ms`, forgetting the commands of earlier events.
        fn tick(&mut self, data: &mut SharedData, now_ms: u64) {
            self.commands.clear();
            self.handle(data, Self::at(now_ms), Event::Tick);
        }

        /// A tick at `now_ms` after a request asked for a refetch, forgetting earlier commands.
        fn tick_after_refetch_request(&mut self, data: &mut SharedData, now_ms: u64) {
            self.commands.clear();
            let request = Event::RefetchRequested { tenant: T0 };
            self.handle(data, Self::at(now_ms), request);
            self.handle(data, Self::at(now_ms), Event::Tick);
        }

        /// The fetches dispatched by the last events: (fetch, path).
        fn dispatched(&self) -> Vec<(FetchId, String)> {
            self.commands
                .iter()
                .filter_map(|c| match c {
                    Command::Dispatch { fetch, path, .. } => Some((*fetch, path.clone())),
                    _ => None,
                })
                .collect()
        }

        /// Answers the fetch dispatched last.
        fn answer(&mut self, data: &mut SharedData, at: u64, status: Option<&str>, body: &[u8]) {
            let (fetch, _) = self.dispatched().pop().expect("a fetch in flight");
            self.commands.clear();
            let answer = Event::FetchAnswered {
                fetch,
                status: status.map(str::to_owned),
                body: body.to_vec(),
            };
            self.handle(data, Self::at(at), answer);
        }

        fn logs(&self) -> Vec<(LogLevel, String)> {
            self.commands
                .iter()
                .filter_map(|c| match c {
                    Command::Log { level, text } => Some((*level, text.clone())),
                    _ => None,
                })
                .collect()
        }

        fn counted(&self) -> Vec<FetchOutcome> {
            self.commands
                .iter()
                .filter_map(|c| match c {
                    Command::CountFetch(outcome) => Some(*outcome),
                    _ => None,
                })
                .collect()
        }

        /// Asserts that the last log line holds `fragment`.
        fn logged_last(&self, fragment: &str) {
            let text = self.logs().pop().map(|(_, text)| text).unwrap_or_default();
            assert!(text.contains(fragment), "{text}");
        }

        fn saw(&self, wanted: &Command) -> bool {
            self.commands.contains(wanted)
        }

        fn state(&self, now_ms: u64) -> &'static str {
            match self.keys.at(now_ms).state(T0) {
                KeySetState::Ready(_) => "ready",
                KeySetState::Loading => "loading",
                KeySetState::Unavailable(_) => "unavailable",
            }
        }
    }

    /// A VM that has ticked once, at `START`, and so claimed and dispatched the first fetch.
    fn first_tick(discovery: bool) -> (SharedData, Vm) {
        let mut data = SharedData::default();
        let mut vm = Vm::new(discovery);
        vm.tick(&mut data, START);
        (data, vm)
    }

    /// A VM whose first fetch, at `START`, was answered with `status` and `body`.
    fn first_fetch_answered(
        discovery: bool,
        status: Option<&str>,
        body: &[u8],
    ) -> (SharedData, Vm) {
        let (mut data, mut vm) = first_tick(discovery);
        vm.answer(&mut data, START, status, body);
        (data, vm)
    }

    /// A VM whose first fetch brought one usable key at `START`.
    fn fetched(data: &mut SharedData) -> Vm {
        let mut vm = Vm::new(false);
        vm.tick(data, START);
        vm.answer(data, START + 100, Some("200"), &key_set());
        vm
    }

    #[test]
    fn first_tick_claims_the_record_and_dispatches_the_key_set_fetch() {
        let (data, vm) = first_tick(false);
        assert!(vm.saw(&Command::Dispatch {
            fetch: FetchId(0),
            cluster: "entra".into(),
            authority: "login.microsoftonline.com".into(),
            path: format!("/{TENANT_ID}/discovery/v2.0/keys"),
            timeout_ms: 2_500,
        }));
        assert_eq!(data.record().lease_until_ms, START + 3_500);
        assert_eq!(vm.state(START), "loading", "the claim is taken in");
        assert!(vm.saw(&Command::KeysChanged { tenant: T0 }));
    }

    #[test]
    fn a_good_key_set_is_published_before_the_record_that_announces_it() {
        let mut data = SharedData::default();
        let vm = fetched(&mut data);
        let publish = vm
            .commands
            .iter()
            .position(|c| matches!(c, Command::PublishDocument { .. }));
        let write = vm
            .commands
            .iter()
            .position(|c| matches!(c, Command::WriteRecord { .. }));
        assert!(publish.is_some() && publish < write, "{:?}", vm.commands);
        assert_eq!(data.document, Some(key_set()));
        let record = data.record();
        assert_eq!((record.generation, record.lease_until_ms), (1, 0));
        assert_eq!(record.next_attempt_ms, START + 100 + HOUR);
    }

    #[test]
    fn a_good_key_set_is_parsed_once_installed_counted_and_logged() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        assert_eq!(vm.keys.usable_keys(T0), 1);
        assert_eq!(vm.state(START + 200), "ready");
        assert_eq!(vm.counted(), vec![FetchOutcome::Success]);
        assert_eq!(
            vm.logs(),
            vec![(
                LogLevel::Info,
                format!("key set for tenant {TENANT_ID}: fetched (scheduled), 1 usable keys, 0 skipped; next refresh in 3600s")
            )]
        );
        assert!(vm.saw(&Command::KeysChanged { tenant: T0 }));
        // This VM parsed the set from the response: it never reads the shared document back.
        assert!(
            !vm.saw(&Command::ReadDocument { tenant: T0 }),
            "{:?}",
            vm.commands
        );
        vm.tick(&mut data, START + 1_000);
        assert!(
            !vm.saw(&Command::ReadDocument { tenant: T0 }),
            "{:?}",
            vm.commands
        );
        assert!(vm.dispatched().is_empty());
    }

    #[test]
    fn skipped_entries_are_named_in_the_fetch_log_line() {
        let (mut data, mut vm) = first_tick(false);
        let mut entries = vec![jwk("key-a", &key("a"))];
        entries.push(json!({"kty": "EC", "kid": "ec"}));
        let body = json!({ "keys": entries }).to_string();
        vm.answer(&mut data, START, Some("200"), body.as_bytes());
        vm.logged_last(": fetched (scheduled), 1 usable keys, 1 skipped (keys[1] (kid \"ec\")");
    }

    #[test]
    fn fetch_outcomes_carry_the_labels_of_key_fetch_total() {
        assert_eq!(FetchOutcome::Success.label(), "success");
        assert_eq!(FetchOutcome::Failure.label(), "failure");
    }

    #[test]
    fn a_record_that_is_not_due_is_not_claimed() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        vm.tick(&mut data, START + 100 + HOUR - 1);
        assert!(vm.dispatched().is_empty());
        assert!(!vm
            .commands
            .iter()
            .any(|c| matches!(c, Command::WriteRecord { .. })));
    }

    #[test]
    fn a_due_refresh_is_claimed_and_fetched() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        vm.tick(&mut data, START + 100 + HOUR);
        assert_eq!(vm.dispatched().len(), 1);
        vm.answer(&mut data, START + 200 + HOUR, Some("200"), &key_set());
        assert_eq!(data.record().generation, 2);
        assert_eq!(vm.counted(), vec![FetchOutcome::Success]);
    }

    #[test]
    fn a_fetch_in_flight_in_another_vm_is_waited_for_not_claimed_again() {
        let mut data = SharedData::default();
        let mut first = Vm::new(false);
        let mut second = Vm::new(false);
        first.tick(&mut data, START);
        second.tick(&mut data, START + 10);
        assert_eq!(first.dispatched().len(), 1);
        assert!(second.dispatched().is_empty());
        assert_eq!(second.state(START + 10), "loading");
    }

    #[test]
    fn an_expired_lease_is_taken_over() {
        let mut data = SharedData::default();
        let mut first = Vm::new(false);
        let mut second = Vm::new(false);
        first.tick(&mut data, START);
        second.tick(&mut data, START + 3_500);
        assert_eq!(second.dispatched().len(), 1);
    }

    #[test]
    fn a_claim_lost_to_another_vms_change_fetches_nothing() {
        let mut data = SharedData::default();
        let mut vm = Vm::new(false);
        data.races_to_lose = 1;
        vm.tick(&mut data, START);
        assert!(vm.dispatched().is_empty());
        assert!(vm.logs().is_empty());
    }

    #[test]
    fn a_claim_the_host_refuses_to_store_is_logged_and_fetches_nothing() {
        let mut data = SharedData {
            refusal: Some("InternalFailure".into()),
            ..SharedData::default()
        };
        let mut vm = Vm::new(false);
        vm.tick(&mut data, START);
        assert!(vm.dispatched().is_empty());
        assert_eq!(
            vm.logs(),
            vec![(
                LogLevel::Warn,
                "cannot store key record: InternalFailure".to_owned()
            )]
        );
    }

    #[test]
    fn an_unknown_key_refetch_is_claimed_early_then_its_waiters_are_settled() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        vm.tick_after_refetch_request(&mut data, START + 1_000);
        let dispatch = vm
            .commands
            .iter()
            .position(|c| matches!(c, Command::Dispatch { .. }));
        let settled = vm
            .commands
            .iter()
            .position(|c| *c == Command::RefetchSettled { tenant: T0 });
        assert!(
            dispatch.is_some() && dispatch < settled,
            "{:?}",
            vm.commands
        );
        assert_eq!(data.record().last_refetch_ms, START + 1_000);
        vm.answer(&mut data, START + 1_100, Some("200"), &key_set());
        vm.logged_last(": fetched (unknown key id), ");
    }

    #[test]
    fn an_unknown_key_refetch_within_the_rate_limit_only_settles_its_waiters() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        let mut record = data.record();
        record.last_refetch_ms = START + 1_000;
        data.store(&record);
        vm.tick(&mut data, START + 2_000);
        vm.tick_after_refetch_request(&mut data, START + 2_000);
        assert!(vm.dispatched().is_empty());
        assert!(vm.saw(&Command::RefetchSettled { tenant: T0 }));
        // The request is honoured once: the next tick is a plain scheduled one.
        vm.tick(&mut data, START + 2_250);
        assert!(!vm.saw(&Command::RefetchSettled { tenant: T0 }));
    }

    #[test]
    fn an_unknown_key_refetch_while_a_fetch_is_in_flight_only_settles_its_waiters() {
        let mut data = SharedData::default();
        let mut first = Vm::new(false);
        let mut second = Vm::new(false);
        first.tick(&mut data, START);
        second.tick_after_refetch_request(&mut data, START);
        assert!(second.dispatched().is_empty());
        assert!(second.saw(&Command::RefetchSettled { tenant: T0 }));
    }

    #[test]
    fn an_unknown_key_refetch_whose_claim_is_lost_settles_its_waiters() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        data.races_to_lose = 1;
        vm.tick_after_refetch_request(&mut data, START + 1_000);
        assert!(vm.dispatched().is_empty());
        assert!(vm.saw(&Command::RefetchSettled { tenant: T0 }));
    }

    #[test]
    fn discovery_names_the_key_set_path_then_the_key_set_is_fetched() {
        let (mut data, mut vm) = first_tick(true);
        assert_eq!(
            vm.dispatched()[0].1,
            format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration")
        );
        let discovery = json!({
            "jwks_uri": "https://login.microsoftonline.com/other/discovery/v2.0/keys"
        })
        .to_string();
        vm.answer(&mut data, START + 10, Some("200"), discovery.as_bytes());
        assert_eq!(vm.dispatched()[0].1, "/other/discovery/v2.0/keys");
        assert!(
            vm.logs().is_empty(),
            "no record is written between the two requests"
        );
        vm.answer(&mut data, START + 20, Some("200"), &key_set());
        assert_eq!(
            data.record().discovered_path.as_deref(),
            Some("/other/discovery/v2.0/keys")
        );
        assert_eq!(vm.counted(), vec![FetchOutcome::Success]);
    }

    #[test]
    fn discovery_pointing_to_another_host_fails_the_fetch() {
        let (mut data, mut vm) = first_tick(true);
        let discovery = json!({"jwks_uri": "https://evil.example/keys"}).to_string();
        vm.answer(&mut data, START, Some("200"), discovery.as_bytes());
        assert!(vm.dispatched().is_empty());
        assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
        vm.logged_last("failed (scheduled): discovery document: jwks_uri host \"evil.example\" is not the configured authority; refused;");
    }

    #[test]
    fn a_discovery_error_status_fails_the_fetch() {
        let (_, vm) = first_fetch_answered(true, Some("404"), b"");
        vm.logged_last("): discovery document: HTTP 404;");
    }

    #[test]
    fn a_non_2xx_key_set_fails_the_fetch_and_backs_off() {
        let (mut data, mut vm) = first_tick(false);
        vm.answer(&mut data, START + 100, Some("503"), b"busy");
        assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
        assert_eq!(
            vm.logs(),
            vec![(
                LogLevel::Warn,
                format!("key set fetch for tenant {TENANT_ID} failed (scheduled): key set: HTTP 503; no key set yet: requests get 503; next attempt in 1s")
            )]
        );
        let record = data.record();
        assert_eq!((record.failures, record.lease_until_ms), (1, 0));
        assert_eq!(record.next_attempt_ms, START + 1_100);
        assert_eq!(vm.state(START + 200), "unavailable");
        assert!(vm.saw(&Command::KeysChanged { tenant: T0 }));
    }

    #[test]
    fn a_2xx_boundary_is_exact() {
        for (status, good) in [("199", false), ("200", true), ("299", true), ("300", false)] {
            let (_, vm) = first_fetch_answered(false, Some(status), &key_set());
            let outcome = if good {
                FetchOutcome::Success
            } else {
                FetchOutcome::Failure
            };
            assert_eq!(vm.counted(), vec![outcome], "{status}");
        }
    }

    #[test]
    fn a_call_without_a_status_is_no_response() {
        for status in [None, Some("not a number")] {
            let (_, vm) = first_fetch_answered(false, status, &key_set());
            vm.logged_last("): key set: no response (connection failure or timeout);");
        }
    }

    #[test]
    fn an_unparseable_key_set_fails_the_fetch() {
        let (data, vm) = first_fetch_answered(false, Some("200"), b"<html>");
        assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
        vm.logged_last("): key set: not a key set");
        assert_eq!(data.document, None, "nothing is published");
    }

    #[test]
    fn an_empty_or_all_skipped_key_set_fails_the_fetch() {
        for entries in [json!([]), json!([{"kty": "EC", "kid": "ec"}])] {
            let (mut data, mut vm) = first_tick(false);
            let body = json!({ "keys": entries }).to_string();
            vm.answer(&mut data, START, Some("200"), body.as_bytes());
            assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
            vm.logged_last("): key set: no usable key (");
        }
    }

    #[test]
    fn a_failed_refresh_keeps_the_last_good_set() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        vm.tick(&mut data, START + 100 + HOUR);
        vm.answer(&mut data, START + 200 + HOUR, Some("500"), b"");
        assert_eq!(
            vm.logs(),
            vec![(
                LogLevel::Warn,
                format!("key set fetch for tenant {TENANT_ID} failed (scheduled): key set: HTTP 500; keeping the last good set (1 usable keys, fetched 3600s ago); next attempt in 1s")
            )]
        );
        assert_eq!(vm.state(START + 300 + HOUR), "ready");
        assert_eq!(data.record().generation, 1);
    }

    #[test]
    fn a_failure_backs_off_with_the_jitter_it_is_given() {
        let (mut data, mut vm) = first_tick(false);
        let (fetch, _) = vm.dispatched()[0].clone();
        vm.commands.clear();
        let at = Moment {
            now_ms: START,
            jitter: 200,
        };
        let answer = Event::FetchAnswered {
            fetch,
            status: Some("503".into()),
            body: Vec::new(),
        };
        vm.handle(&mut data, at, answer);
        // 1 s plus 200 ms of its up-to-a-quarter spread.
        assert_eq!(data.record().next_attempt_ms, START + 1_200);
        vm.logged_last("; next attempt in 2s");
        vm.tick(&mut data, START + 1_199);
        assert!(vm.dispatched().is_empty());
        vm.tick(&mut data, START + 1_200);
        assert_eq!(vm.dispatched().len(), 1, "the retry is claimed when due");
    }

    #[test]
    fn a_fetch_that_cannot_be_dispatched_fails() {
        let (mut data, mut vm) = first_tick(false);
        let (fetch, _) = vm.dispatched()[0].clone();
        vm.commands.clear();
        let failure = Event::DispatchFailed {
            fetch,
            status: "InternalFailure".into(),
        };
        vm.handle(&mut data, Vm::at(START), failure);
        assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
        vm.logged_last(
            "failed (scheduled): not dispatched to cluster \"entra\" (InternalFailure);",
        );
        assert_eq!(data.record().failures, 1);
    }

    #[test]
    fn an_answer_to_no_fetch_of_this_vm_is_ignored() {
        let mut data = SharedData::default();
        let mut vm = Vm::new(false);
        let stray = Event::FetchAnswered {
            fetch: FetchId(7),
            status: Some("200".into()),
            body: key_set(),
        };
        assert!(vm
            .lifecycle
            .handle(&mut vm.keys, Vm::at(START), stray)
            .is_empty());
        let stray = Event::DispatchFailed {
            fetch: FetchId(7),
            status: String::new(),
        };
        assert!(vm
            .lifecycle
            .handle(&mut vm.keys, Vm::at(START), stray)
            .is_empty());
        vm.tick(&mut data, START);
        vm.answer(&mut data, START, Some("200"), &key_set());
        // Answered once; a second answer to the same fetch changes nothing.
        let again = Event::FetchAnswered {
            fetch: FetchId(0),
            status: Some("200".into()),
            body: key_set(),
        };
        assert!(vm
            .lifecycle
            .handle(&mut vm.keys, Vm::at(START), again)
            .is_empty());
    }

    #[test]
    fn recording_a_fetch_retries_when_another_vm_changed_the_record() {
        let (mut data, mut vm) = first_tick(false);
        data.races_to_lose = CAS_ATTEMPTS - 1;
        vm.answer(&mut data, START, Some("200"), &key_set());
        assert_eq!(data.record().generation, 1, "the last attempt is stored");
        assert_eq!(vm.keys.usable_keys(T0), 1);
        assert_eq!(vm.counted(), vec![FetchOutcome::Success]);
        assert!(vm.logs().iter().all(|(level, _)| *level == LogLevel::Info));
    }

    #[test]
    fn recording_a_fetch_gives_up_after_too_many_races_but_still_reports_it() {
        let (mut data, mut vm) = first_tick(false);
        data.races_to_lose = CAS_ATTEMPTS;
        vm.answer(&mut data, START, Some("200"), &key_set());
        let writes = vm
            .commands
            .iter()
            .filter(|c| matches!(c, Command::WriteRecord { .. }))
            .count();
        assert_eq!(writes, CAS_ATTEMPTS);
        assert_eq!(data.record().generation, 0);
        assert_eq!(
            vm.keys.usable_keys(T0),
            0,
            "a set no record announces is not used"
        );
        assert_eq!(vm.counted(), vec![FetchOutcome::Success]);
        assert_eq!(
            vm.logs()[0],
            (
                LogLevel::Warn,
                "key record of tenant #0 changed too often to update".to_owned()
            )
        );
    }

    #[test]
    fn recording_a_fetch_the_host_refuses_is_logged_and_still_reported() {
        let (mut data, mut vm) = first_tick(false);
        data.refusal = Some("InternalFailure".into());
        vm.answer(&mut data, START, Some("503"), b"");
        assert_eq!(vm.counted(), vec![FetchOutcome::Failure]);
        let logs = vm.logs();
        assert_eq!(logs[0].1, "cannot store key record: InternalFailure");
        assert!(
            logs[1].1.starts_with("key set fetch for tenant "),
            "{logs:?}"
        );
    }

    #[test]
    fn a_record_changed_by_another_vm_brings_its_key_set_and_wakes_waiters() {
        let mut data = SharedData::default();
        let _fetcher = fetched(&mut data);
        let mut other = Vm::new(false);
        other.tick(&mut data, START + 500);
        assert!(other.saw(&Command::ReadDocument { tenant: T0 }));
        assert!(other.saw(&Command::KeysChanged { tenant: T0 }));
        assert_eq!(other.keys.usable_keys(T0), 1);
        assert!(other.dispatched().is_empty());
        // Nothing changed since: nothing is taken in, no one is woken.
        other.tick(&mut data, START + 750);
        assert!(!other.saw(&Command::KeysChanged { tenant: T0 }));
        assert!(!other.saw(&Command::ReadDocument { tenant: T0 }));
    }

    #[test]
    fn an_unusable_shared_key_set_is_logged_and_the_last_set_kept() {
        let mut data = SharedData::default();
        let mut vm = fetched(&mut data);
        let mut record = data.record();
        record.succeeded(START + 1_000, &ScheduleSettings::for_source(&source(false)));
        data.store(&record);
        data.document = Some(b"garbage".to_vec());
        vm.tick(&mut data, START + 1_000);
        let (level, text) = vm.logs().pop().unwrap();
        assert_eq!(level, LogLevel::Warn);
        assert!(
            text.starts_with("shared key set of tenant #0 unusable: "),
            "{text}"
        );
        assert_eq!(vm.keys.usable_keys(T0), 1);
        assert!(vm.saw(&Command::KeysChanged { tenant: T0 }));
    }

    #[test]
    fn a_policys_tenants_are_fetched_from_their_configured_sources() {
        let policy = crate::test_support::policy();
        let mut lifecycle = KeyLifecycle::for_policy(&policy);
        let mut keys = KeyStore::new(
            policy
                .tenants()
                .iter()
                .map(|t| ScheduleSettings::for_source(&t.jwks))
                .collect(),
        );
        let mut dispatched = Vec::new();
        for index in 0..2 {
            let tenant = TenantIndex(index);
            lifecycle.handle(&mut keys, Vm::at(START), Event::Tick);
            let read = Event::RecordRead {
                tenant,
                bytes: None,
                cas: None,
            };
            lifecycle.handle(&mut keys, Vm::at(START), read);
            let written = Event::RecordWritten {
                tenant,
                result: WriteResult::Stored,
            };
            lifecycle.handle(&mut keys, Vm::at(START), written);
            let read = Event::RecordRead {
                tenant,
                bytes: None,
                cas: Some(1),
            };
            dispatched.extend(lifecycle.handle(&mut keys, Vm::at(START), read));
        }
        let paths: Vec<_> = dispatched
            .iter()
            .filter_map(|c| match c {
                Command::Dispatch { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        let tenant_ids: Vec<_> = policy
            .tenants()
            .iter()
            .map(|t| t.tenant_id.to_string())
            .collect();
        assert_eq!(paths.len(), 2, "{dispatched:?}");
        for (path, id) in paths.iter().zip(&tenant_ids) {
            assert!(path.starts_with(&format!("/{id}/")), "{path}");
        }
    }

    #[test]
    fn a_stray_read_or_write_result_does_not_disturb_a_claim_being_stored() {
        let mut vm = Vm::new(false);
        let mut handle = |event| vm.lifecycle.handle(&mut vm.keys, Vm::at(START), event);
        let read = |cas| Event::RecordRead {
            tenant: T0,
            bytes: None,
            cas,
        };
        handle(Event::Tick);
        assert!(matches!(
            handle(read(None))[..],
            [Command::WriteRecord { .. }]
        ));
        // A read nothing asked for, and a write result before the awaited one.
        assert_eq!(handle(read(None)), vec![]);
        let written = |result| Event::RecordWritten { tenant: T0, result };
        assert_eq!(
            handle(written(WriteResult::Stored)),
            vec![Command::ReadRecord { tenant: T0 }]
        );
        assert!(matches!(
            handle(read(Some(1)))[..],
            [Command::KeysChanged { .. }, Command::Dispatch { .. }]
        ));
        assert_eq!(handle(written(WriteResult::Stored)), vec![]);
        assert_eq!(handle(read(Some(1))), vec![]);
    }

    #[test]
    fn every_tenant_is_looked_at_on_every_tick() {
        let tenants = vec![
            ("a".to_owned(), source(false)),
            ("b".to_owned(), source(true)),
        ];
        let settings = tenants
            .iter()
            .map(|(_, s)| ScheduleSettings::for_source(s))
            .collect();
        let mut lifecycle = KeyLifecycle::new(tenants);
        let mut keys = KeyStore::new(settings);
        let refetch = Event::RefetchRequested {
            tenant: TenantIndex(5),
        };
        assert!(lifecycle
            .handle(&mut keys, Vm::at(START), refetch)
            .is_empty());
        assert_eq!(
            lifecycle.handle(&mut keys, Vm::at(START), Event::Tick),
            vec![
                Command::ReadRecord {
                    tenant: TenantIndex(0)
                },
                Command::ReadRecord {
                    tenant: TenantIndex(1)
                }
            ]
        );
    }
}
