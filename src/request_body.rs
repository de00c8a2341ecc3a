//! Request bodies, for the few calls whose projects are in them (issue create, bulk create,
//! issue link, search by POST). The core says when it needs a body
//! ([`jira_entra_guard_core::decide::Decision::NeedBody`]); only then is a request *held* here,
//! and only held requests see any work in the body callbacks.
//!
//! A held request is paused at its headers (Envoy's `allow_on_headers_stop_iteration` lets the
//! body through to the filter while the headers wait) and every body chunk is answered with
//! "stop and buffer", so nothing reaches Jira before the decision. At the end of the stream (or
//! at the trailers) the whole buffered body is read once and the request is decided again; a
//! body that grows past `max_body_bytes` is decided at once as too large. A request that waits
//! for a key set is held too: its body must not slip past while it waits.
//!
//! The record of held requests lives in the root context's shared state, so that the root
//! context, which wakes requests waiting for keys, knows whether a body already arrived, and
//! refuses (408) a body that is not complete [`BODY_WAIT_MS`] after it was asked for — which
//! is also what an Envoy without `allow_on_headers_stop_iteration` would otherwise leave
//! hanging, since it holds the body back from a request paused at its headers.

use jira_entra_guard_core::keys::wait::KeyWait;
use jira_entra_guard_core::policy::scope::RequestBody;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType};

use crate::host;
use crate::request_flow::{process_request, Flow};
use crate::root::{Shared, SharedState};

/// How long a held request may take to deliver the rest of its body, in milliseconds.
pub const BODY_WAIT_MS: u64 = 30_000;

/// What a held request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Its tenant's key set.
    Keys,
    /// The rest of its body.
    Body,
}

/// A request held undecided.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// What it waits for.
    pub waiting: Waiting,
    /// Body bytes buffered so far.
    pub received: usize,
    /// The body is complete (end of stream or trailers seen).
    pub complete: bool,
    /// When the body was asked for (epoch milliseconds; 0 while waiting for keys).
    pub since_ms: u64,
    /// The body did not arrive within [`BODY_WAIT_MS`].
    pub timed_out: bool,
    /// The request's wait for keys, once it has waited: it keeps that deadline when it is
    /// decided again for its body.
    pub key_wait: Option<KeyWait>,
}

/// The body as far as the decision can see it, owning what was read from Envoy.
#[derive(Debug)]
pub enum Buffered {
    /// Not (yet) complete.
    Unread,
    /// The whole body.
    Complete(Vec<u8>),
    /// Larger than `max_body_bytes`.
    TooLarge,
    /// Not complete in time.
    TimedOut,
}

impl Buffered {
    /// The form the core takes.
    pub fn as_request_body(&self) -> RequestBody<'_> {
        match self {
            Buffered::Unread => RequestBody::Unread,
            Buffered::Complete(bytes) => RequestBody::Complete(bytes),
            Buffered::TooLarge => RequestBody::TooLarge,
            Buffered::TimedOut => RequestBody::TimedOut,
        }
    }
}

/// The body of the effective request for a decision. `headers_ended`: the request has no body
/// at all.
pub fn buffered(shared: &Shared, context_id: u32, headers_ended: bool, max: usize) -> Buffered {
    if headers_ended {
        return Buffered::Complete(Vec::new());
    }
    match shared.held.get(&context_id) {
        Some(held) if held.received > max => Buffered::TooLarge,
        Some(held) if held.timed_out => Buffered::TimedOut,
        Some(held) if held.complete => Buffered::Complete(read_body(held.received)),
        _ => Buffered::Unread,
    }
}

/// The whole buffered body. A host that hands back more or fewer bytes than it reported
/// buffering gives an empty body, which no decision accepts: the decision must read exactly
/// what Jira will receive.
fn read_body(size: usize) -> Vec<u8> {
    match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size.saturating_add(1)) {
        Ok(None) if size == 0 => Vec::new(),
        Ok(Some(bytes)) if bytes.len() == size => bytes,
        other => {
            let got = other.ok().flatten().map_or(0, |b| b.len());
            log::error!("request body: {size} bytes buffered, {got} readable; refusing it");
            Vec::new()
        }
    }
}

/// Holds the request until `waiting` is over. `complete`: no body will follow.
pub fn hold(shared: &mut Shared, context_id: u32, waiting: Waiting, complete: bool) {
    let held = shared.held.entry(context_id).or_insert(Held {
        waiting,
        received: 0,
        complete,
        since_ms: 0,
        timed_out: false,
        key_wait: None,
    });
    if (waiting == Waiting::Body && held.waiting != Waiting::Body) || held.since_ms == 0 {
        held.since_ms = host::now_millis();
    }
    held.waiting = waiting;
    held.complete |= complete;
}

/// Holds the request while it waits for keys until `wait` is over. `complete`: no body will
/// follow.
pub fn hold_for_keys(shared: &mut Shared, context_id: u32, complete: bool, wait: KeyWait) {
    hold(shared, context_id, Waiting::Keys, complete);
    if let Some(held) = shared.held.get_mut(&context_id) {
        held.key_wait = Some(wait);
    }
}

/// The wait for keys a held request already started, if any.
pub fn key_wait(shared: &Shared, context_id: u32) -> Option<KeyWait> {
    shared.held.get(&context_id).and_then(|held| held.key_wait)
}

/// Refuses the held requests whose body is overdue (called on every tick of the root context).
pub fn expire(state: &SharedState, now_ms: u64) {
    let overdue: Vec<u32> = {
        let mut shared = state.borrow_mut();
        if shared.held.is_empty() {
            return;
        }
        shared
            .held
            .iter_mut()
            .filter(|(_, h)| {
                h.waiting == Waiting::Body
                    && !h.complete
                    && now_ms.saturating_sub(h.since_ms) > BODY_WAIT_MS
            })
            .map(|(id, h)| {
                h.timed_out = true;
                *id
            })
            .collect()
    };
    for context_id in overdue {
        if hostcalls::set_effective_context(context_id).is_err() {
            release(&mut state.borrow_mut(), context_id);
            continue;
        }
        log::warn!(
            "request body not complete {BODY_WAIT_MS} ms after the headers; refused (an Envoy \
             without allow_on_headers_stop_iteration never hands the body over)"
        );
        let _ = process_request(state, context_id, None, false);
    }
}

/// The request is decided (or gone): its body callbacks pass everything on.
pub fn release(shared: &mut Shared, context_id: u32) {
    if !shared.held.is_empty() {
        shared.held.remove(&context_id);
    }
}

/// A body chunk arrived (`size`: all buffered so far).
pub fn on_body(state: &SharedState, context_id: u32, size: usize, end_of_stream: bool) -> Action {
    let (waiting, max) = {
        let mut shared = state.borrow_mut();
        if shared.held.is_empty() {
            return Action::Continue;
        }
        let max = shared.policy.as_ref().map_or(0, |p| p.max_body_bytes());
        let Some(held) = shared.held.get_mut(&context_id) else {
            return Action::Continue;
        };
        held.received = size;
        held.complete |= end_of_stream;
        (held.waiting, max)
    };
    match waiting {
        // Buffer while the keys load; the root context decides when they arrive.
        Waiting::Keys => Action::Pause,
        Waiting::Body if end_of_stream || size > max => decide_now(state, context_id),
        Waiting::Body => Action::Pause,
    }
}

/// The trailers arrived: the body is complete.
pub fn on_trailers(state: &SharedState, context_id: u32) -> Action {
    let waiting = {
        let mut shared = state.borrow_mut();
        let Some(held) = shared.held.get_mut(&context_id) else {
            return Action::Continue;
        };
        held.complete = true;
        held.waiting
    };
    match waiting {
        Waiting::Keys => Action::Pause,
        Waiting::Body => decide_now(state, context_id),
    }
}

fn decide_now(state: &SharedState, context_id: u32) -> Action {
    match process_request(state, context_id, None, false) {
        Flow::Continue => Action::Continue,
        Flow::Stop => Action::Pause,
    }
}
