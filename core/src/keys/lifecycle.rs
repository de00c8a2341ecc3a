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
            Pending::Idle | Pending::ClaimWrite(_) | Pending::FinishWrite(..) => Vec::new(),
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
            _ => {}
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
