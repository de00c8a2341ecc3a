//! The request context: hands the request to [`crate::request_flow::process`] when its headers
//! arrive. A request whose tenant's key set is still loading is parked in the root context's
//! waiting list; the root context processes it again when the keys arrive or the wait bound
//! passes.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::request_flow::{process, Flow};
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

impl Context for GuardRequest {}

impl HttpContext for GuardRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match process(&self.state, self.context_id, None) {
            Flow::Continue => Action::Continue,
            Flow::Stop => Action::Pause,
        }
    }
}
