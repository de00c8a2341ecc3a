//! Second configuration stage: the raw document becomes a [`Policy`]. Everything the JSON types
//! cannot express is checked here, in document order, and the first problem is reported with
//! the path of the field that has it. Path patterns, method lists and project lists are
//! compiled by [`crate::policy::acl`] and [`crate::policy::projects`]; this stage only attaches
//! the field path to their complaints.

use crate::cloud::Cloud;
use crate::guid::Guid;
use crate::policy::acl::{Methods, PathPattern, Rule};
use crate::policy::projects::ProjectCondition;
use crate::policy::{
    AuditLog, Client, JwksSource, Mode, Policy, SignatureBackend, Tenant, TenantIndex,
};

use super::raw::{Object, RawClient, RawConfig, RawIssuers, RawJwks, RawRule, RawTenant};
use super::{
    ConfigError, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_KEY_WAIT_MS,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_STALE_SECONDS, DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    DEFAULT_MIN_REFETCH_SECONDS, DEFAULT_REFRESH_SECONDS, DEFAULT_TOKEN_CACHE_SIZE,
    MAX_CLOCK_SKEW_SECONDS, MAX_MAX_BODY_BYTES, MAX_MAX_TOKEN_LIFETIME_SECONDS,
    MAX_TOKEN_CACHE_SIZE, MIN_MAX_TOKEN_LIFETIME_SECONDS,
};
use crate::policy::scope::ProjectIds;

/// Looks up a VM environment variable.
type Env<'e> = &'e dyn Fn(&str) -> Option<String>;

/// Compiles the raw document.
pub(super) fn compile(raw: RawConfig, env: Env<'_>) -> Result<Policy, ConfigError> {
    let tenants = compile_tenants(&raw.tenants)?;
    let clients = compile_clients(&raw.clients, &tenants, env)?;
    let public = raw
        .public_paths
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            compile_rule(
                format!("public_paths[{index}]"),
                &rule.methods,
                &rule.paths,
                None,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let clock_skew_seconds = match raw.clock_skew_seconds {
        None => DEFAULT_CLOCK_SKEW_SECONDS,
        Some(seconds) if (0..=MAX_CLOCK_SKEW_SECONDS).contains(&seconds) => seconds,
        Some(seconds) => {
            return Err(ConfigError::at(
                "clock_skew_seconds",
                format!("must be between 0 and {MAX_CLOCK_SKEW_SECONDS}, got {seconds}"),
            ))
        }
    };
    let max_token_lifetime_seconds = bounded(
        "max_token_lifetime_seconds",
        raw.max_token_lifetime_seconds,
        DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
        MIN_MAX_TOKEN_LIFETIME_SECONDS,
        MAX_MAX_TOKEN_LIFETIME_SECONDS,
    )?;
    let mode = match raw.mode.as_deref() {
        None => Mode::Enforce,
        Some(text) => mode("mode", text)?,
    };
    let audit_log = match raw.audit_log.as_deref() {
        None | Some("all") => AuditLog::All,
        Some("denials") => AuditLog::Denials,
        Some("off") => AuditLog::Off,
        Some(other) => {
            return Err(ConfigError::at(
                "audit_log",
                format!("{other:?} is not one of \"all\", \"denials\", \"off\""),
            ))
        }
    };
    let token_cache_size = bounded(
        "token_cache_size",
        raw.token_cache_size,
        DEFAULT_TOKEN_CACHE_SIZE,
        0,
        MAX_TOKEN_CACHE_SIZE,
    )?;
    let key_wait_ms = bounded(
        "key_wait_ms",
        raw.key_wait_ms,
        DEFAULT_KEY_WAIT_MS,
        200,
        30_000,
    )?;
    agree_with_the_key_wait(&tenants, key_wait_ms)?;
    let signature_backend = match raw.signature_backend.as_deref() {
        None | Some("auto") => SignatureBackend::Auto,
        Some("envoy") => SignatureBackend::Envoy,
        Some("wasm") => SignatureBackend::Wasm,
        Some(other) => {
            return Err(ConfigError::at(
                "signature_backend",
                format!("{other:?} is not one of \"auto\", \"envoy\", \"wasm\""),
            ))
        }
    };
    let max_body_bytes = bounded(
        "max_body_bytes",
        raw.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES,
        1024,
        MAX_MAX_BODY_BYTES,
    )?;
    let project_ids = compile_project_ids(raw.project_ids.unwrap_or_default())?;
    Ok(Policy {
        tenants,
        clients,
        public,
        clock_skew_seconds,
        max_token_lifetime_seconds,
        signature_backend,
        mode,
        audit_log,
        token_cache_size: usize::try_from(token_cache_size).unwrap_or(0),
        key_wait_ms: u64::try_from(key_wait_ms).unwrap_or(0),
        project_ids,
        max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(0),
    })
}

/// Every tenant's fetch timeout is shorter than the longest wait of a request, so that a
/// request waiting for a fetch to a hanging key server sees the fetch fail and is decided, rather
/// than always running out of wait first.
fn agree_with_the_key_wait(tenants: &[Tenant], key_wait_ms: i64) -> Result<(), ConfigError> {
    let key_wait_ms = u64::try_from(key_wait_ms).unwrap_or(0);
    for (index, tenant) in tenants.iter().enumerate() {
        let fetch_timeout_ms = tenant.jwks.fetch_timeout_ms;
        if fetch_timeout_ms >= key_wait_ms {
            return Err(ConfigError::at(
                format!("tenants[{index}].jwks.fetch_timeout_ms"),
                format!(
                    "{fetch_timeout_ms} must be shorter than key_wait_ms ({key_wait_ms}), so that a request waiting for a key-set fetch sees it end"
                ),
            ));
        }
    }
    Ok(())
}

/// `project_ids`: numeric ids to well-formed keys.
fn compile_project_ids(
    raw: std::collections::BTreeMap<String, String>,
) -> Result<ProjectIds, ConfigError> {
    for (id, key) in &raw {
        let at = format!("project_ids.{id}");
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('0') {
            return Err(ConfigError::at(
                at,
                format!("{id:?} is not a numeric project id"),
            ));
        }
        ProjectCondition::compile(std::slice::from_ref(key))
            .map_err(|(_, problem)| ConfigError::at(at, problem))?;
    }
    Ok(ProjectIds(raw))
}

/// `enforce` or `audit`, at `at`.
fn mode(at: &str, text: &str) -> Result<Mode, ConfigError> {
    match text {
        "enforce" => Ok(Mode::Enforce),
        "audit" => Ok(Mode::Audit),
        other => Err(ConfigError::at(
            at,
            format!("{other:?} is not one of \"enforce\", \"audit\""),
        )),
    }
}

/// An optional integer field with a default and inclusive bounds.
fn bounded(
    at: impl Into<String>,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v),
        Some(v) => Err(ConfigError::at(
            at,
            format!("must be between {min} and {max}, got {v}"),
        )),
    }
}

fn compile_tenants(raw: &[Object<RawTenant>]) -> Result<Vec<Tenant>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::at("tenants", "must list at least one tenant"));
    }
    let mut tenants: Vec<Tenant> = Vec::with_capacity(raw.len());
    for (index, tenant) in raw.iter().enumerate() {
        let at = |field: &str| format!("tenants[{index}].{field}");
        let tenant_id = guid(&at("tenant_id"), &tenant.tenant_id)?;
        if let Some(first) = tenants.iter().position(|t| t.tenant_id == tenant_id) {
            return Err(ConfigError::at(
                at("tenant_id"),
                format!("{tenant_id} is already configured by tenants[{first}]"),
            ));
        }
        check_strings(&at("audiences"), &tenant.audiences, "audience")?;
        let cloud = match tenant.cloud.as_deref() {
            None => Cloud::Public,
            Some(name) => Cloud::from_name(name).ok_or_else(|| {
                ConfigError::at(
                    at("cloud"),
                    format!(
                        "{name:?} is not one of \"public\", \"usgov\", \"china\", \"external_id\""
                    ),
                )
            })?,
        };
        let (issuer_v1, issuer_v2) = match &tenant.issuers {
            None => (cloud.issuer_v1(tenant_id), Some(cloud.issuer_v2(tenant_id))),
            Some(issuers) => compile_issuers(&at("issuers"), issuers, tenant_id)?,
        };
        for (field, issuer) in [("v1", &issuer_v1), ("v2", &issuer_v2)] {
            let Some(issuer) = issuer else { continue };
            if let Some(first) = tenants.iter().position(|t| t.trusts_issuer(issuer)) {
                return Err(ConfigError::at(
                    at(&format!("issuers.{field}")),
                    format!("{issuer:?} is already an issuer of tenants[{first}]"),
                ));
            }
        }
        tenants.push(Tenant {
            tenant_id,
            audiences: tenant.audiences.clone(),
            jwks: compile_jwks(&at("jwks"), &tenant.jwks, tenant_id, cloud)?,
            cloud,
            issuer_v1,
            issuer_v2,
        });
    }
    Ok(tenants)
}

/// An explicit `issuers` object: each given issuer is an `https://` URL of visible ASCII that
/// names the tenant (in the lowercase form tokens carry), without query or fragment.
fn compile_issuers(
    at: &str,
    raw: &RawIssuers,
    tenant_id: Guid,
) -> Result<(Option<String>, Option<String>), ConfigError> {
    if raw.v1.is_none() && raw.v2.is_none() {
        return Err(ConfigError::at(at, "must name a v1 or a v2 issuer"));
    }
    let tid = tenant_id.to_string();
    let check = |field: &str, issuer: &Option<String>| -> Result<Option<String>, ConfigError> {
        let Some(issuer) = issuer else {
            return Ok(None);
        };
        let at = format!("{at}.{field}");
        let host_and_path = issuer.strip_prefix("https://").unwrap_or_default();
        if host_and_path.is_empty() || host_and_path.starts_with('/') {
            return Err(ConfigError::at(
                at,
                format!("{issuer:?} is not an https:// URL"),
            ));
        }
        if !issuer.bytes().all(|b| b.is_ascii_graphic()) || issuer.contains(['?', '#']) {
            return Err(ConfigError::at(
                at,
                format!("{issuer:?} must be visible ASCII without spaces, query or fragment"),
            ));
        }
        if !issuer.contains(&tid) {
            return Err(ConfigError::at(
                at,
                format!("{issuer:?} does not contain the tenant id {tid} (in lowercase)"),
            ));
        }
        Ok(Some(issuer.clone()))
    };
    Ok((check("v1", &raw.v1)?, check("v2", &raw.v2)?))
}

fn compile_jwks(
    at: &str,
    raw: &RawJwks,
    tenant_id: Guid,
    cloud: Cloud,
) -> Result<JwksSource, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::at(
            format!("{at}.cluster"),
            "must not be empty",
        ));
    }
    let authority = match &raw.authority {
        None => cloud.authority(tenant_id),
        Some(authority) => {
            if authority.is_empty()
                || authority.contains('/')
                || !authority.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ConfigError::at(
                    format!("{at}.authority"),
                    format!("{authority:?} is not a host name with an optional port"),
                ));
            }
            authority.clone()
        }
    };
    let path = match &raw.path {
        None => format!("/{tenant_id}/discovery/v2.0/keys"),
        Some(path) => {
            if !path.starts_with('/') {
                return Err(ConfigError::at(
                    format!("{at}.path"),
                    format!("{path:?} must start with \"/\""),
                ));
            }
            if !path.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::at(
                    format!("{at}.path"),
                    format!("{path:?} must be visible ASCII without spaces"),
                ));
            }
            path.clone()
        }
    };
    let discovery = raw.discovery.unwrap_or(false);
    if discovery && raw.path.is_some() {
        return Err(ConfigError::at(
            format!("{at}.path"),
            "cannot be combined with discovery (the key-set path comes from the discovery document)",
        ));
    }
    let refresh_seconds = bounded(
        format!("{at}.refresh_seconds"),
        raw.refresh_seconds,
        DEFAULT_REFRESH_SECONDS,
        1,
        7 * 86_400,
    )?;
    let min_refetch_seconds = bounded(
        format!("{at}.min_refetch_seconds"),
        raw.min_refetch_seconds,
        DEFAULT_MIN_REFETCH_SECONDS,
        1,
        86_400,
    )?;
    let max_stale_seconds = bounded(
        format!("{at}.max_stale_seconds"),
        raw.max_stale_seconds,
        DEFAULT_MAX_STALE_SECONDS,
        refresh_seconds,
        30 * 86_400,
    )?;
    let fetch_timeout_ms = bounded(
        format!("{at}.fetch_timeout_ms"),
        raw.fetch_timeout_ms,
        DEFAULT_FETCH_TIMEOUT_MS,
        100,
        29_000,
    )?;
    Ok(JwksSource {
        cluster: raw.cluster.clone(),
        authority,
        path,
        discovery_path: discovery
            .then(|| format!("/{tenant_id}/v2.0/.well-known/openid-configuration")),
        refresh_seconds,
        min_refetch_seconds,
        max_stale_seconds,
        fetch_timeout_ms: u64::try_from(fetch_timeout_ms).unwrap_or(0),
    })
}

fn compile_clients(
    raw: &[Object<RawClient>],
    tenants: &[Tenant],
    env: Env<'_>,
) -> Result<Vec<Client>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::at("clients", "must list at least one client"));
    }
    let mut clients: Vec<Client> = Vec::with_capacity(raw.len());
    for (index, client) in raw.iter().enumerate() {
        let compiled = compile_client(index, client, tenants, &clients, env)?;
        clients.push(compiled);
    }
    Ok(clients)
}

/// Compiles `clients[index]`; `earlier` are the clients before it, for uniqueness.
fn compile_client(
    index: usize,
    raw: &RawClient,
    tenants: &[Tenant],
    earlier: &[Client],
    env: Env<'_>,
) -> Result<Client, ConfigError> {
    let at = |field: &str| format!("clients[{index}].{field}");
    if raw.name.is_empty() {
        return Err(ConfigError::at(at("name"), "must not be empty"));
    }
    if !raw.name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::at(
            at("name"),
            format!(
                "{:?} must be visible ASCII without spaces (it is sent to Jira in a header)",
                raw.name
            ),
        ));
    }
    if let Some(first) = earlier.iter().position(|c| c.name == raw.name) {
        return Err(ConfigError::at(
            at("name"),
            format!("{:?} is already used by clients[{first}]", raw.name),
        ));
    }
    let app_id = guid(&at("app_id"), &raw.app_id)?;
    let tenant = client_tenant(&at("tenant_id"), raw.tenant_id.as_deref(), tenants)?;
    if let Some(first) = earlier
        .iter()
        .position(|c| c.app_id == app_id && c.tenant == tenant)
    {
        return Err(ConfigError::at(
            at("app_id"),
            format!("{app_id} is already configured by clients[{first}] in the same tenant"),
        ));
    }
    let required_roles = raw.required_roles.clone().unwrap_or_default();
    check_listed_strings(&at("required_roles"), &required_roles)?;
    let upstream_authorization = match &raw.upstream_authorization_env {
        None => None,
        Some(name) => Some(upstream_authorization(
            &at("upstream_authorization_env"),
            name,
            env,
        )?),
    };
    if raw.allow.is_empty() {
        return Err(ConfigError::at(at("allow"), "must list at least one rule"));
    }
    let allow = compile_client_rules(&at("allow"), &raw.allow)?;
    let deny = compile_client_rules(&at("deny"), raw.deny.as_deref().unwrap_or_default())?;
    Ok(Client {
        name: raw.name.clone(),
        app_id,
        app_id_text: app_id.to_string(),
        tenant,
        required_roles,
        allow_client_secret: raw.allow_client_secret.unwrap_or(false),
        upstream_authorization,
        allow,
        deny,
        mode: match raw.mode.as_deref() {
            None => Mode::Enforce,
            Some(text) => mode(&at("mode"), text)?,
        },
    })
}

/// The client's tenant: the one it names, or the only one configured.
fn client_tenant(
    at: &str,
    tenant_id: Option<&str>,
    tenants: &[Tenant],
) -> Result<TenantIndex, ConfigError> {
    match tenant_id {
        Some(text) => {
            let tenant_id = guid(at, text)?;
            tenants
                .iter()
                .position(|t| t.tenant_id == tenant_id)
                .map(TenantIndex)
                .ok_or_else(|| {
                    ConfigError::at(at, format!("{tenant_id} is not a configured tenant"))
                })
        }
        None if tenants.len() == 1 => Ok(TenantIndex(0)),
        None => Err(ConfigError::at(
            at,
            "is required when more than one tenant is configured",
        )),
    }
}

/// Looks up the variable that holds the client's upstream `Authorization` value. The value is
/// a credential: no message here may contain it.
fn upstream_authorization(at: &str, name: &str, env: Env<'_>) -> Result<String, ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::at(at, "must not be empty"));
    }
    let value = match env(name) {
        None => {
            return Err(ConfigError::at(
                at,
                format!("environment variable {name:?} is not set"),
            ))
        }
        Some(value) if value.is_empty() => {
            return Err(ConfigError::at(
                at,
                format!("environment variable {name:?} is empty"),
            ))
        }
        Some(value) => value,
    };
    // Header values may not contain line breaks or other control characters; a trailing
    // newline from a mounted secret file is the usual culprit.
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
    {
        return Err(ConfigError::at(
            at,
            format!(
                "environment variable {name:?} holds characters not allowed in a header value (such as a line break)"
            ),
        ));
    }
    Ok(value)
}

fn compile_client_rules(at: &str, raw: &[Object<RawRule>]) -> Result<Vec<Rule>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(index, rule)| {
            compile_rule(
                format!("{at}[{index}]"),
                &rule.methods,
                &rule.paths,
                rule.projects.as_deref(),
            )
        })
        .collect()
}

/// Compiles one rule; `id` is its path in the document and becomes its name in grants.
fn compile_rule(
    id: String,
    methods: &[String],
    paths: &[String],
    projects: Option<&[String]>,
) -> Result<Rule, ConfigError> {
    let methods = Methods::compile(methods)
        .map_err(|(index, problem)| ConfigError::at(element(&id, "methods", index), problem))?;
    if paths.is_empty() {
        return Err(ConfigError::at(
            format!("{id}.paths"),
            "must list at least one path pattern",
        ));
    }
    let mut patterns = Vec::with_capacity(paths.len());
    for (index, pattern) in paths.iter().enumerate() {
        let at = element(&id, "paths", Some(index));
        if earlier(paths, index).is_some() {
            return Err(ConfigError::at(
                at,
                format!("{pattern:?} is already listed"),
            ));
        }
        patterns
            .push(PathPattern::compile(pattern).map_err(|problem| ConfigError::at(at, problem))?);
    }
    let projects = match projects {
        None => ProjectCondition::Any,
        Some(keys) => ProjectCondition::compile(keys).map_err(|(index, problem)| {
            ConfigError::at(element(&id, "projects", index), problem)
        })?,
    };
    Ok(Rule {
        id,
        methods,
        paths: patterns,
        projects,
    })
}

/// `{id}.{field}` or `{id}.{field}[{index}]`.
fn element(id: &str, field: &str, index: Option<usize>) -> String {
    match index {
        None => format!("{id}.{field}"),
        Some(index) => format!("{id}.{field}[{index}]"),
    }
}

/// Index of an earlier element equal to `list[index]`.
fn earlier<T: PartialEq>(list: &[T], index: usize) -> Option<usize> {
    let item = list.get(index)?;
    list.get(..index)?.iter().position(|seen| seen == item)
}

/// A required, non-empty list of non-empty, distinct strings.
fn check_strings(at: &str, list: &[String], what: &str) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::at(
            at,
            format!("must list at least one {what}"),
        ));
    }
    check_listed_strings(at, list)
}

/// Every string non-empty and none repeated.
fn check_listed_strings(at: &str, list: &[String]) -> Result<(), ConfigError> {
    for (index, item) in list.iter().enumerate() {
        if item.is_empty() {
            return Err(ConfigError::at(
                format!("{at}[{index}]"),
                "must not be empty",
            ));
        }
        if earlier(list, index).is_some() {
            return Err(ConfigError::at(
                format!("{at}[{index}]"),
                format!("{item:?} is already listed"),
            ));
        }
    }
    Ok(())
}

fn guid(at: &str, text: &str) -> Result<Guid, ConfigError> {
    Guid::parse(text).ok_or_else(|| ConfigError::at(at, format!("{text:?} is not a GUID")))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::config::compile_policy;
    use crate::policy::SignatureBackend;
    use crate::policy::{AuditLog, Mode, Policy, TenantIndex};

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER_TENANT: &str = "0b2c7e1a-4f5d-4c3b-9a8e-7d6c5b4a3f21";
    const APP: &str = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01";
    const OTHER_APP: &str = "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202";

    fn tenant(id: &str) -> Value {
        json!({"tenant_id": id, "audiences": ["api://jira-gateway"], "jwks": {"cluster": "entra"}})
    }

    fn client(name: &str, app_id: &str) -> Value {
        json!({"name": name, "app_id": app_id,
               "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search"]}]})
    }

    fn base() -> Value {
        json!({"tenants": [tenant(TENANT)], "clients": [client("bot", APP)]})
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "JIRA_PAT" => Some("Bearer secret-pat-value".into()),
            "EMPTY" => Some(String::new()),
            "NEWLINE" => Some("Bearer secret-pat-value\n".into()),
            _ => None,
        }
    }

    fn compile(document: &Value) -> Result<Policy, String> {
        compile_policy(document.to_string().as_bytes(), &env).map_err(|e| e.to_string())
    }

    /// The error for `base()` with the value at `pointer` replaced by `value`.
    fn error_with(pointer: &str, value: Value) -> String {
        let mut document = base();
        set(&mut document, pointer, value);
        compile(&document).unwrap_err()
    }

    fn set(document: &mut Value, pointer: &str, value: Value) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match document.pointer_mut(parent).unwrap() {
            Value::Object(map) => {
                map.insert(key.to_string(), value);
            }
            Value::Array(list) => {
                let index: usize = key.parse().unwrap();
                if index == list.len() {
                    list.push(value);
                } else {
                    list[index] = value;
                }
            }
            _ => panic!("{pointer} has no parent container"),
        }
    }

    #[test]
    fn defaults_are_applied() {
        let policy = compile(&base()).unwrap();
        let tenant = &policy.tenants()[0];
        assert_eq!(tenant.jwks.cluster, "entra");
        assert_eq!(tenant.jwks.authority, "login.microsoftonline.com");
        assert_eq!(
            tenant.jwks.path,
            "/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys"
        );
        assert_eq!(policy.clock_skew_seconds(), 60);
        let client = &policy.clients()[0];
        assert_eq!(client.tenant(), TenantIndex(0));
        assert!(!client.allow_client_secret);
        assert!(client.deny.is_empty());
        assert!(client.required_roles.is_empty());
        assert!(!client.has_upstream_authorization());
        assert!(policy.public.is_empty());
    }

    #[test]
    fn a_tenants_cloud_sets_its_key_authority_and_both_issuers() {
        use crate::cloud::Cloud;
        for cloud in Cloud::ALL {
            let mut document = base();
            set(&mut document, "/tenants/0/cloud", json!(cloud.name()));
            let policy = compile(&document).unwrap();
            let tenant = &policy.tenants()[0];
            assert_eq!(tenant.cloud, cloud);
            assert_eq!(tenant.jwks.authority, cloud.authority(tenant.tenant_id));
            assert_eq!(tenant.issuer_v1, cloud.issuer_v1(tenant.tenant_id));
            assert_eq!(tenant.issuer_v2, Some(cloud.issuer_v2(tenant.tenant_id)));
            assert_eq!(
                tenant.jwks.path,
                "/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys"
            );
        }
        let mut document = base();
        set(&mut document, "/tenants/0/cloud", json!("usgov"));
        set(
            &mut document,
            "/tenants/0/jwks/authority",
            json!("127.0.0.1:8090"),
        );
        let policy = compile(&document).unwrap();
        assert_eq!(policy.tenants()[0].jwks.authority, "127.0.0.1:8090");
        assert_eq!(
            policy.tenants()[0].issuer_v2.as_deref(),
            Some("https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
    }

    #[test]
    fn an_unknown_cloud_is_refused_naming_the_choices() {
        assert_eq!(
            error_with("/tenants/0/cloud", json!("gov")),
            r#"tenants[0].cloud: "gov" is not one of "public", "usgov", "china", "external_id""#
        );
    }

    #[test]
    fn explicit_issuers_replace_the_clouds_and_a_left_out_version_is_not_trusted() {
        let mut document = base();
        set(&mut document, "/tenants/0/cloud", json!("china"));
        set(
            &mut document,
            "/tenants/0/issuers",
            json!({"v2": format!("https://login.example.cn/{TENANT}/v2.0")}),
        );
        let policy = compile(&document).unwrap();
        let tenant = &policy.tenants()[0];
        assert_eq!(tenant.issuer_v1, None);
        assert_eq!(
            tenant.issuer_v2,
            Some(format!("https://login.example.cn/{TENANT}/v2.0"))
        );
        assert_eq!(tenant.jwks.authority, "login.partner.microsoftonline.cn");
        assert_eq!(
            policy.tenant_by_issuer(&format!("https://sts.chinacloudapi.cn/{TENANT}/")),
            None
        );
    }

    #[test]
    fn explicit_issuers_must_be_https_urls_naming_the_tenant() {
        for (value, message) in [
            (json!({}), "tenants[0].issuers: must name a v1 or a v2 issuer".to_owned()),
            (
                json!({"v1": null, "v2": null}),
                "tenants[0].issuers: must name a v1 or a v2 issuer".to_owned(),
            ),
            (
                json!({"v2": format!("http://login.example/{TENANT}/v2.0")}),
                format!("tenants[0].issuers.v2: \"http://login.example/{TENANT}/v2.0\" is not an https:// URL"),
            ),
            (
                json!({"v1": "https:///x"}),
                "tenants[0].issuers.v1: \"https:///x\" is not an https:// URL".to_owned(),
            ),
            (
                json!({"v2": "https://login.example/other/v2.0"}),
                format!("tenants[0].issuers.v2: \"https://login.example/other/v2.0\" does not contain the tenant id {TENANT} (in lowercase)"),
            ),
            (
                json!({"v2": format!("https://login.example/{}/v2.0", TENANT.to_uppercase())}),
                format!("tenants[0].issuers.v2: \"https://login.example/{}/v2.0\" does not contain the tenant id {TENANT} (in lowercase)", TENANT.to_uppercase()),
            ),
            (
                json!({"v2": format!("https://login.example/{TENANT}/v2.0?x=1")}),
                format!("tenants[0].issuers.v2: \"https://login.example/{TENANT}/v2.0?x=1\" must be visible ASCII without spaces, query or fragment"),
            ),
            (
                json!({"v2": format!("https://login example/{TENANT}")}),
                format!("tenants[0].issuers.v2: \"https://login example/{TENANT}\" must be visible ASCII without spaces, query or fragment"),
            ),
            (
                json!({"v3": "https://x"}),
                "tenants[0].issuers.v3: unknown field `v3`, expected `v1` or `v2`".to_owned(),
            ),
        ] {
            assert_eq!(error_with("/tenants/0/issuers", value.clone()), message, "{value}");
        }
    }

    #[test]
    fn an_issuer_trusted_for_two_tenants_is_refused() {
        let mut document = crate::test_support::policy_json();
        let shared = format!(
            "https://login.example/{TENANT}/{}/v2.0",
            crate::test_support::OTHER_TENANT
        );
        document["tenants"][0]["issuers"] = json!({"v2": shared});
        document["tenants"][1]["issuers"] = json!({"v2": shared});
        assert_eq!(
            compile(&document).unwrap_err(),
            format!("tenants[1].issuers.v2: {shared:?} is already an issuer of tenants[0]")
        );
    }

    #[test]
    fn uppercase_tenant_id_is_normalised_in_issuers_and_key_path() {
        let mut document = base();
        set(
            &mut document,
            "/tenants/0/tenant_id",
            json!(TENANT.to_uppercase()),
        );
        let policy = compile(&document).unwrap();
        let tenant = &policy.tenants()[0];
        assert_eq!(
            tenant.issuer_v1.as_deref(),
            Some("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/")
        );
        assert_eq!(
            tenant.issuer_v2.as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0")
        );
        assert_eq!(
            tenant.jwks.path,
            "/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys"
        );
    }

    #[test]
    fn configured_jwks_authority_and_path_are_kept() {
        let mut document = base();
        set(
            &mut document,
            "/tenants/0/jwks",
            json!({"cluster": "emulator", "authority": "entra.local:8443", "path": "/keys.json"}),
        );
        let policy = compile(&document).unwrap();
        let jwks = &policy.tenants()[0].jwks;
        assert_eq!(
            (
                jwks.cluster.as_str(),
                jwks.authority.as_str(),
                jwks.path.as_str()
            ),
            ("emulator", "entra.local:8443", "/keys.json")
        );
    }

    #[test]
    fn app_id_is_stored_lowercase() {
        let policy = compile(&base()).unwrap();
        assert_eq!(policy.clients()[0].app_id_text, APP);
        let mut document = base();
        set(
            &mut document,
            "/clients/0/app_id",
            json!(APP.to_uppercase()),
        );
        assert_eq!(compile(&document).unwrap().clients()[0].app_id_text, APP);
    }

    #[test]
    fn rule_ids_name_their_place_in_the_document() {
        let mut document = base();
        set(
            &mut document,
            "/clients/0/deny",
            json!([{"methods": ["DELETE"], "paths": ["/**"]}]),
        );
        set(
            &mut document,
            "/public_paths",
            json!([{"methods": ["GET"], "paths": ["/status"]}]),
        );
        let policy = compile(&document).unwrap();
        assert_eq!(policy.clients()[0].allow[0].id, "clients[0].allow[0]");
        assert_eq!(policy.clients()[0].deny[0].id, "clients[0].deny[0]");
        assert_eq!(policy.public[0].id, "public_paths[0]");
    }

    #[test]
    fn clock_skew_bounds_are_accepted() {
        for seconds in [0, 600] {
            let mut document = base();
            set(&mut document, "/clock_skew_seconds", json!(seconds));
            assert_eq!(compile(&document).unwrap().clock_skew_seconds(), seconds);
        }
    }

    #[test]
    fn max_token_lifetime_defaults_to_a_day_and_is_bounded() {
        assert_eq!(
            compile(&base()).unwrap().max_token_lifetime_seconds(),
            86_400
        );
        for seconds in [300, 604_800] {
            let mut document = base();
            set(&mut document, "/max_token_lifetime_seconds", json!(seconds));
            assert_eq!(
                compile(&document).unwrap().max_token_lifetime_seconds(),
                seconds
            );
        }
        assert_eq!(
            error_with("/max_token_lifetime_seconds", json!(299)),
            "max_token_lifetime_seconds: must be between 300 and 604800, got 299"
        );
        assert_eq!(
            error_with("/max_token_lifetime_seconds", json!(604_801)),
            "max_token_lifetime_seconds: must be between 300 and 604800, got 604801"
        );
    }

    #[test]
    fn clock_skew_out_of_range_is_refused() {
        assert_eq!(
            error_with("/clock_skew_seconds", json!(-1)),
            "clock_skew_seconds: must be between 0 and 600, got -1"
        );
        assert_eq!(
            error_with("/clock_skew_seconds", json!(601)),
            "clock_skew_seconds: must be between 0 and 600, got 601"
        );
    }

    #[test]
    fn tenant_errors_name_the_field() {
        let cases = [
            ("/tenants", json!([]), "tenants: must list at least one tenant"),
            (
                "/tenants/0/tenant_id",
                json!("abc"),
                "tenants[0].tenant_id: \"abc\" is not a GUID",
            ),
            (
                "/tenants/0/tenant_id",
                json!(format!("{{{TENANT}}}")),
                "tenants[0].tenant_id: \"{72f988bf-86f1-41af-91ab-2d7cd011db47}\" is not a GUID",
            ),
            (
                "/tenants/0/audiences",
                json!([]),
                "tenants[0].audiences: must list at least one audience",
            ),
            (
                "/tenants/0/audiences",
                json!(["api://jira", ""]),
                "tenants[0].audiences[1]: must not be empty",
            ),
            (
                "/tenants/0/audiences",
                json!(["api://jira", "x", "api://jira"]),
                "tenants[0].audiences[2]: \"api://jira\" is already listed",
            ),
            (
                "/tenants/0/jwks/cluster",
                json!(""),
                "tenants[0].jwks.cluster: must not be empty",
            ),
            (
                "/tenants/0/jwks/authority",
                json!(""),
                "tenants[0].jwks.authority: \"\" is not a host name with an optional port",
            ),
            (
                "/tenants/0/jwks/authority",
                json!("https://login.microsoftonline.com"),
                "tenants[0].jwks.authority: \"https://login.microsoftonline.com\" is not a host name with an optional port",
            ),
            (
                "/tenants/0/jwks/authority",
                json!("login microsoftonline"),
                "tenants[0].jwks.authority: \"login microsoftonline\" is not a host name with an optional port",
            ),
            (
                "/tenants/0/jwks/path",
                json!("keys"),
                "tenants[0].jwks.path: \"keys\" must start with \"/\"",
            ),
            (
                "/tenants/0/jwks/path",
                json!("/my keys"),
                "tenants[0].jwks.path: \"/my keys\" must be visible ASCII without spaces",
            ),
        ];
        for (pointer, value, expected) in cases {
            assert_eq!(error_with(pointer, value), expected);
        }
    }

    #[test]
    fn duplicate_tenant_is_refused_whatever_its_case() {
        assert_eq!(
            error_with("/tenants/1", tenant(&TENANT.to_uppercase())),
            "tenants[1].tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47 is already configured by tenants[0]"
        );
    }

    #[test]
    fn client_errors_name_the_field() {
        let cases = [
            ("/clients", json!([]), "clients: must list at least one client"),
            ("/clients/0/name", json!(""), "clients[0].name: must not be empty"),
            (
                "/clients/0/name",
                json!("reporting bot"),
                "clients[0].name: \"reporting bot\" must be visible ASCII without spaces (it is sent to Jira in a header)",
            ),
            (
                "/clients/0/name",
                json!("bot\r\nx"),
                "clients[0].name: \"bot\\r\\nx\" must be visible ASCII without spaces (it is sent to Jira in a header)",
            ),
            (
                "/clients/0/name",
                json!("böt"),
                "clients[0].name: \"böt\" must be visible ASCII without spaces (it is sent to Jira in a header)",
            ),
            (
                "/clients/0/app_id",
                json!("3c5a0b5e6b634b1b9a390f0d2f0c1a01"),
                "clients[0].app_id: \"3c5a0b5e6b634b1b9a390f0d2f0c1a01\" is not a GUID",
            ),
            (
                "/clients/0/tenant_id",
                json!("nope"),
                "clients[0].tenant_id: \"nope\" is not a GUID",
            ),
            (
                "/clients/0/tenant_id",
                json!(OTHER_TENANT),
                "clients[0].tenant_id: 0b2c7e1a-4f5d-4c3b-9a8e-7d6c5b4a3f21 is not a configured tenant",
            ),
            (
                "/clients/0/required_roles",
                json!(["Jira.Read", ""]),
                "clients[0].required_roles[1]: must not be empty",
            ),
            (
                "/clients/0/required_roles",
                json!(["Jira.Read", "Jira.Read"]),
                "clients[0].required_roles[1]: \"Jira.Read\" is already listed",
            ),
            ("/clients/0/allow", json!([]), "clients[0].allow: must list at least one rule"),
            (
                "/clients/1",
                client("bot", OTHER_APP),
                "clients[1].name: \"bot\" is already used by clients[0]",
            ),
            (
                "/clients/1",
                client("other", &APP.to_uppercase()),
                "clients[1].app_id: 3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01 is already configured by clients[0] in the same tenant",
            ),
        ];
        for (pointer, value, expected) in cases {
            assert_eq!(error_with(pointer, value), expected);
        }
    }

    #[test]
    fn client_tenant_is_required_with_several_tenants() {
        let mut document = base();
        set(&mut document, "/tenants/1", tenant(OTHER_TENANT));
        assert_eq!(
            compile(&document).unwrap_err(),
            "clients[0].tenant_id: is required when more than one tenant is configured"
        );
        set(&mut document, "/clients/0/tenant_id", json!(OTHER_TENANT));
        assert_eq!(
            compile(&document).unwrap().clients()[0].tenant(),
            TenantIndex(1)
        );
    }

    #[test]
    fn single_tenant_may_be_named_explicitly() {
        let mut document = base();
        set(
            &mut document,
            "/clients/0/tenant_id",
            json!(TENANT.to_uppercase()),
        );
        assert_eq!(
            compile(&document).unwrap().clients()[0].tenant(),
            TenantIndex(0)
        );
    }

    #[test]
    fn same_app_id_in_different_tenants_is_two_clients() {
        let mut document = base();
        set(&mut document, "/tenants/1", tenant(OTHER_TENANT));
        set(&mut document, "/clients/0/tenant_id", json!(TENANT));
        let mut other = client("bot-other-tenant", APP);
        set(&mut other, "/tenant_id", json!(OTHER_TENANT));
        set(&mut document, "/clients/1", other);
        let policy = compile(&document).unwrap();
        assert_eq!(policy.clients()[1].tenant(), TenantIndex(1));
    }

    #[test]
    fn upstream_authorization_is_read_from_the_environment() {
        let mut document = base();
        set(
            &mut document,
            "/clients/0/upstream_authorization_env",
            json!("JIRA_PAT"),
        );
        let policy = compile(&document).unwrap();
        assert_eq!(
            policy.clients()[0].upstream_authorization.as_deref(),
            Some("Bearer secret-pat-value")
        );
    }

    #[test]
    fn missing_environment_variable_is_refused() {
        assert_eq!(
            error_with(
                "/clients/0/upstream_authorization_env",
                json!("JIRA_PAT_LEGACY_SYNC")
            ),
            "clients[0].upstream_authorization_env: environment variable \"JIRA_PAT_LEGACY_SYNC\" is not set"
        );
    }

    #[test]
    fn empty_environment_variable_is_refused() {
        assert_eq!(
            error_with("/clients/0/upstream_authorization_env", json!("EMPTY")),
            "clients[0].upstream_authorization_env: environment variable \"EMPTY\" is empty"
        );
        assert_eq!(
            error_with("/clients/0/upstream_authorization_env", json!("")),
            "clients[0].upstream_authorization_env: must not be empty"
        );
    }

    #[test]
    fn environment_value_with_a_line_break_is_refused_without_echoing_it() {
        let error = error_with("/clients/0/upstream_authorization_env", json!("NEWLINE"));
        assert_eq!(
            error,
            "clients[0].upstream_authorization_env: environment variable \"NEWLINE\" holds characters not allowed in a header value (such as a line break)"
        );
        assert!(!error.contains("secret-pat-value"));
    }

    #[test]
    fn debug_output_redacts_the_upstream_authorization() {
        let mut document = base();
        set(
            &mut document,
            "/clients/0/upstream_authorization_env",
            json!("JIRA_PAT"),
        );
        let policy = compile(&document).unwrap();
        let debug = format!("{policy:?}");
        assert!(!debug.contains("secret-pat-value"), "{debug}");
        assert!(
            debug.contains("upstream_authorization: Some(<redacted>)"),
            "{debug}"
        );
        let pretty = format!("{:#?}", policy.clients()[0]);
        assert!(!pretty.contains("secret-pat-value"), "{pretty}");
    }

    #[test]
    fn rule_errors_name_the_field() {
        let rule = "/clients/0/allow/0";
        let cases = [
            (
                "/methods",
                json!([]),
                "clients[0].allow[0].methods: must list at least one method",
            ),
            (
                "/methods",
                json!(["GET", "get"]),
                "clients[0].allow[0].methods[1]: \"get\" must be written in uppercase (\"GET\"): methods are case-sensitive",
            ),
            (
                "/methods",
                json!(["*", "GET"]),
                "clients[0].allow[0].methods: \"*\" (any method) must be the only method",
            ),
            (
                "/methods",
                json!(["GET", "GET"]),
                "clients[0].allow[0].methods[1]: \"GET\" is already listed",
            ),
            (
                "/methods",
                json!(["GET /x"]),
                "clients[0].allow[0].methods[0]: \"GET /x\" is not an HTTP method",
            ),
            (
                "/paths",
                json!([]),
                "clients[0].allow[0].paths: must list at least one path pattern",
            ),
            (
                "/paths",
                json!(["/rest/api/2/search", "/rest/api/2/issue/*", "/**/project"]),
                "clients[0].allow[0].paths[2]: \"**\" is only allowed as the last segment",
            ),
            (
                "/paths",
                json!(["/rest/api/2/iss*"]),
                "clients[0].allow[0].paths[0]: segment \"iss*\" mixes \"*\" with other characters; \"*\" and \"**\" must be whole segments",
            ),
            (
                "/paths",
                json!(["rest/api"]),
                "clients[0].allow[0].paths[0]: \"rest/api\" must start with \"/\"",
            ),
            (
                "/paths",
                json!(["/rest/api/2/search?jql=x"]),
                "clients[0].allow[0].paths[0]: segment \"search?jql=x\" contains '?' (the query string is not matched); literal segments may only contain letters, digits and \"-._~\"",
            ),
            (
                "/paths",
                json!(["/a", "/b", "/a"]),
                "clients[0].allow[0].paths[2]: \"/a\" is already listed",
            ),
            (
                "/projects",
                json!([]),
                "clients[0].allow[0].projects: must list at least one project key (leave the field out to allow every project)",
            ),
            (
                "/projects",
                json!(["OPS", "sec"]),
                "clients[0].allow[0].projects[1]: \"sec\" is not a Jira project key (an uppercase letter followed by uppercase letters, digits or \"_\")",
            ),
        ];
        for (field, value, expected) in cases {
            assert_eq!(error_with(&format!("{rule}{field}"), value), expected);
        }
    }

    #[test]
    fn deny_and_public_rule_errors_name_the_field() {
        assert_eq!(
            error_with(
                "/clients/0/deny",
                json!([{"methods": ["DELETE"], "paths": ["/ok"]}, {"methods": ["DELETE"], "paths": ["/a//b"]}])
            ),
            "clients[0].deny[1].paths[0]: \"/a//b\" has an empty segment"
        );
        assert_eq!(
            error_with(
                "/public_paths",
                json!([{"methods": ["get"], "paths": ["/status"]}])
            ),
            "public_paths[0].methods[0]: \"get\" must be written in uppercase (\"GET\"): methods are case-sensitive"
        );
    }

    #[test]
    fn empty_deny_and_public_lists_are_accepted() {
        let mut document = base();
        set(&mut document, "/clients/0/deny", json!([]));
        set(&mut document, "/clients/0/required_roles", json!([]));
        set(&mut document, "/public_paths", json!([]));
        assert!(compile(&document).is_ok());
    }

    #[test]
    fn first_problem_in_document_order_is_reported() {
        let mut document = base();
        set(&mut document, "/tenants/0/tenant_id", json!("bad"));
        set(&mut document, "/clients/0/app_id", json!("bad"));
        set(&mut document, "/clock_skew_seconds", json!(-5));
        assert_eq!(
            compile(&document).unwrap_err(),
            "tenants[0].tenant_id: \"bad\" is not a GUID"
        );
    }

    #[test]
    fn operational_defaults_are_documented_values() {
        let policy = compile(&base()).unwrap();
        assert_eq!(policy.mode(), Mode::Enforce);
        assert_eq!(policy.audit_log(), AuditLog::All);
        assert_eq!(policy.token_cache_size(), 10_000);
        assert_eq!(policy.key_wait_ms(), 3_000);
        assert_eq!(policy.signature_backend(), SignatureBackend::Auto);
        assert_eq!(policy.clients()[0].mode(), Mode::Enforce);
    }

    #[test]
    fn default_fetch_timeout_is_shorter_than_the_default_key_wait() {
        let policy = compile(&base()).unwrap();
        let fetch_timeout_ms = policy.tenants()[0].jwks.fetch_timeout_ms;
        assert!(
            fetch_timeout_ms < policy.key_wait_ms(),
            "{fetch_timeout_ms}"
        );
    }

    #[test]
    fn fetch_timeout_not_shorter_than_the_key_wait_is_refused_naming_both_fields() {
        for (fetch_timeout, key_wait) in [(5_000, 3_000), (3_000, 3_000)] {
            let mut document = base();
            set(
                &mut document,
                "/tenants/0/jwks/fetch_timeout_ms",
                json!(fetch_timeout),
            );
            set(&mut document, "/key_wait_ms", json!(key_wait));
            let error = compile(&document).unwrap_err();
            assert_eq!(
                error,
                format!(
                    "tenants[0].jwks.fetch_timeout_ms: {fetch_timeout} must be shorter than key_wait_ms ({key_wait}), so that a request waiting for a key-set fetch sees it end"
                )
            );
            assert!(!error.contains('\n'));
        }
        // A longer wait makes the same timeout acceptable.
        let mut document = base();
        set(
            &mut document,
            "/tenants/0/jwks/fetch_timeout_ms",
            json!(5_000),
        );
        set(&mut document, "/key_wait_ms", json!(5_001));
        assert!(compile(&document).is_ok());
    }

    #[test]
    fn audit_mode_and_log_levels_are_read() {
        let mut document = base();
        set(&mut document, "/mode", json!("audit"));
        set(&mut document, "/audit_log", json!("denials"));
        set(&mut document, "/clients/0/mode", json!("audit"));
        let policy = compile(&document).unwrap();
        assert_eq!(policy.mode(), Mode::Audit);
        assert_eq!(policy.audit_log(), AuditLog::Denials);
        assert_eq!(policy.clients()[0].mode(), Mode::Audit);
    }

    #[test]
    fn unknown_mode_or_audit_level_is_refused_with_its_path() {
        assert_eq!(
            error_with("/mode", json!("permissive")),
            "mode: \"permissive\" is not one of \"enforce\", \"audit\""
        );
        assert_eq!(
            error_with("/clients/0/mode", json!("dry")),
            "clients[0].mode: \"dry\" is not one of \"enforce\", \"audit\""
        );
        assert_eq!(
            error_with("/audit_log", json!("some")),
            "audit_log: \"some\" is not one of \"all\", \"denials\", \"off\""
        );
    }

    #[test]
    fn signature_backend_is_read_and_checked() {
        let mut document = base();
        set(&mut document, "/signature_backend", json!("wasm"));
        assert_eq!(
            compile(&document).unwrap().signature_backend(),
            SignatureBackend::Wasm
        );
        assert_eq!(
            error_with("/signature_backend", json!("openssl")),
            "signature_backend: \"openssl\" is not one of \"auto\", \"envoy\", \"wasm\""
        );
    }

    #[test]
    fn key_set_timing_is_bounded() {
        assert_eq!(
            error_with("/tenants/0/jwks/refresh_seconds", json!(0)),
            "tenants[0].jwks.refresh_seconds: must be between 1 and 604800, got 0"
        );
        assert_eq!(
            error_with("/tenants/0/jwks/max_stale_seconds", json!(100)),
            "tenants[0].jwks.max_stale_seconds: must be between 3600 and 2592000, got 100"
        );
        assert_eq!(
            error_with("/token_cache_size", json!(-1)),
            "token_cache_size: must be between 0 and 1000000, got -1"
        );
    }

    #[test]
    fn project_ids_map_numeric_ids_to_well_formed_keys() {
        let mut document = base();
        set(&mut document, "/project_ids", json!({"10000": "OPS"}));
        let policy = compile_policy(document.to_string().as_bytes(), &|_| None).unwrap();
        assert_eq!(policy.project_ids().key_of("10000"), Some("OPS"));
        assert_eq!(policy.project_ids().key_of("10001"), None);
        assert_eq!(
            error_with("/project_ids", json!({"OPS": "OPS"})),
            "project_ids.OPS: \"OPS\" is not a numeric project id"
        );
        assert_eq!(
            error_with("/project_ids", json!({"010000": "OPS"})),
            "project_ids.010000: \"010000\" is not a numeric project id"
        );
        assert_eq!(
            error_with("/project_ids", json!({"10000": "ops"})),
            "project_ids.10000: \"ops\" is not a Jira project key (an uppercase letter followed by uppercase letters, digits or \"_\")"
        );
    }

    #[test]
    fn max_body_bytes_defaults_to_one_mebibyte_and_is_bounded() {
        let policy = compile_policy(base().to_string().as_bytes(), &|_| None).unwrap();
        assert_eq!(policy.max_body_bytes(), 1_048_576);
        assert_eq!(
            error_with("/max_body_bytes", json!(100)),
            "max_body_bytes: must be between 1024 and 67108864, got 100"
        );
    }

    #[test]
    fn discovery_replaces_the_key_set_path() {
        let mut document = base();
        set(&mut document, "/tenants/0/jwks/discovery", json!(true));
        let policy = compile(&document).unwrap();
        let jwks = &policy.tenants()[0].jwks;
        assert_eq!(
            jwks.discovery_path.as_deref(),
            Some("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration")
        );
        set(&mut document, "/tenants/0/jwks/path", json!("/x"));
        assert_eq!(
            compile(&document).unwrap_err(),
            "tenants[0].jwks.path: cannot be combined with discovery (the key-set path comes from the discovery document)"
        );
    }
}
