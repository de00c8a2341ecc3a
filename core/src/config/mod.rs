//! Plugin configuration: the JSON document Envoy hands to `on_configure`, parsed strictly
//! (unknown fields rejected) and compiled into a [`Policy`]. A bad document yields one
//! [`ConfigError`] naming the field path and the problem.
//!
//! Two stages, each with one job: `parse` turns bytes into the document's shape (`raw`) and
//! reports wrong types, missing fields and unknown fields with the path serde was at;
//! `compile` checks what types cannot express (GUIDs, non-empty and duplicate-free lists,
//! cross-references, pattern syntax, environment lookups) and builds the [`Policy`].
//!
//! The fields, with their types, bounds and defaults, are documented in one place: the
//! README's "Configuration reference", which `cli/tests/documentation.rs` keeps equal to the
//! JSON Schema generated from `raw` (`schema/plugin-config.schema.json`, printed by
//! `jira-entra-guard schema`).
//!
//! An explicit `null` is the same as leaving an optional field out. The tenant's issuers are
//! precomputed from its cloud (or taken from `issuers`), with `tid` in lowercase; in the public
//! cloud `https://sts.windows.net/{tid}/` (v1 tokens) and
//! `https://login.microsoftonline.com/{tid}/v2.0` (v2).

use std::fmt;

use crate::policy::Policy;

mod compile;
mod parse;
mod raw;

/// `clock_skew_seconds` when not configured.
pub const DEFAULT_CLOCK_SKEW_SECONDS: i64 = 60;

/// Largest accepted `clock_skew_seconds`: beyond this an expired token lives on noticeably.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 600;

/// `max_token_lifetime_seconds` when not configured: Entra ID issues no access token that lives
/// longer than a day.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: i64 = 86_400;

/// Smallest accepted `max_token_lifetime_seconds`: five minutes.
pub const MIN_MAX_TOKEN_LIFETIME_SECONDS: i64 = 300;

/// Largest accepted `max_token_lifetime_seconds`: a week.
pub const MAX_MAX_TOKEN_LIFETIME_SECONDS: i64 = 604_800;

/// `tenants[].jwks.refresh_seconds` when not configured: Microsoft's guidance is hourly.
pub const DEFAULT_REFRESH_SECONDS: i64 = 3600;

/// `tenants[].jwks.min_refetch_seconds` when not configured: the least time between two fetches
/// caused by tokens naming an unknown key.
pub const DEFAULT_MIN_REFETCH_SECONDS: i64 = 300;

/// `tenants[].jwks.max_stale_seconds` when not configured: how long the last good key set is
/// used while Entra ID cannot be reached.
pub const DEFAULT_MAX_STALE_SECONDS: i64 = 86_400;

/// `tenants[].jwks.fetch_timeout_ms` when not configured: shorter than [`DEFAULT_KEY_WAIT_MS`],
/// so that a request waiting for a fetch sees it end.
pub const DEFAULT_FETCH_TIMEOUT_MS: i64 = 2_000;

/// `token_cache_size` when not configured.
pub const DEFAULT_TOKEN_CACHE_SIZE: i64 = 10_000;

/// Largest accepted `token_cache_size`.
pub const MAX_TOKEN_CACHE_SIZE: i64 = 1_000_000;

/// `key_wait_ms` when not configured: how long a request may wait for a key-set fetch.
pub const DEFAULT_KEY_WAIT_MS: i64 = 3_000;

/// Default `max_body_bytes`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: i64 = 1_048_576;

/// Largest `max_body_bytes`: 64 MiB.
pub const MAX_MAX_BODY_BYTES: i64 = 67_108_864;

/// The text form of a GUID the configuration accepts (`tenant_id`, `app_id`), as a regular
/// expression for the JSON Schema: `8-4-4-4-12` hexadecimal digits, either case.
pub const GUID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// Why a configuration was refused: `path` is the field (e.g. `tenants[0].tenant_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path in the document, `""` for the document itself.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// An error about the field at `path`.
    pub(crate) fn at(path: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.path, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses and compiles the plugin configuration. `env` looks up VM environment variables
/// (for `upstream_authorization_env`).
pub fn compile_policy(
    json: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Policy, ConfigError> {
    compile::compile(parse::parse(json)?, env)
}

/// The JSON Schema (draft 2020-12) of the plugin configuration, generated from the types the
/// parser reads, so it cannot fall behind the fields the filter accepts. It checks shapes,
/// patterns and bounds; what only [`compile_policy`] can check (duplicates across entries,
/// references between tenants and clients, environment variables) it does not.
#[cfg(feature = "schema")]
pub fn schema() -> serde_json::Value {
    let mut schema = serde_json::Value::from(schemars::schema_for!(raw::RawConfig));
    join_wrapped_lines(&mut schema);
    schema
}

/// The descriptions come from doc comments wrapped for the source file; in the schema each
/// paragraph is one line, as editors show it.
#[cfg(feature = "schema")]
fn join_wrapped_lines(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                match member {
                    Value::String(text) if key == "description" => {
                        let paragraphs: Vec<String> =
                            text.split("\n\n").map(|p| p.replace('\n', " ")).collect();
                        *text = paragraphs.join("\n\n");
                    }
                    other => join_wrapped_lines(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(join_wrapped_lines),
        _ => {}
    }
}

/// An [`raw::Object`] is described by the schema of what it wraps.
#[cfg(feature = "schema")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for raw::Object<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::Guid;
    use crate::path::canonical_path;
    use crate::policy::{
        Caller, JwksSource, PolicyDenial, RequestTarget, TenantIndex, TokenVersion,
    };

    /// The example document of the project's documentation.
    const EXAMPLE: &str = r#"{
      "tenants": [{
        "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "audiences": ["api://jira-gateway", "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b"],
        "jwks": {"cluster": "entra", "authority": "login.microsoftonline.com",
                 "path": "/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys"}
      }],
      "clients": [
        {"name": "reporting-bot", "app_id": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
         "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/issue/*", "/rest/api/2/project/**"]}]},
        {"name": "ci-pipeline", "app_id": "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202",
         "required_roles": ["Jira.Write"],
         "allow": [{"methods": ["POST"], "paths": ["/rest/api/2/issue"]},
                   {"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS", "SEC"]}],
         "deny": [{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]},
        {"name": "legacy-sync", "app_id": "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01", "allow_client_secret": true,
         "upstream_authorization_env": "JIRA_PAT_LEGACY_SYNC", "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/**"]}]}
      ],
      "public_paths": [{"methods": ["GET"], "paths": ["/status"]}],
      "clock_skew_seconds": 60
    }"#;

    fn env(name: &str) -> Option<String> {
        (name == "JIRA_PAT_LEGACY_SYNC").then(|| "Bearer pat-legacy-secret".to_string())
    }

    #[test]
    fn example_document_compiles() {
        let policy = compile_policy(EXAMPLE.as_bytes(), &env).unwrap();
        assert_eq!(policy.tenants().len(), 1);
        assert_eq!(policy.clients().len(), 3);
        assert_eq!(policy.clock_skew_seconds(), 60);
        let tenant = &policy.tenants()[0];
        assert_eq!(
            tenant.tenant_id,
            Guid::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap()
        );
        assert_eq!(
            tenant.audiences,
            ["api://jira-gateway", "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b"]
        );
        assert_eq!(
            tenant.jwks,
            JwksSource {
                cluster: "entra".into(),
                authority: "login.microsoftonline.com".into(),
                path: "/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys".into(),
                discovery_path: None,
                refresh_seconds: 3600,
                min_refetch_seconds: 300,
                max_stale_seconds: 86_400,
                fetch_timeout_ms: 2_000,
            }
        );
        assert_eq!(
            tenant.issuer_v1.as_deref(),
            Some("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/")
        );
        assert_eq!(
            tenant.issuer_v2.as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
    }

    #[test]
    fn example_document_authorizes_as_documented() {
        let policy = compile_policy(EXAMPLE.as_bytes(), &env).unwrap();
        let (tenant, version) = policy
            .tenant_by_issuer(
                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            )
            .unwrap();
        assert_eq!((tenant, version), (TenantIndex(0), TokenVersion::V2));
        let roles = vec!["Jira.Write".to_string()];
        let caller = |app_id, credential| Caller {
            tenant,
            app_id,
            credential_type: Some(credential),
            roles: &roles,
            delegated: false,
        };
        let decide = |app_id, credential, method, raw_path| {
            let path = canonical_path(raw_path).unwrap();
            let target = RequestTarget {
                method,
                path: &path,
            };
            policy
                .authorize(&caller(app_id, credential), &target)
                .map(|grant| grant.matched_rule.to_string())
        };
        let ci = "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202";
        let legacy = "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01";
        assert_eq!(
            decide(ci, "2", "PUT", "/rest/api/2/issue/sec-4"),
            Ok("clients[1].allow[1]".to_string())
        );
        assert_eq!(
            decide(ci, "2", "DELETE", "/rest/api/2/issue/OPS-4"),
            Err(PolicyDenial::DeniedByRule)
        );
        assert_eq!(
            decide(ci, "1", "GET", "/rest/api/2/issue/OPS-4"),
            Err(PolicyDenial::ClientSecretNotAccepted)
        );
        assert_eq!(
            decide(legacy, "1", "GET", "/rest/api/2/issue/OPS-4"),
            Ok("clients[2].allow[0]".to_string())
        );
        let path = canonical_path("/status").unwrap();
        assert!(policy.is_public(&RequestTarget {
            method: "GET",
            path: &path
        }));
    }

    #[test]
    fn error_display_is_path_then_problem() {
        assert_eq!(
            ConfigError::at("tenants[0].tenant_id", "\"abc\" is not a GUID").to_string(),
            "tenants[0].tenant_id: \"abc\" is not a GUID"
        );
    }

    #[test]
    fn error_display_for_the_document_is_the_problem_alone() {
        assert_eq!(
            ConfigError::at("", "configuration is empty").to_string(),
            "configuration is empty"
        );
    }

    #[test]
    fn first_error_is_reported_end_to_end() {
        let json = EXAMPLE.replace("\"GET\", \"PUT\"", "\"GET\", \"put\"");
        assert_eq!(
            compile_policy(json.as_bytes(), &env)
                .unwrap_err()
                .to_string(),
            "clients[1].allow[1].methods[1]: \"put\" must be written in uppercase (\"PUT\"): methods are case-sensitive"
        );
    }
}
