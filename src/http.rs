//! The request context: hands the request to [`crate::request_flow::process_request`] when its
//! headers arrive, and its body callbacks to [`crate::request_body`]. It decides nothing. A
//! request that waits (for its tenant's key set, or for its body) is held in the root context's
//! record of held requests; the root context decides it again when the keys arrive or the wait
//! bound passes, the body callbacks when the body is complete.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::request_body;
use crate::request_flow::{process_request, Flow};
use crate::root::SharedState;

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

impl Context for GuardRequest {
    fn on_done(&mut self) -> bool {
        // A request that goes away while held leaves no record behind.
        self.state.borrow_mut().held.release(self.context_id);
        true
    }
}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        match process_request(&self.state, self.context_id, end_of_stream) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        request_body::on_body(&self.state, self.context_id, body_size, end_of_stream)
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        request_body::on_trailers(&self.state, self.context_id)
    }
}
