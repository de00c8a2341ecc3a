//! Request bodies, for the few calls whose projects are in them (issue create, bulk create,
//! issue link, search by POST), carried out for
//! [`jira_entra_guard_core::held_requests`], which keeps the record of held requests and says
//! what each body callback does. This module decides nothing: it reads the buffered body from
//! Envoy when the record says it is complete, and turns the record's answers into host
//! actions.
//!
//! A held request is paused at its headers (Envoy's `allow_on_headers_stop_iteration` lets the
//! body through to the filter while the headers wait) and every body chunk is answered with
//! "stop and buffer", so nothing reaches Jira before the decision. Requests that are not held
//! pass their body straight through.

use jira_entra_guard_core::held_requests::{BodyStep, HeldBody, BODY_WAIT_MS};
use jira_entra_guard_core::policy::scope::RequestBody;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType};

use crate::request_flow::{decide_again, process_request, Flow};
use crate::root::{Shared, SharedState};

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
    match shared.held.body(context_id, headers_ended, max) {
        HeldBody::Unread => Buffered::Unread,
        HeldBody::Complete { size } => Buffered::Complete(read_body(size)),
        HeldBody::TooLarge => Buffered::TooLarge,
        HeldBody::TimedOut => Buffered::TimedOut,
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

/// Refuses the held requests whose body is overdue (called on every tick of the root context).
pub fn expire(state: &SharedState, now_ms: u64) {
    let overdue = state.borrow_mut().held.expire(now_ms);
    for context_id in overdue {
        log::warn!(
            "request body not complete {BODY_WAIT_MS} ms after the headers; refused (an Envoy \
             without allow_on_headers_stop_iteration never hands the body over)"
        );
        decide_again(state, context_id);
    }
}

/// A body chunk arrived (`size`: all buffered so far).
pub fn on_body(state: &SharedState, context_id: u32, size: usize, end_of_stream: bool) -> Action {
    let step = {
        let mut shared = state.borrow_mut();
        let max = shared.policy.as_ref().map_or(0, |p| p.max_body_bytes());
        shared.held.on_body(context_id, size, end_of_stream, max)
    };
    carry_out(state, context_id, step)
}

/// The trailers arrived: the body is complete.
pub fn on_trailers(state: &SharedState, context_id: u32) -> Action {
    let step = state.borrow_mut().held.on_trailers(context_id);
    carry_out(state, context_id, step)
}

fn carry_out(state: &SharedState, context_id: u32, step: BodyStep) -> Action {
    match step {
        BodyStep::Continue => Action::Continue,
        BodyStep::Pause => Action::Pause,
        BodyStep::Decide => match process_request(state, context_id, false) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        },
    }
}
