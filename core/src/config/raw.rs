//! The configuration document as written: strict serde shapes that reject unknown fields and
//! wrong types, so typos fail at configure time instead of silently widening access. Nothing
//! here is validated beyond its JSON type; [`super::compile`] does the rest with field paths.
//!
//! Optional fields are `Option`s so that an explicit `null` (common when the JSON is rendered
//! from YAML) means the same as leaving the field out. Every object is read through
//! [`Object`], because serde's derived structs would otherwise also accept a JSON array of
//! positional values in place of an object.
//!
//! With the `schema` feature the same types also derive the configuration's JSON Schema
//! ([`super::schema`]): the doc comments on the fields are its descriptions, and the `schemars`
//! attributes add the cheap checks (GUID and key patterns, bounds, non-empty lists) the compile
//! stage makes with better messages.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A configuration object that must be written as a JSON object.
#[derive(Debug)]
pub(super) struct Object<T>(pub(super) T);

impl<T> std::ops::Deref for Object<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What a configuration object is called in "expected ..." messages.
pub(super) trait Described {
    /// E.g. `a tenant object`.
    const EXPECTING: &'static str;
}

impl<'de, T: Deserialize<'de> + Described> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// Accepts only a map and hands it to `T`'s derived implementation.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Described> Visitor<'de> for ObjectVisitor<T> {
    type Value = Object<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// The plugin configuration of jira-entra-guard: the JSON document in the Envoy Wasm filter's
/// `configuration`. Unknown fields are refused; an explicit `null` is the same as leaving an
/// optional field out.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "PluginConfiguration")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// The Entra ID tenants whose tokens are trusted; at least one, each `tenant_id` once.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) tenants: Vec<Object<RawTenant>>,
    /// The client applications that may call Jira, each with its ACL; at least one.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) clients: Vec<Object<RawClient>>,
    /// Requests that need no token (e.g. a status page); checked before the token.
    pub(super) public_paths: Option<Vec<Object<RawPublicRule>>>,
    /// Allowed difference between this clock and Entra ID's for `exp`, `nbf` and `iat`, in
    /// seconds.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 0, max = super::MAX_CLOCK_SKEW_SECONDS),
            extend("default" = super::DEFAULT_CLOCK_SKEW_SECONDS)
        )
    )]
    pub(super) clock_skew_seconds: Option<i64>,
    /// Longest token life accepted, in seconds: a token whose `exp` is further than this from
    /// its `iat`, or from now, is refused, and no cached verification outlives it.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(
                min = super::MIN_MAX_TOKEN_LIFETIME_SECONDS,
                max = super::MAX_MAX_TOKEN_LIFETIME_SECONDS
            ),
            extend("default" = super::DEFAULT_MAX_TOKEN_LIFETIME_SECONDS)
        )
    )]
    pub(super) max_token_lifetime_seconds: Option<i64>,
    /// `enforce` answers denials locally; `audit` logs them and forwards the request anyway
    /// (dry run).
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["enforce", "audit", null], "default" = "enforce"))
    )]
    pub(super) mode: Option<String>,
    /// Which decisions are written to the audit log: `all`, `denials` or `off`.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["all", "denials", "off", null], "default" = "all"))
    )]
    pub(super) audit_log: Option<String>,
    /// Capacity of the verified-token cache; 0 disables it.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 0, max = super::MAX_TOKEN_CACHE_SIZE),
            extend("default" = super::DEFAULT_TOKEN_CACHE_SIZE)
        )
    )]
    pub(super) token_cache_size: Option<i64>,
    /// How long a request may wait in all for a key-set fetch (the first one, or one a token
    /// naming an unknown key asked for), in milliseconds; longer than every `fetch_timeout_ms`.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 200, max = 30_000),
            extend("default" = super::DEFAULT_KEY_WAIT_MS)
        )
    )]
    pub(super) key_wait_ms: Option<i64>,
    /// Who checks RS256 signatures: `auto` (Envoy's native `verify_signature` when the host has
    /// it, else RSA in Wasm), `envoy` (required) or `wasm`.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["auto", "envoy", "wasm", null], "default" = "auto"))
    )]
    pub(super) signature_backend: Option<String>,
    /// Numeric Jira project ids the gateway may accept in place of keys, each mapped to its
    /// project key (`{"10000": "OPS"}`); an id not listed names no project the gateway can check.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("propertyNames" = {"pattern": "^[1-9][0-9]*$"}, "additionalProperties" = {"type": "string", "pattern": "^[A-Z][A-Z0-9_]+$"}))
    )]
    pub(super) project_ids: Option<std::collections::BTreeMap<String, String>>,
    /// The largest request body buffered to read the projects of a create, bulk create, issue
    /// link or search, in bytes; a larger body is refused with 413. Keep Envoy's
    /// `per_connection_buffer_limit_bytes` above it.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1024, max = super::MAX_MAX_BODY_BYTES),
            extend("default" = super::DEFAULT_MAX_BODY_BYTES)
        )
    )]
    pub(super) max_body_bytes: Option<i64>,
}

/// One entry of `tenants`: a trusted Entra ID tenant.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Tenant")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    /// The directory (tenant) id, a GUID (`8-4-4-4-12` hex digits, either case). Tokens must
    /// carry it as `tid` and be issued by one of the tenant's issuers: by default the cloud's,
    /// e.g. `https://sts.windows.net/{tid}/` (v1) or `https://login.microsoftonline.com/{tid}/v2.0`
    /// (v2) in the public cloud.
    #[cfg_attr(feature = "schema", schemars(pattern(super::GUID_PATTERN)))]
    pub(super) tenant_id: String,
    /// Accepted `aud` values (App ID URI and/or application id of the Jira API registration); a
    /// token must carry at least one.
    #[cfg_attr(
        feature = "schema",
        schemars(length(min = 1), inner(length(min = 1)), extend("uniqueItems" = true))
    )]
    pub(super) audiences: Vec<String>,
    /// Where the tenant's signing keys are fetched from.
    pub(super) jwks: Object<RawJwks>,
    /// The Microsoft cloud the tenant lives in: `public`, `usgov` (US Government), `china`
    /// (operated by 21Vianet) or `external_id` (Entra External ID). It sets the key-set
    /// authority and both issuer forms together.
    #[cfg_attr(
        feature = "schema",
        schemars(extend(
            "enum" = ["public", "usgov", "china", "external_id", null],
            "default" = "public"
        ))
    )]
    pub(super) cloud: Option<String>,
    /// Trusted issuers in place of the cloud's (for issuer forms Microsoft adds later): each an
    /// `https://` URL containing the tenant id. A token version left out is not accepted.
    pub(super) issuers: Option<Object<RawIssuers>>,
}

/// A tenant's `issuers` object: the exact `iss` values its v1 and v2 tokens carry.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Issuers")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuers {
    /// The `iss` of v1.0 tokens, e.g. `https://sts.windows.net/{tenant_id}/`.
    #[cfg_attr(feature = "schema", schemars(pattern(r"^https://[!-~]+$")))]
    pub(super) v1: Option<String>,
    /// The `iss` of v2.0 tokens, e.g. `https://login.microsoftonline.com/{tenant_id}/v2.0`.
    #[cfg_attr(feature = "schema", schemars(pattern(r"^https://[!-~]+$")))]
    pub(super) v2: Option<String>,
}

/// A tenant's `jwks` object: where its key set is fetched from.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Jwks")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    /// The Envoy cluster the key set is fetched through (TLS to login.microsoftonline.com:443
    /// in production; under Istio `outbound|443||login.microsoftonline.com`).
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) cluster: String,
    /// `:authority` of the key-set request: a host name with an optional port. Defaults to the
    /// tenant's cloud's authority (`login.microsoftonline.com` in the public cloud).
    #[cfg_attr(feature = "schema", schemars(pattern(r"^[!-.0-~]+$")))]
    pub(super) authority: Option<String>,
    /// `:path` of the key-set request; defaults to `/{tenant_id}/discovery/v2.0/keys`.
    #[cfg_attr(feature = "schema", schemars(pattern(r"^/[!-~]*$")))]
    pub(super) path: Option<String>,
    /// Read the key-set path from the tenant's OpenID discovery document instead of `path`
    /// (cannot be combined with `path`).
    #[cfg_attr(feature = "schema", schemars(extend("default" = false)))]
    pub(super) discovery: Option<bool>,
    /// Interval between background refreshes of the key set, in seconds.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1, max = 604_800),
            extend("default" = super::DEFAULT_REFRESH_SECONDS)
        )
    )]
    pub(super) refresh_seconds: Option<i64>,
    /// Least time between two fetches caused by tokens naming an unknown key, in seconds.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1, max = 86_400),
            extend("default" = super::DEFAULT_MIN_REFETCH_SECONDS)
        )
    )]
    pub(super) min_refetch_seconds: Option<i64>,
    /// How long the last good key set is used while Entra ID cannot be reached, in seconds; at
    /// least `refresh_seconds`.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 1, max = 2_592_000),
            extend("default" = super::DEFAULT_MAX_STALE_SECONDS)
        )
    )]
    pub(super) max_stale_seconds: Option<i64>,
    /// Timeout of one key-set fetch, in milliseconds; shorter than `key_wait_ms`.
    #[cfg_attr(
        feature = "schema",
        schemars(
            range(min = 100, max = 29_000),
            extend("default" = super::DEFAULT_FETCH_TIMEOUT_MS)
        )
    )]
    pub(super) fetch_timeout_ms: Option<i64>,
}

/// One entry of `clients`: a client application and its ACL.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Client")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    /// Name sent to Jira in `x-jira-client`: visible ASCII without spaces, unique.
    #[cfg_attr(feature = "schema", schemars(pattern(r"^[!-~]+$")))]
    pub(super) name: String,
    /// The application (client) id, a GUID: `azp` (v2 tokens) or `appid` (v1).
    #[cfg_attr(feature = "schema", schemars(pattern(super::GUID_PATTERN)))]
    pub(super) app_id: String,
    /// The client's tenant, one of `tenants`; required when more than one tenant is configured.
    #[cfg_attr(feature = "schema", schemars(pattern(super::GUID_PATTERN)))]
    pub(super) tenant_id: Option<String>,
    /// Rules of what the client may do; the first matching rule is reported in logs.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) allow: Vec<Object<RawRule>>,
    /// Rules of what the client may not do; checked before `allow` and win over it.
    pub(super) deny: Option<Vec<Object<RawRule>>>,
    /// App roles the token must all carry in `roles`.
    #[cfg_attr(
        feature = "schema",
        schemars(inner(length(min = 1)), extend("uniqueItems" = true))
    )]
    pub(super) required_roles: Option<Vec<String>>,
    /// Accept tokens the client got with a client secret (`azpacr`/`appidacr` 1), not only
    /// with a certificate (2).
    #[cfg_attr(feature = "schema", schemars(extend("default" = false)))]
    pub(super) allow_client_secret: Option<bool>,
    /// Name of an environment variable of the Wasm VM whose value replaces the request's
    /// `Authorization` header towards Jira (e.g. `Bearer <Jira PAT>`); must be set when the
    /// configuration is loaded.
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub(super) upstream_authorization_env: Option<String>,
    /// This client's own mode: `audit` logs the client's denials and forwards its requests
    /// anyway (a dry run for one client); `enforce` by default.
    #[cfg_attr(
        feature = "schema",
        schemars(extend("enum" = ["enforce", "audit", null], "default" = "enforce"))
    )]
    pub(super) mode: Option<String>,
}

/// An `allow` or `deny` rule of a client.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "Rule")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    /// HTTP methods as sent (uppercase, case-sensitive), or `["*"]` for any method.
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1),
            inner(pattern(r"^[!#$%&'*+.^_`|~0-9A-Z-]+$")),
            extend("uniqueItems" = true)
        )
    )]
    pub(super) methods: Vec<String>,
    /// Path patterns matched against the canonical path without the query: literal segments,
    /// `*` for one segment, a final `**` for any rest.
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1),
            inner(pattern(r"^/[A-Za-z0-9._~*/-]*$")),
            extend("uniqueItems" = true)
        )
    )]
    pub(super) paths: Vec<String>,
    /// Jira project keys the rule is limited to: read from the path (issue and project paths),
    /// the body (issue create, bulk create, issue link) or the JQL (search); leave out for any
    /// project.
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1),
            inner(pattern(r"^[A-Z][A-Z0-9_]+$")),
            extend("uniqueItems" = true)
        )
    )]
    pub(super) projects: Option<Vec<String>>,
}

/// A `public_paths` rule: like a client rule, without `projects`.
#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "PublicRule")
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublicRule {
    /// HTTP methods as sent (uppercase, case-sensitive), or `["*"]` for any method.
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1),
            inner(pattern(r"^[!#$%&'*+.^_`|~0-9A-Z-]+$")),
            extend("uniqueItems" = true)
        )
    )]
    pub(super) methods: Vec<String>,
    /// Path patterns matched against the canonical path without the query: literal segments,
    /// `*` for one segment, a final `**` for any rest.
    #[cfg_attr(
        feature = "schema",
        schemars(
            length(min = 1),
            inner(pattern(r"^/[A-Za-z0-9._~*/-]*$")),
            extend("uniqueItems" = true)
        )
    )]
    pub(super) paths: Vec<String>,
}

impl Described for RawConfig {
    const EXPECTING: &'static str = "a configuration object";
}

impl Described for RawTenant {
    const EXPECTING: &'static str = "a tenant object";
}

impl Described for RawIssuers {
    const EXPECTING: &'static str = "an issuers object";
}

impl Described for RawJwks {
    const EXPECTING: &'static str = "a jwks object";
}

impl Described for RawClient {
    const EXPECTING: &'static str = "a client object";
}

impl Described for RawRule {
    const EXPECTING: &'static str = "a rule object";
}

impl Described for RawPublicRule {
    const EXPECTING: &'static str = "a rule object";
}
