//! The configuration document as written: strict serde shapes that reject unknown fields and
//! wrong types, so typos fail at configure time instead of silently widening access. Nothing
//! here is validated beyond its JSON type; [`super::compile`] does the rest with field paths.
//!
//! Optional fields are `Option`s so that an explicit `null` (common when the JSON is rendered
//! from YAML) means the same as leaving the field out.

use serde::Deserialize;

/// The whole plugin configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a configuration object")]
pub(super) struct RawConfig {
    pub(super) tenants: Vec<RawTenant>,
    pub(super) clients: Vec<RawClient>,
    pub(super) public_paths: Option<Vec<RawPublicRule>>,
    pub(super) clock_skew_seconds: Option<i64>,
}

/// One entry of `tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a tenant object")]
pub(super) struct RawTenant {
    pub(super) tenant_id: String,
    pub(super) audiences: Vec<String>,
    pub(super) jwks: RawJwks,
}

/// A tenant's `jwks` object: where its key set is fetched from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a jwks object")]
pub(super) struct RawJwks {
    pub(super) cluster: String,
    pub(super) authority: Option<String>,
    pub(super) path: Option<String>,
}

/// One entry of `clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a client object")]
pub(super) struct RawClient {
    pub(super) name: String,
    pub(super) app_id: String,
    pub(super) tenant_id: Option<String>,
    pub(super) allow: Vec<RawRule>,
    pub(super) deny: Option<Vec<RawRule>>,
    pub(super) required_roles: Option<Vec<String>>,
    pub(super) allow_client_secret: Option<bool>,
    pub(super) upstream_authorization_env: Option<String>,
}

/// An `allow` or `deny` rule of a client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rule object")]
pub(super) struct RawRule {
    pub(super) methods: Vec<String>,
    pub(super) paths: Vec<String>,
    pub(super) projects: Option<Vec<String>>,
}

/// A `public_paths` rule: like a client rule, without `projects`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a rule object")]
pub(super) struct RawPublicRule {
    pub(super) methods: Vec<String>,
    pub(super) paths: Vec<String>,
}
