//! The decision core of jira-entra-guard.
//!
//! Everything that decides lives here and nowhere else: the plugin configuration is parsed and
//! compiled into a [`policy::Policy`] ([`config`]), key sets are fetched, shared and parsed into
//! verification keys ([`keys`]), the request head is checked ([`request`], [`path`]), the bearer
//! token is parsed and verified ([`token`]), the caller is authorized against the ACL
//! ([`policy`]); [`decide`] runs these steps and gives the request's [`outcome`], which becomes
//! what Envoy sends or forwards ([`reply`]), an audit record ([`audit`]) and counters
//! ([`metrics`]). Requests that wait for keys or for their body are kept in
//! [`held_requests`]. Nothing in this crate talks to the host: the clock is an argument, key
//! sets are handed in, and the proxy-wasm shell in the parent crate only moves bytes between
//! Envoy and these functions.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cloud;
pub mod config;
pub mod decide;
pub mod denial;
pub mod envoy_signature;
pub mod guid;
pub mod held_requests;
mod hex;
pub mod keys;
pub mod metrics;
pub mod outcome;
pub mod path;
pub mod policy;
pub mod reply;
pub mod request;
pub mod token;
pub mod token_cache;

#[cfg(test)]
mod test_support;
