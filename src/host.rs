//! Host calls shared by the root and request contexts. They act on the *effective* context, so
//! the root context can answer or resume a waiting request after `set_effective_context`.
//! They decide nothing: the reply, the header changes and the request head are built by the
//! core ([`jira_entra_guard_core::reply`], [`jira_entra_guard_core::request`]); these functions
//! read the clock and the headers and hand the core's answers to Envoy.

use std::time::{SystemTime, UNIX_EPOCH};

use jira_entra_guard_core::denial::Denial;
use jira_entra_guard_core::reply::{deny_reply, UpstreamHeaders};
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

/// The request headers of the effective context, as the owned pairs the head borrows from.
///
/// Values are read as bytes: a header value need not be UTF-8, and the SDK's string reader
/// would panic on one that is not. Invalid bytes become U+FFFD, which every check of the core
/// refuses where it matters (path, `Authorization`, method overrides). Header names are tokens
/// that Envoy's codecs have already validated.
pub fn request_headers() -> Vec<(String, String)> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let value = match String::from_utf8(value) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            };
            (name, value)
        })
        .collect()
}

/// Rewrites the effective request's identity headers before it goes on to Jira: the Entra
/// token and caller-supplied identity headers are removed or replaced by the client's.
/// `present` tells which headers the request carries, so absent ones cost no host call.
pub fn forward(changes: &UpstreamHeaders<'_>, present: &dyn Fn(&str) -> bool) {
    for name in changes.remove {
        if present(name) {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
        }
    }
    for (name, value) in changes.set.iter().flatten() {
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
