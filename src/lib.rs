//! The proxy-wasm shell of jira-entra-guard: it moves bytes between Envoy and the decision core
//! (`jira_entra_guard_core`) and does nothing that decides.
//!
//! - [`root`]: one per Wasm VM (one VM per Envoy worker). Compiles the plugin configuration,
//!   hands the core's key lifecycle its tick and HTTP responses and carries out its commands
//!   (`dispatch_http_call`, shared data, logs, counts), and wakes or times out requests that
//!   wait for keys.
//! - [`http`]: one per request; hands it to [`request_flow`], the one path every request takes:
//!   decide with the core, hold it when the outcome is a wait, count ([`metrics`]), write the
//!   audit record, and forward with identity headers or answer locally.
//! - [`request_body`]: the body callbacks of the few requests held for their body (issue
//!   create, bulk create, issue link, search by POST) or for keys: the core's record of held
//!   requests says when to buffer and when to decide, this module reads the body from Envoy;
//!   nothing reaches Jira before the decision.
//! - [`shared_keys`]: each tenant's key record and key-set document in Envoy's shared data, so
//!   that one Envoy process fetches each key set once for all its VMs.
//! - [`signature`]: Envoy's native `verify_signature` for RS256 when the host has it, chosen
//!   once at configure time, with RSA in Wasm as the fallback.
//! - [`host`]: the few host calls both use, in one place (local replies, header rewriting,
//!   the clock).
#![forbid(unsafe_code)]

pub mod host;
pub mod http;
pub mod metrics;
pub mod request_body;
pub mod request_flow;
pub mod root;
pub mod shared_keys;
pub mod signature;

/// The module's entry point, called by Envoy when the VM starts.
mod entry {
    #![allow(missing_docs)]
    use proxy_wasm::types::LogLevel;

    proxy_wasm::main! {{
        // Installs the logger and a panic hook that logs through Envoy before the VM aborts.
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
            Box::new(crate::root::GuardRoot::new())
        });
    }}
}
