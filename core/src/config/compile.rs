//! Second configuration stage: the raw document becomes a [`Policy`]. Everything the JSON types
//! cannot express is checked here, in document order, and the first problem is reported with
//! the path of the field that has it. Path patterns, method lists and project lists are
//! compiled by [`crate::policy::acl`] and [`crate::policy::projects`]; this stage only attaches
//! the field path to their complaints.

use crate::guid::Guid;
use crate::policy::acl::{Methods, PathPattern, Rule};
use crate::policy::projects::ProjectCondition;
use crate::policy::{Client, JwksSource, Policy, Tenant, TenantIndex};

use super::raw::{RawClient, RawConfig, RawJwks, RawRule, RawTenant};
use super::{
    ConfigError, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_JWKS_AUTHORITY, MAX_CLOCK_SKEW_SECONDS,
};

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
    Ok(Policy {
        tenants,
        clients,
        public,
        clock_skew_seconds,
    })
}

fn compile_tenants(raw: &[RawTenant]) -> Result<Vec<Tenant>, ConfigError> {
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
        tenants.push(Tenant {
            tenant_id,
            audiences: tenant.audiences.clone(),
            jwks: compile_jwks(&at("jwks"), &tenant.jwks, tenant_id)?,
            issuer_v1: format!("https://sts.windows.net/{tenant_id}/"),
            issuer_v2: format!("https://login.microsoftonline.com/{tenant_id}/v2.0"),
        });
    }
    Ok(tenants)
}

fn compile_jwks(at: &str, raw: &RawJwks, tenant_id: Guid) -> Result<JwksSource, ConfigError> {
    if raw.cluster.is_empty() {
        return Err(ConfigError::at(
            format!("{at}.cluster"),
            "must not be empty",
        ));
    }
    let authority = match &raw.authority {
        None => DEFAULT_JWKS_AUTHORITY.to_owned(),
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
    Ok(JwksSource {
        cluster: raw.cluster.clone(),
        authority,
        path,
    })
}

fn compile_clients(
    raw: &[RawClient],
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

fn compile_client_rules(at: &str, raw: &[RawRule]) -> Result<Vec<Rule>, ConfigError> {
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
