//! Host calls shared by the root and request contexts. They act on the *effective* context, so
//! the root context can answer or resume a waiting request after `set_effective_context`.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use jira_entra_guard_core::decide::Identity;
use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::header_map::{header_pairs, header_text};
use jira_entra_guard_core::reply::{deny_reply, upstream_headers};
use jira_entra_guard_core::request::{RequestHead, METHOD_OVERRIDE_HEADERS};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

/// Milliseconds since the epoch by the host's clock.
pub fn now_millis() -> u64 {
    hostcalls::get_current_time()
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whole seconds of an epoch-milliseconds time (token claims are in seconds).
pub fn seconds(millis: u64) -> i64 {
    i64::try_from(millis / 1_000).unwrap_or(i64::MAX)
}

/// Pseudo-random spread for retry delays, so that VMs and Envoy processes that failed
/// together do not retry together.
pub fn jitter() -> u32 {
    let nanos = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.subsec_nanos());
    nanos.rotate_left(13) ^ 0x9e37_79b9
}

/// The request headers of the effective context, as the host serialized them: one buffer that
/// the head borrows from (see [`jira_entra_guard_core::header_map`]).
pub struct RequestHeaders {
    serialized: Vec<u8>,
}

impl RequestHeaders {
    /// Reads the effective context's request headers.
    pub fn read() -> Self {
        RequestHeaders {
            serialized: raw::request_header_map(),
        }
    }

    /// The `(name, value)` pairs, as text. A buffer the host did not serialize as the ABI
    /// describes reads as no headers, which the core refuses (no `:method`, no `:path`).
    pub fn pairs(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        header_pairs(&self.serialized)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| (header_text(name), header_text(value)))
            .collect()
    }
}

/// The one host call the SDK offers no borrowing form of.
#[allow(unsafe_code)]
mod raw {
    use std::ptr::null_mut;

    use proxy_wasm::types::{MapType, Status};

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_map_data: *mut *mut u8,
            return_map_size: *mut usize,
        ) -> Status;
    }

    /// The serialized request header map of the effective context; empty when the host has
    /// none. (The SDK's `get_map_bytes` returns the same buffer, but copies every name and
    /// value into an allocation of its own, and panics on a status it does not expect.)
    pub fn request_header_map() -> Vec<u8> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: both out-pointers point to live locals of the right types.
        let status = unsafe {
            proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size)
        };
        if status != Status::Ok || data.is_null() {
            return Vec::new();
        }
        // SAFETY: the host allocated these `size` bytes through the module's exported
        // `proxy_on_memory_allocate` (the SDK's: a `Vec<u8>` of capacity `size`, forgotten) and
        // hands them to the caller, exactly as the SDK's own map readers take them back.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// The request head and `x-request-id`, picked out of the header pairs (names arrive lowercase
/// from Envoy).
pub fn request_head<'h>(
    headers: &'h [(Cow<'h, str>, Cow<'h, str>)],
) -> (RequestHead<'h>, Option<&'h str>) {
    let mut head = RequestHead::default();
    let mut request_id = None;
    for (name, value) in headers {
        let value: &str = value;
        match name.as_ref() {
            ":method" => head.method = value,
            ":path" => head.path = value,
            "authorization" => head.authorization.push(value),
            "x-request-id" => request_id = Some(value),
            other if METHOD_OVERRIDE_HEADERS.contains(&other) => head.method_overrides.push(value),
            _ => {}
        }
    }
    (head, request_id)
}

/// Rewrites the effective request's identity headers before it goes on to Jira: the Entra
/// token and caller-supplied identity headers are removed or replaced by the client's.
/// `present` tells which headers the request carries, so absent ones cost no host call.
pub fn forward(identity: Option<&Identity<'_>>, present: &dyn Fn(&str) -> bool) {
    let changes = upstream_headers(identity);
    for name in changes.remove {
        if present(name) {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
        }
    }
    for (name, value) in changes.set.into_iter().flatten() {
        // Setting replaces every copy the caller sent.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
    }
}

/// Sends the local reply for `denial` on the effective request.
pub fn deny(denial: &Denial, retry_after: u64) {
    let reply = deny_reply(denial, retry_after);
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    if let Err(status) = hostcalls::send_http_response(
        u32::from(reply.status),
        headers,
        Some(reply.body.as_bytes()),
    ) {
        log::error!("could not send local reply: {status:?}");
    }
}
