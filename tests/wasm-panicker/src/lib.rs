//! A proxy-wasm HTTP filter that panics in `on_http_request_headers`, exactly like a bug in the
//! real filter would: the panic hook installed by `set_log_level` (the same call the real
//! filter's entry point makes) logs the message through Envoy, then the VM aborts. Used by
//! `tests/e2e/test_fail_closed.py` to show that the shipped `envoy.yaml` fails closed.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

/// The text the panic hook must bring into Envoy's log.
pub const PANIC_MESSAGE: &str = "wasm-panicker: deliberate panic in on_http_request_headers";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PanickerRoot) });
}}

struct PanickerRoot;

impl Context for PanickerRoot {}

impl RootContext for PanickerRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Panicker))
    }
}

struct Panicker;

impl Context for Panicker {}

impl HttpContext for Panicker {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        panic!("{PANIC_MESSAGE}");
    }
}
