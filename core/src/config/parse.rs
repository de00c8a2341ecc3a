//! First configuration stage: JSON bytes to the raw document shape. Type-level problems (not an
//! object, wrong types, missing or unknown fields, duplicate keys, syntax errors) become a
//! [`ConfigError`] whose path is where the deserializer was, in the same `tenants[0].jwks.cluster`
//! notation the compile stage uses.

use serde_json::error::Category;
use serde_path_to_error::Segment;

use super::raw::{Object, RawConfig};
use super::ConfigError;

/// Parses the document into its raw shape.
pub(super) fn parse(json: &[u8]) -> Result<RawConfig, ConfigError> {
    // Checked up front so these common mistakes get a plain sentence instead of a serde message.
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ConfigError::at("", "configuration is empty")),
        Some(b'{') => {}
        Some(_) => return Err(ConfigError::at("", "configuration must be a JSON object")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let raw: Object<RawConfig> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| ConfigError::at(field_path(error.path()), describe(error.inner())))?;
    deserializer
        .end()
        .map_err(|error| ConfigError::at("", describe(&error)))?;
    Ok(raw.0)
}

/// `tenants[0].jwks.cluster` from serde's path; the document itself is `""`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut text = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => text.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Unknown => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push('?');
            }
        }
    }
    text
}

/// The serde message. For type errors the field path already says where, so the line and
/// column are dropped; for syntax errors they are what locates the problem, so they stay.
fn describe(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if error.classify() != Category::Data {
        return message;
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL_TENANT: &str = r#"{"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "audiences": ["api://jira"], "jwks": {"cluster": "entra"}}"#;
    const MINIMAL_CLIENT: &str = r#"{"name": "bot", "app_id": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01", "allow": [{"methods": ["GET"], "paths": ["/**"]}]}"#;

    fn document(tenant: &str, client: &str, rest: &str) -> String {
        format!(r#"{{"tenants": [{tenant}], "clients": [{client}]{rest}}}"#)
    }

    fn error(json: &str) -> String {
        parse(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn minimal_document_parses_with_optional_fields_absent() {
        let raw = parse(document(MINIMAL_TENANT, MINIMAL_CLIENT, "").as_bytes()).unwrap();
        assert!(raw.public_paths.is_none());
        assert!(raw.clock_skew_seconds.is_none());
        let client = &raw.clients[0];
        assert!(client.deny.is_none());
        assert!(client.tenant_id.is_none());
        assert!(client.allow_client_secret.is_none());
        assert!(raw.tenants[0].jwks.authority.is_none());
    }

    #[test]
    fn null_optional_fields_mean_absent() {
        let client = r#"{"name": "bot", "app_id": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01", "tenant_id": null, "deny": null, "required_roles": null, "allow_client_secret": null, "upstream_authorization_env": null, "allow": [{"methods": ["GET"], "paths": ["/**"], "projects": null}]}"#;
        let raw = parse(
            document(
                MINIMAL_TENANT,
                client,
                r#", "public_paths": null, "clock_skew_seconds": null"#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(raw.clients[0].deny.is_none());
        assert!(raw.clients[0].allow[0].projects.is_none());
        assert!(raw.public_paths.is_none());
    }

    #[test]
    fn empty_document_is_refused() {
        assert_eq!(error(""), "configuration is empty");
        assert_eq!(error(" \n\t"), "configuration is empty");
    }

    #[test]
    fn document_that_is_not_an_object_is_refused() {
        for json in ["[]", "null", "42", "\"x\"", "  [{}]", "tenants"] {
            assert_eq!(error(json), "configuration must be a JSON object", "{json}");
        }
    }

    #[test]
    fn unknown_top_level_field_is_rejected_with_its_name() {
        assert_eq!(
            error(&document(MINIMAL_TENANT, MINIMAL_CLIENT, r#", "clock_skew": 5"#)),
            "clock_skew: unknown field `clock_skew`, expected one of `tenants`, `clients`, `public_paths`, `clock_skew_seconds`, `max_token_lifetime_seconds`, `mode`, `audit_log`, `token_cache_size`, `key_wait_ms`, `signature_backend`, `project_ids`, `max_body_bytes`"
        );
    }

    #[test]
    fn unknown_field_is_rejected_with_its_path() {
        let tenant = r#"{"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "audiences": ["a"], "jwks": {"cluster": "entra", "refresh": 5}}"#;
        assert_eq!(
            error(&document(tenant, MINIMAL_CLIENT, "")),
            "tenants[0].jwks.refresh: unknown field `refresh`, expected one of `cluster`, `authority`, `path`, `discovery`, `refresh_seconds`, `min_refetch_seconds`, `max_stale_seconds`, `fetch_timeout_ms`"
        );
    }

    #[test]
    fn projects_in_a_public_rule_is_an_unknown_field() {
        assert_eq!(
            error(&document(
                MINIMAL_TENANT,
                MINIMAL_CLIENT,
                r#", "public_paths": [{"methods": ["GET"], "paths": ["/status"], "projects": ["OPS"]}]"#
            )),
            "public_paths[0].projects: unknown field `projects`, expected `methods` or `paths`"
        );
    }

    #[test]
    fn missing_field_is_reported_on_its_object() {
        let client = r#"{"name": "bot", "allow": []}"#;
        assert_eq!(
            error(&document(MINIMAL_TENANT, MINIMAL_CLIENT, "").replace(MINIMAL_CLIENT, client)),
            "clients[0]: missing field `app_id`"
        );
        assert_eq!(error("{}"), "missing field `tenants`");
    }

    #[test]
    fn wrong_type_is_reported_with_its_path() {
        let client = MINIMAL_CLIENT.replace(r#""paths": ["/**"]"#, r#""paths": "/**""#);
        assert_eq!(
            error(&document(MINIMAL_TENANT, &client, "")),
            "clients[0].allow[0].paths: invalid type: string \"/**\", expected a sequence"
        );
        let client = MINIMAL_CLIENT.replace(r#""GET""#, "7");
        assert_eq!(
            error(&document(MINIMAL_TENANT, &client, "")),
            "clients[0].allow[0].methods[0]: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn wrong_type_of_a_nested_object_names_what_was_expected() {
        assert_eq!(
            error(&document("\"t\"", MINIMAL_CLIENT, "")),
            "tenants[0]: invalid type: string \"t\", expected a tenant object"
        );
        assert_eq!(
            error(&document(MINIMAL_TENANT, "[]", "")),
            "clients[0]: invalid type: sequence, expected a client object"
        );
    }

    #[test]
    fn positional_array_is_not_accepted_for_an_object() {
        let tenant = r#"["72f988bf-86f1-41af-91ab-2d7cd011db47", ["a"], {"cluster": "entra"}]"#;
        assert_eq!(
            error(&document(tenant, MINIMAL_CLIENT, "")),
            "tenants[0]: invalid type: sequence, expected a tenant object"
        );
        let tenant = MINIMAL_TENANT.replace(r#"{"cluster": "entra"}"#, r#"["entra"]"#);
        assert_eq!(
            error(&document(&tenant, MINIMAL_CLIENT, "")),
            "tenants[0].jwks: invalid type: sequence, expected a jwks object"
        );
    }

    #[test]
    fn boolean_field_refuses_a_string() {
        let client = MINIMAL_CLIENT.replace(r#""name""#, r#""allow_client_secret": "yes", "name""#);
        assert_eq!(
            error(&document(MINIMAL_TENANT, &client, "")),
            "clients[0].allow_client_secret: invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn fractional_clock_skew_is_refused() {
        assert_eq!(
            error(&document(
                MINIMAL_TENANT,
                MINIMAL_CLIENT,
                r#", "clock_skew_seconds": 1.5"#
            )),
            "clock_skew_seconds: invalid type: floating point `1.5`, expected i64"
        );
    }

    #[test]
    fn duplicate_key_is_refused() {
        assert_eq!(
            error(&document(
                MINIMAL_TENANT,
                MINIMAL_CLIENT,
                r#", "clock_skew_seconds": 1, "clock_skew_seconds": 2"#
            )),
            "duplicate field `clock_skew_seconds`"
        );
    }

    #[test]
    fn syntax_error_keeps_its_position() {
        assert_eq!(
            error("{\"tenants\": [,]}"),
            "tenants[0]: expected value at line 1 column 14"
        );
        assert_eq!(
            error("{\"tenants\": ["),
            "tenants: EOF while parsing a list at line 1 column 13"
        );
    }

    #[test]
    fn trailing_characters_are_refused() {
        assert_eq!(
            error(&format!(
                "{} x",
                document(MINIMAL_TENANT, MINIMAL_CLIENT, "")
            )),
            format!(
                "trailing characters at line 1 column {}",
                document(MINIMAL_TENANT, MINIMAL_CLIENT, "").len() + 2
            )
        );
    }
}
