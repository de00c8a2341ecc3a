//! The `host-cost-probe` of the benchmark (`bench/host_costs.py`): a proxy-wasm HTTP filter that
//! does what the `wasm-noop` baseline does (read `Authorization`, continue) and then repeats one
//! host operation a configured number of times. Comparing it with itself at count 0 gives the
//! price Envoy charges per operation, which bounds what any proxy-wasm filter can reach.
//!
//! Plugin configuration: `<operation> <count>`, where the operation is one of
//! - `none`: nothing more (the count is ignored);
//! - `read_header`: read `:path` (a value comes back, so Envoy calls into the VM to allocate);
//! - `read_absent`: read a header the request does not have (nothing comes back);
//! - `read_all`: read the whole request header map;
//! - `set_header`: set `x-probe` on the request (the first change of a request's headers
//!   makes Envoy clear its route cache and select the route again);
//! - `time`: read the host's clock.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(ProbeRoot { probe: Probe::default() })
    });
}}

/// One host operation and how often to repeat it per request.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    operation: Operation,
    count: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Operation {
    #[default]
    None,
    ReadHeader,
    ReadAbsent,
    ReadAll,
    SetHeader,
    Time,
}

fn parse(text: &str) -> Option<Probe> {
    let mut words = text.split_whitespace();
    let operation = match words.next()? {
        "none" => Operation::None,
        "read_header" => Operation::ReadHeader,
        "read_absent" => Operation::ReadAbsent,
        "read_all" => Operation::ReadAll,
        "set_header" => Operation::SetHeader,
        "time" => Operation::Time,
        _ => return None,
    };
    let count = match words.next() {
        Some(n) => n.parse().ok()?,
        None => 0,
    };
    Some(Probe { operation, count })
}

struct ProbeRoot {
    probe: Probe,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = self
            .get_plugin_configuration()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        match parse(&text) {
            Some(probe) => {
                self.probe = probe;
                true
            }
            None => {
                log::error!(
                    "host-cost-probe: configuration must be `<operation> <count>`, got {text:?}"
                );
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeRequest { probe: self.probe }))
    }
}

struct ProbeRequest {
    probe: Probe,
}

impl Context for ProbeRequest {}

impl HttpContext for ProbeRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The baseline's work: one header value copied into the VM.
        std::hint::black_box(
            hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "authorization").ok(),
        );
        // Read at run time, so the loop cannot be folded away.
        let count = std::hint::black_box(self.probe.count);
        for _ in 0..count {
            match self.probe.operation {
                Operation::None => break,
                Operation::ReadHeader => {
                    std::hint::black_box(
                        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":path").ok(),
                    );
                }
                Operation::ReadAbsent => {
                    std::hint::black_box(
                        hostcalls::get_map_value_bytes(
                            MapType::HttpRequestHeaders,
                            "x-probe-absent",
                        )
                        .ok(),
                    );
                }
                Operation::ReadAll => {
                    std::hint::black_box(
                        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok(),
                    );
                }
                Operation::SetHeader => {
                    let _ =
                        hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-probe", Some("1"));
                }
                Operation::Time => {
                    std::hint::black_box(hostcalls::get_current_time().ok());
                }
            }
        }
        Action::Continue
    }
}
