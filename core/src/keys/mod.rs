//! Everything about the tenants' signing keys: where a key set is fetched, how it is parsed, how
//! the VMs of one Envoy process share it, and what a request may do while it is missing.
//!
//! The data flow, for each tenant:
//!
//! ```text
//! shell: tick, shared-data answers, HTTP responses
//!    │ events                                        ▲ commands: read/write the shared record,
//!    ▼                                               │ publish the document, GET, wake waiters,
//! lifecycle ─────────────────────────────────────────┘ log, count
//!    ├─ claims, leases, backoff ─────────> record (shared by all VMs), schedule (timing)
//!    ├─ discovery document ──> discovery ──> key-set path
//!    └─ key-set document ──> jwks ──> KeySet ──> store (this VM's sets)
//!                                                  │ store.at(now): KeysAt
//!                                                  ▼
//!                          a request's decision; while it waits for keys: wait
//! ```
//!
//! - [`lifecycle`]: the key-set lifecycle of one VM as a state machine without I/O: events in
//!   (tick, shared record read, write outcome, HTTP response), commands out.
//! - [`schedule`]: the timing of fetches (refresh, staleness, refetch rate, lease, backoff).
//! - [`record`]: the per-tenant record all VMs share, its claims and transitions, and the
//!   shared-data key names.
//! - [`discovery`]: the OIDC discovery document, which names the key-set path.
//! - [`jwks`]: key-set parsing into verification keys, and the [`jwks::KeySets`] seam a request
//!   is decided through.
//! - [`store`]: one VM's parsed key sets and the view a request at one instant decides with.
//! - [`wait`]: how long one request may wait for keys.
//!
//! Timing: a good fetch is refreshed every `refresh_seconds` in the background; a failed fetch
//! is retried with exponential backoff (1 s doubling to 30 s) plus up to a quarter of jitter,
//! while the last good set stays in use for at most `max_stale_seconds` after it was fetched; a
//! token naming an unknown `kid` may trigger an early fetch at most once per
//! `min_refetch_seconds` per tenant, across all VMs, and none while the last fetch failed. A
//! request waits for keys at most `key_wait_ms` in all.

pub mod discovery;
pub mod jwks;
pub mod lifecycle;
pub mod record;
pub mod schedule;
pub mod store;
pub mod wait;
