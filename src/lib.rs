//! The proxy-wasm shell of jira-entra-guard.
