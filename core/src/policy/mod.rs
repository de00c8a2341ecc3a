//! The compiled, validated policy the request path uses: trusted tenants and their key-set
//! sources, known clients, and each client's ACL. Built once by [`crate::config`] at configure
//! time; read-only afterwards.
//!
//! On the request path the filter asks, in order: which tenant issued the token
//! ([`Policy::tenant_by_issuer`]), whether the request needs a token at all
//! ([`Policy::is_public`]), and, once the token is verified, whether the caller may make the call
//! ([`Policy::authorize`]). None of these allocate: patterns were compiled into segment matchers
//! ([`acl`]) and the project a path is about is read in place ([`projects`]).
//!
//! [`Policy::authorize`] checks, and refuses with the first failing step:
//!
//! 1. the caller's app id is a configured client of the token's tenant
//!    ([`PolicyDenial::UnknownClient`]);
//! 2. the token is an application token, not a user's ([`PolicyDenial::DelegatedToken`]);
//! 3. the client authenticated to Entra ID with a certificate (`2`), or with a secret (`1`) when
//!    the client has `allow_client_secret` ([`PolicyDenial::ClientSecretNotAccepted`],
//!    [`PolicyDenial::CertificateRequired`] for public clients and anything unknown);
//! 4. the token carries every `required_roles` entry ([`PolicyDenial::MissingRole`]);
//! 5. no `deny` rule matches ([`PolicyDenial::DeniedByRule`]); deny rules win over allow rules;
//! 6. an `allow` rule matches: the first one in configuration order is reported in the
//!    [`Grant`]. If none does, the most specific reason is given: a rule matched path and
//!    method but the request is about a project it does not list
//!    ([`PolicyDenial::ProjectNotAllowed`]) or does not tell its projects
//!    ([`PolicyDenial::ProjectNotDeterminable`]), else a rule matched the
//!    path but not the method ([`PolicyDenial::MethodNotAllowed`]), else
//!    [`PolicyDenial::PathNotAllowed`].
//!
//! Methods are compared exactly with `:method`; paths are matched as written, without
//! rewriting `/rest/api/latest/` to a version (see [`acl`] for the pattern syntax and
//! [`projects`] for the project paths understood).

use std::fmt;

use crate::cloud::Cloud;
use crate::guid::Guid;
use crate::path::RequestPath;

pub mod acl;
pub mod jql;
pub mod projects;
pub mod scope;
pub mod strict_json;

pub use projects::{project_of, ProjectScope};

use acl::Rule;
use projects::ProjectFit;
use scope::ProjectIds;

/// Index of a tenant in [`Policy::tenants`]; stable for the life of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantIndex(pub usize);

/// Which Entra ID access-token format a token claims to be, decided by its issuer string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `iss` = `https://sts.windows.net/{tid}/`, client id in `appid`.
    V1,
    /// `iss` = `https://login.microsoftonline.com/{tid}/v2.0`, client id in `azp`.
    V2,
}

/// Where a tenant's signing keys are fetched from through Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksSource {
    /// Envoy cluster name passed to `dispatch_http_call`.
    pub cluster: String,
    /// `:authority` of the key-set request.
    pub authority: String,
    /// `:path` of the key-set request (when `discovery_path` is set: until discovery names one).
    pub path: String,
    /// `:path` of the OIDC discovery document, when the key-set path is to be discovered.
    pub discovery_path: Option<String>,
    /// Interval between background refreshes.
    pub refresh_seconds: i64,
    /// Least time between two fetches caused by unknown key ids.
    pub min_refetch_seconds: i64,
    /// How long the last good key set may be used after it was fetched.
    pub max_stale_seconds: i64,
    /// Timeout of one fetch.
    pub fetch_timeout_ms: u64,
}

/// Whether denials are enforced or only logged and counted (dry-run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Denials are answered locally; nothing refused reaches Jira.
    Enforce,
    /// Everything is evaluated and logged, and the request goes on to Jira regardless.
    Audit,
}

/// Which decisions are written to the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// Every decision.
    All,
    /// Denials only (including would-be denials in audit mode).
    Denials,
    /// None.
    Off,
}

/// Which implementation checks RS256 signatures (`signature_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureBackend {
    /// Envoy's `verify_signature` when the host has it (checked at start-up), else in Wasm.
    Auto,
    /// Envoy's `verify_signature`; the plugin refuses to start without it.
    Envoy,
    /// RSA compiled into the module.
    Wasm,
}

impl SignatureBackend {
    /// Whether the host's `verify_signature` checks signatures, given whether the host checked
    /// the start-up probe correctly (`host_checks_correctly` is asked only when it matters);
    /// `Err` names the setting when `envoy` is required and the host cannot provide it.
    pub fn uses_host(
        self,
        host_checks_correctly: impl FnOnce() -> bool,
    ) -> Result<bool, &'static str> {
        match self {
            SignatureBackend::Wasm => Ok(false),
            SignatureBackend::Auto => Ok(host_checks_correctly()),
            SignatureBackend::Envoy if host_checks_correctly() => Ok(true),
            SignatureBackend::Envoy => Err(
                "signature_backend: \"envoy\" requires Envoy's verify_signature foreign function, which this host does not provide",
            ),
        }
    }
}

#[cfg(test)]
mod signature_backend_tests {
    use super::SignatureBackend;

    #[test]
    fn wasm_never_asks_the_host() {
        let asked = std::cell::Cell::new(false);
        let uses = SignatureBackend::Wasm.uses_host(|| {
            asked.set(true);
            true
        });
        assert_eq!(uses, Ok(false));
        assert!(!asked.get());
    }

    #[test]
    fn auto_uses_the_host_only_when_it_checks_the_probe_correctly() {
        assert_eq!(SignatureBackend::Auto.uses_host(|| true), Ok(true));
        assert_eq!(SignatureBackend::Auto.uses_host(|| false), Ok(false));
    }

    #[test]
    fn envoy_refuses_to_start_on_a_host_that_cannot_check_signatures() {
        assert_eq!(SignatureBackend::Envoy.uses_host(|| true), Ok(true));
        let refused = SignatureBackend::Envoy.uses_host(|| false);
        assert!(refused.is_err_and(|e| e.starts_with("signature_backend: ")));
    }
}

/// A trusted Entra ID tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The directory (tenant) id; also the `tid` claim its tokens must carry.
    pub tenant_id: Guid,
    /// Accepted `aud` values; a token must carry at least one.
    pub audiences: Vec<String>,
    /// Where the tenant's key set comes from.
    pub jwks: JwksSource,
    /// The Microsoft cloud the tenant lives in; its issuers and key-set authority by default.
    pub cloud: Cloud,
    /// The exact `iss` of the tenant's v1.0 tokens (`https://sts.windows.net/{tid}/` in the
    /// public cloud); `None` when v1 tokens are not accepted.
    pub issuer_v1: Option<String>,
    /// The exact `iss` of the tenant's v2.0 tokens
    /// (`https://login.microsoftonline.com/{tid}/v2.0` in the public cloud); `None` when v2
    /// tokens are not accepted.
    pub issuer_v2: Option<String>,
}

impl Tenant {
    /// Whether `iss` is one of the tenant's issuers.
    pub fn trusts_issuer(&self, iss: &str) -> bool {
        self.issuer_v1.as_deref() == Some(iss) || self.issuer_v2.as_deref() == Some(iss)
    }
}

/// The authenticated caller, as established by a verified token.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// Tenant whose key signed the token.
    pub tenant: TenantIndex,
    /// `azp` (v2) or `appid` (v1), as written in the token.
    pub app_id: &'a str,
    /// `azpacr` (v2) or `appidacr` (v1): "0" public client, "1" secret, "2" certificate.
    pub credential_type: Option<&'a str>,
    /// The token's `roles` claim (empty when absent).
    pub roles: &'a [String],
    /// True for user (delegated) tokens: an `scp` claim, or `idtyp` other than `app`.
    pub delegated: bool,
}

/// The request an authorization decision is about.
#[derive(Debug, Clone)]
pub struct RequestTarget<'a> {
    /// `:method`, as sent.
    pub method: &'a str,
    /// The canonical path.
    pub path: &'a RequestPath<'a>,
}

/// What the policy granted: the identity to present to Jira.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant<'p> {
    /// The client's configured name (`x-jira-client`).
    pub client_name: &'p str,
    /// The client's app id, lowercase (`x-jira-client-id`).
    pub app_id: &'p str,
    /// Value for the upstream `Authorization` header, when the client maps to a Jira account.
    pub upstream_authorization: Option<&'p str>,
    /// Which rule allowed the call, e.g. `clients[1].allow[0]`.
    pub matched_rule: &'p str,
}

/// Stands in for a credential in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Grant<'_> {
    /// Grants end up in logs; the upstream credential must not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("client_name", &self.client_name)
            .field("app_id", &self.app_id)
            .field(
                "upstream_authorization",
                &self.upstream_authorization.map(|_| Redacted),
            )
            .field("matched_rule", &self.matched_rule)
            .finish()
    }
}

/// Why the policy refused an authenticated caller (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDenial {
    /// No configured client has this app id in this tenant.
    UnknownClient,
    /// The token was issued to a user (delegated), not to the client application itself.
    DelegatedToken,
    /// The token's credential type is neither certificate (`2`) nor secret (`1`): a public
    /// client (`0`), or a type that is missing or unknown.
    CertificateRequired,
    /// The client authenticated with a client secret and is not allowed to.
    ClientSecretNotAccepted,
    /// The token lacks one of the client's `required_roles`.
    MissingRole,
    /// A `deny` rule of the client matches the request.
    DeniedByRule,
    /// An `allow` rule matches the path, none lists the method.
    MethodNotAllowed,
    /// No `allow` rule matches the path.
    PathNotAllowed,
    /// An `allow` rule matches path and method, but the request is about a project it does
    /// not list.
    ProjectNotAllowed,
    /// An `allow` rule with `projects` matches path and method, and the request does not tell
    /// (provably) which projects it is about.
    ProjectNotDeterminable,
}

impl PolicyDenial {
    /// A short reason for the 403 body; never lists what would be allowed.
    pub fn description(&self) -> &'static str {
        match self {
            PolicyDenial::UnknownClient => "client is not registered for this gateway",
            PolicyDenial::DelegatedToken => "delegated (user) tokens are not accepted",
            PolicyDenial::CertificateRequired => {
                "client must authenticate to Entra ID with a certificate"
            }
            PolicyDenial::ClientSecretNotAccepted => {
                "client secret credentials are not accepted for this client"
            }
            PolicyDenial::MissingRole => "token lacks a required app role",
            PolicyDenial::DeniedByRule => "request denied by policy",
            PolicyDenial::MethodNotAllowed => "method not allowed for this client",
            PolicyDenial::PathNotAllowed => "path not allowed for this client",
            PolicyDenial::ProjectNotAllowed => "project not allowed for this client",
            PolicyDenial::ProjectNotDeterminable => {
                "project cannot be determined from this request"
            }
        }
    }

    /// Stable machine-readable reason for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyDenial::UnknownClient => "unknown_client",
            PolicyDenial::DelegatedToken => "delegated_token",
            PolicyDenial::CertificateRequired => "certificate_required",
            PolicyDenial::ClientSecretNotAccepted => "client_secret_not_accepted",
            PolicyDenial::MissingRole => "missing_role",
            PolicyDenial::DeniedByRule => "denied_by_rule",
            PolicyDenial::MethodNotAllowed => "method_not_allowed",
            PolicyDenial::PathNotAllowed => "path_not_allowed",
            PolicyDenial::ProjectNotAllowed => "project_not_allowed",
            PolicyDenial::ProjectNotDeterminable => "project_not_determinable",
        }
    }
}

/// A configured client application and its ACL.
#[derive(Clone)]
pub struct Client {
    pub(crate) name: String,
    pub(crate) app_id: Guid,
    /// `app_id` in its lowercase text form, handed out in grants without formatting.
    pub(crate) app_id_text: String,
    pub(crate) tenant: TenantIndex,
    pub(crate) required_roles: Vec<String>,
    pub(crate) allow_client_secret: bool,
    pub(crate) upstream_authorization: Option<String>,
    pub(crate) allow: Vec<Rule>,
    pub(crate) deny: Vec<Rule>,
    pub(crate) mode: Mode,
}

impl Client {
    /// The configured name, unique among clients.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client's application (client) id.
    pub fn app_id(&self) -> Guid {
        self.app_id
    }

    /// Whether this client's denials are enforced or only logged (per-client dry-run).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The tenant the client belongs to.
    pub fn tenant(&self) -> TenantIndex {
        self.tenant
    }

    /// The app id in lowercase text form (`x-jira-client-id`).
    pub fn app_id_text(&self) -> &str {
        &self.app_id_text
    }

    /// The client's upstream `Authorization` value, when it maps to its own Jira account.
    pub fn upstream_authorization(&self) -> Option<&str> {
        self.upstream_authorization.as_deref()
    }

    /// True when the client maps to its own upstream `Authorization` value.
    pub fn has_upstream_authorization(&self) -> bool {
        self.upstream_authorization.is_some()
    }

    /// The client's decision for an authenticated caller already known to be this client (see
    /// [`Policy::client_of`]), with the projects read from the path alone.
    pub fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
    ) -> Result<Grant<'_>, PolicyDenial> {
        // Without project rules the scope is never looked at: do not build it.
        let scope = match project_of(target.path) {
            Some(key) if self.has_project_rules() => ProjectScope::Touches {
                keys: vec![key.to_ascii_uppercase()],
                basis: "path".into(),
            },
            _ => ProjectScope::Undetermined(String::new()),
        };
        self.authorize_scoped(caller, target, &scope)
    }

    /// True when a rule of the client names projects: only then does the decision need to know
    /// which projects a request is about.
    pub fn has_project_rules(&self) -> bool {
        self.allow
            .iter()
            .chain(&self.deny)
            .any(|rule| rule.projects != projects::ProjectCondition::Any)
    }

    /// True when a rule with `projects` could apply to this call and its projects are in the
    /// body (see [`scope::needs_body`]): only then is the body worth reading.
    pub fn needs_body(&self, method: &str, path: &RequestPath<'_>) -> bool {
        scope::needs_body(method, path)
            && self.allow.iter().chain(&self.deny).any(|rule| {
                rule.projects != projects::ProjectCondition::Any
                    && rule.methods.contains(method)
                    && rule.matches_path(path)
            })
    }

    /// True when the rule with this id (`clients[1].allow[0]`) names projects.
    pub fn rule_names_projects(&self, id: &str) -> bool {
        self.allow
            .iter()
            .chain(&self.deny)
            .any(|rule| rule.id == id && rule.projects != projects::ProjectCondition::Any)
    }

    /// The client's decision, given what the request is about (`scope`, from
    /// [`scope::request_scope`]).
    pub fn authorize_scoped(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
        scope: &ProjectScope,
    ) -> Result<Grant<'_>, PolicyDenial> {
        if caller.delegated {
            return Err(PolicyDenial::DelegatedToken);
        }
        match caller.credential_type {
            Some("2") => {}
            Some("1") if self.allow_client_secret => {}
            Some("1") => return Err(PolicyDenial::ClientSecretNotAccepted),
            _ => return Err(PolicyDenial::CertificateRequired),
        }
        if !self
            .required_roles
            .iter()
            .all(|role| caller.roles.contains(role))
        {
            return Err(PolicyDenial::MissingRole);
        }
        let (method, path) = (target.method, target.path);
        if self
            .deny
            .iter()
            .any(|rule| rule.denies(method, path, scope))
        {
            return Err(PolicyDenial::DeniedByRule);
        }
        let mut reason = PolicyDenial::PathNotAllowed;
        for rule in &self.allow {
            if !rule.matches_path(path) {
                continue;
            }
            if !rule.methods.contains(method) {
                if reason == PolicyDenial::PathNotAllowed {
                    reason = PolicyDenial::MethodNotAllowed;
                }
                continue;
            }
            match rule.projects.fit(scope) {
                ProjectFit::Satisfied => {
                    return Ok(Grant {
                        client_name: &self.name,
                        app_id: &self.app_id_text,
                        upstream_authorization: self.upstream_authorization.as_deref(),
                        matched_rule: &rule.id,
                    })
                }
                ProjectFit::Violated => reason = PolicyDenial::ProjectNotAllowed,
                ProjectFit::Undetermined => {
                    if reason != PolicyDenial::ProjectNotAllowed {
                        reason = PolicyDenial::ProjectNotDeterminable;
                    }
                }
            }
        }
        Err(reason)
    }
}

impl fmt::Debug for Client {
    /// The upstream credential comes from the environment precisely so it stays out of
    /// configuration dumps; it stays out of `Debug` too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("app_id", &self.app_id)
            .field("tenant", &self.tenant)
            .field("required_roles", &self.required_roles)
            .field("allow_client_secret", &self.allow_client_secret)
            .field(
                "upstream_authorization",
                &self.upstream_authorization.as_ref().map(|_| Redacted),
            )
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .finish()
    }
}

/// The compiled plugin configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) clients: Vec<Client>,
    pub(crate) public: Vec<Rule>,
    pub(crate) clock_skew_seconds: i64,
    pub(crate) max_token_lifetime_seconds: i64,
    pub(crate) mode: Mode,
    pub(crate) audit_log: AuditLog,
    pub(crate) token_cache_size: usize,
    pub(crate) key_wait_ms: u64,
    pub(crate) signature_backend: SignatureBackend,
    pub(crate) project_ids: ProjectIds,
    pub(crate) max_body_bytes: usize,
}

impl Policy {
    /// Trusted tenants, in configuration order.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    /// Configured clients, in configuration order.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// Whether denials are enforced (`mode`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Which decisions are audit-logged (`audit_log`).
    pub fn audit_log(&self) -> AuditLog {
        self.audit_log
    }

    /// Capacity of the verified-token cache (`token_cache_size`; 0 disables it).
    pub fn token_cache_size(&self) -> usize {
        self.token_cache_size
    }

    /// Who checks RS256 signatures (`signature_backend`).
    pub fn signature_backend(&self) -> SignatureBackend {
        self.signature_backend
    }

    /// How long a request may wait for a key-set fetch, in milliseconds (`key_wait_ms`).
    pub fn key_wait_ms(&self) -> u64 {
        self.key_wait_ms
    }

    /// Numeric project ids the configuration maps to keys (`project_ids`).
    pub fn project_ids(&self) -> &ProjectIds {
        &self.project_ids
    }

    /// The largest request body the filter buffers for a decision (`max_body_bytes`).
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The tenant (and token version) whose issuer string is exactly `iss`.
    pub fn tenant_by_issuer(&self, iss: &str) -> Option<(TenantIndex, TokenVersion)> {
        self.tenants.iter().enumerate().find_map(|(index, tenant)| {
            if tenant.issuer_v1.as_deref() == Some(iss) {
                Some((TenantIndex(index), TokenVersion::V1))
            } else if tenant.issuer_v2.as_deref() == Some(iss) {
                Some((TenantIndex(index), TokenVersion::V2))
            } else {
                None
            }
        })
    }

    /// Allowed difference between our clock and Entra ID's for `exp`/`nbf`, in seconds.
    pub fn clock_skew_seconds(&self) -> i64 {
        self.clock_skew_seconds
    }

    /// Longest token life accepted, in seconds (`max_token_lifetime_seconds`): `exp` at most
    /// this far from `iat` and from now.
    pub fn max_token_lifetime_seconds(&self) -> i64 {
        self.max_token_lifetime_seconds
    }

    /// True when the request matches a `public_paths` rule and needs no token.
    pub fn is_public(&self, target: &RequestTarget<'_>) -> bool {
        self.public_rule(target).is_some()
    }

    /// The `public_paths` rule the request matches, e.g. `public_paths[0]`, for logs.
    pub fn public_rule(&self, target: &RequestTarget<'_>) -> Option<&str> {
        self.public
            .iter()
            // Public rules have no `projects`; the scope is never looked at.
            .find(|rule| {
                rule.allows(
                    target.method,
                    target.path,
                    &ProjectScope::Undetermined(String::new()),
                )
            })
            .map(|rule| rule.id.as_str())
    }

    /// Decides whether `caller` may make the call `target`.
    pub fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
    ) -> Result<Grant<'_>, PolicyDenial> {
        self.client_of(caller)
            .ok_or(PolicyDenial::UnknownClient)?
            .authorize(caller, target)
    }

    /// The configured client the caller is: same app id, same issuing tenant.
    pub fn client_of(&self, caller: &Caller<'_>) -> Option<&Client> {
        let app_id = Guid::parse(caller.app_id)?;
        self.clients
            .iter()
            .find(|client| client.app_id == app_id && client.tenant == caller.tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::compile_policy;
    use crate::path::canonical_path;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER_TENANT: &str = "0b2c7e1a-4f5d-4c3b-9a8e-7d6c5b4a3f21";
    const REPORTING: &str = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01";
    const CI: &str = "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202";
    const LEGACY: &str = "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01";
    const GUARDED: &str = "11111111-2222-4333-8444-555555555555";

    const DOCUMENT: &str = r#"{
      "tenants": [
        {"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "audiences": ["api://jira-gateway"],
         "jwks": {"cluster": "entra"}},
        {"tenant_id": "0b2c7e1a-4f5d-4c3b-9a8e-7d6c5b4a3f21", "audiences": ["api://jira-gateway"],
         "jwks": {"cluster": "entra"}}
      ],
      "clients": [
        {"name": "reporting-bot", "app_id": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
         "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
         "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/issue/*", "/rest/api/2/project/**"]}]},
        {"name": "ci-pipeline", "app_id": "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202",
         "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
         "required_roles": ["Jira.Write", "Jira.Read"],
         "allow": [{"methods": ["POST"], "paths": ["/rest/api/2/issue"]},
                   {"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS", "SEC"]},
                   {"methods": ["GET"], "paths": ["/rest/api/2/issue/*/comment"]}],
         "deny": [{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]},
        {"name": "legacy-sync", "app_id": "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01",
         "tenant_id": "0b2c7e1a-4f5d-4c3b-9a8e-7d6c5b4a3f21", "allow_client_secret": true,
         "upstream_authorization_env": "JIRA_PAT_LEGACY_SYNC",
         "allow": [{"methods": ["*"], "paths": ["/rest/api/2/**"]}]},
        {"name": "guarded", "app_id": "11111111-2222-4333-8444-555555555555",
         "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
         "allow": [{"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*", "/rest/api/2/project/*"]}],
         "deny": [{"methods": ["PUT"], "paths": ["/rest/api/2/issue/*", "/rest/api/2/project/*"], "projects": ["SEC"]}]}
      ],
      "public_paths": [{"methods": ["GET", "HEAD"], "paths": ["/status"]},
                       {"methods": ["*"], "paths": ["/health/**"]}],
      "clock_skew_seconds": 30
    }"#;

    fn policy() -> Policy {
        compile_policy(DOCUMENT.as_bytes(), &|name| {
            (name == "JIRA_PAT_LEGACY_SYNC").then(|| "Bearer legacy-pat-secret".to_string())
        })
        .unwrap()
    }

    /// A certificate-authenticated application token with both roles.
    struct Token {
        tenant: usize,
        app_id: &'static str,
        credential_type: Option<&'static str>,
        roles: Vec<String>,
        delegated: bool,
    }

    fn token(app_id: &'static str) -> Token {
        Token {
            tenant: 0,
            app_id,
            credential_type: Some("2"),
            roles: vec!["Jira.Read".into(), "Jira.Write".into()],
            delegated: false,
        }
    }

    impl Token {
        fn decide(
            &self,
            policy: &Policy,
            method: &str,
            raw_path: &str,
        ) -> Result<String, PolicyDenial> {
            let path = canonical_path(raw_path).unwrap();
            let caller = Caller {
                tenant: TenantIndex(self.tenant),
                app_id: self.app_id,
                credential_type: self.credential_type,
                roles: &self.roles,
                delegated: self.delegated,
            };
            let target = RequestTarget {
                method,
                path: &path,
            };
            policy
                .authorize(&caller, &target)
                .map(|grant| grant.matched_rule.to_string())
        }
    }

    fn public(policy: &Policy, method: &str, raw_path: &str) -> Option<String> {
        let path = canonical_path(raw_path).unwrap();
        let target = RequestTarget {
            method,
            path: &path,
        };
        assert_eq!(
            policy.is_public(&target),
            policy.public_rule(&target).is_some()
        );
        policy.public_rule(&target).map(str::to_string)
    }

    #[test]
    fn issuer_selects_tenant_and_token_version() {
        let policy = policy();
        assert_eq!(
            policy.tenant_by_issuer(&format!("https://sts.windows.net/{TENANT}/")),
            Some((TenantIndex(0), TokenVersion::V1))
        );
        assert_eq!(
            policy.tenant_by_issuer(&format!(
                "https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"
            )),
            Some((TenantIndex(1), TokenVersion::V2))
        );
    }

    #[test]
    fn issuer_must_match_exactly() {
        let policy = policy();
        for iss in [
            format!("https://sts.windows.net/{TENANT}"),
            format!("https://sts.windows.net/{}/", TENANT.to_uppercase()),
            format!("https://login.microsoftonline.com/{TENANT}/v2.0/"),
            format!("https://login.microsoftonline.com/{TENANT}/"),
            format!("http://sts.windows.net/{TENANT}/"),
            "https://sts.windows.net/11111111-2222-4333-8444-555555555555/".to_string(),
            String::new(),
        ] {
            assert_eq!(policy.tenant_by_issuer(&iss), None, "{iss}");
        }
    }

    #[test]
    fn public_paths_match_method_and_path() {
        let policy = policy();
        assert_eq!(
            public(&policy, "GET", "/status"),
            Some("public_paths[0]".into())
        );
        assert_eq!(
            public(&policy, "HEAD", "/status?x=1"),
            Some("public_paths[0]".into())
        );
        assert_eq!(public(&policy, "POST", "/status"), None);
        assert_eq!(public(&policy, "get", "/status"), None);
        assert_eq!(public(&policy, "GET", "/status/x"), None);
        assert_eq!(public(&policy, "GET", "/Status"), None);
        assert_eq!(
            public(&policy, "DELETE", "/health"),
            Some("public_paths[1]".into())
        );
        assert_eq!(
            public(&policy, "GET", "/health/live"),
            Some("public_paths[1]".into())
        );
        assert_eq!(public(&policy, "GET", "/rest/api/2/search"), None);
    }

    #[test]
    fn allowed_call_reports_the_first_matching_rule() {
        let policy = policy();
        assert_eq!(
            token(REPORTING).decide(&policy, "GET", "/rest/api/2/search?jql=project%20%3D%20OPS"),
            Ok("clients[0].allow[0]".into())
        );
        assert_eq!(
            token(CI).decide(&policy, "GET", "/rest/api/2/issue/OPS-1/comment"),
            Ok("clients[1].allow[2]".into())
        );
        assert_eq!(
            token(CI).decide(&policy, "POST", "/rest/api/2/issue"),
            Ok("clients[1].allow[0]".into())
        );
    }

    #[test]
    fn grant_carries_the_client_identity() {
        let policy = policy();
        let path = canonical_path("/rest/api/2/myself").unwrap();
        let roles = Vec::new();
        let caller = Caller {
            tenant: TenantIndex(1),
            app_id: &LEGACY.to_uppercase(),
            credential_type: Some("1"),
            roles: &roles,
            delegated: false,
        };
        let target = RequestTarget {
            method: "PATCH",
            path: &path,
        };
        let grant = policy.authorize(&caller, &target).unwrap();
        assert_eq!(
            grant,
            Grant {
                client_name: "legacy-sync",
                app_id: LEGACY,
                upstream_authorization: Some("Bearer legacy-pat-secret"),
                matched_rule: "clients[2].allow[0]",
            }
        );
        let debug = format!("{grant:?}");
        assert!(!debug.contains("legacy-pat-secret"), "{debug}");
        assert!(
            debug.contains("upstream_authorization: Some(<redacted>)"),
            "{debug}"
        );
    }

    #[test]
    fn grant_without_upstream_authorization() {
        let policy = policy();
        let path = canonical_path("/rest/api/2/search").unwrap();
        let roles = Vec::new();
        let caller = Caller {
            tenant: TenantIndex(0),
            app_id: REPORTING,
            credential_type: Some("2"),
            roles: &roles,
            delegated: false,
        };
        let grant = policy
            .authorize(
                &caller,
                &RequestTarget {
                    method: "GET",
                    path: &path,
                },
            )
            .unwrap();
        assert_eq!(grant.client_name, "reporting-bot");
        assert_eq!(grant.upstream_authorization, None);
    }

    #[test]
    fn unconfigured_app_id_is_an_unknown_client() {
        let policy = policy();
        let stranger = token("99999999-8888-4777-8666-555555555555");
        assert_eq!(
            stranger.decide(&policy, "GET", "/rest/api/2/search"),
            Err(PolicyDenial::UnknownClient)
        );
    }

    #[test]
    fn app_id_that_is_not_a_guid_is_an_unknown_client() {
        let policy = policy();
        for app_id in ["", "reporting-bot", "3c5a0b5e6b634b1b9a390f0d2f0c1a01"] {
            assert_eq!(
                token(app_id).decide(&policy, "GET", "/rest/api/2/search"),
                Err(PolicyDenial::UnknownClient)
            );
        }
    }

    #[test]
    fn same_app_id_in_another_tenant_is_an_unknown_client() {
        let policy = policy();
        let mut other_tenant = token(REPORTING);
        other_tenant.tenant = 1;
        assert_eq!(
            other_tenant.decide(&policy, "GET", "/rest/api/2/search"),
            Err(PolicyDenial::UnknownClient)
        );
        let mut legacy_home = token(LEGACY);
        legacy_home.tenant = 0;
        assert_eq!(
            legacy_home.decide(&policy, "GET", "/rest/api/2/search"),
            Err(PolicyDenial::UnknownClient)
        );
    }

    #[test]
    fn app_id_case_does_not_matter() {
        let policy = policy();
        let upper: &'static str = Box::leak(REPORTING.to_uppercase().into_boxed_str());
        assert_eq!(
            token(upper).decide(&policy, "GET", "/rest/api/2/search"),
            Ok("clients[0].allow[0]".into())
        );
    }

    #[test]
    fn delegated_token_is_refused_before_anything_else_about_the_client() {
        let policy = policy();
        let mut delegated = token(REPORTING);
        delegated.delegated = true;
        delegated.credential_type = Some("0");
        assert_eq!(
            delegated.decide(&policy, "GET", "/rest/api/2/search"),
            Err(PolicyDenial::DelegatedToken)
        );
    }

    #[test]
    fn unknown_client_is_reported_before_delegation() {
        let policy = policy();
        let mut delegated = token("99999999-8888-4777-8666-555555555555");
        delegated.delegated = true;
        assert_eq!(
            delegated.decide(&policy, "GET", "/rest/api/2/search"),
            Err(PolicyDenial::UnknownClient)
        );
    }

    #[test]
    fn only_certificates_are_accepted_by_default() {
        let policy = policy();
        let cases = [
            (Some("2"), Ok("clients[0].allow[0]".to_string())),
            (Some("1"), Err(PolicyDenial::ClientSecretNotAccepted)),
            (Some("0"), Err(PolicyDenial::CertificateRequired)),
            (Some(""), Err(PolicyDenial::CertificateRequired)),
            (Some("3"), Err(PolicyDenial::CertificateRequired)),
            (Some("02"), Err(PolicyDenial::CertificateRequired)),
            (None, Err(PolicyDenial::CertificateRequired)),
        ];
        for (credential_type, expected) in cases {
            let mut caller = token(REPORTING);
            caller.credential_type = credential_type;
            assert_eq!(
                caller.decide(&policy, "GET", "/rest/api/2/search"),
                expected,
                "{credential_type:?}"
            );
        }
    }

    #[test]
    fn client_secret_is_accepted_only_where_allowed() {
        let policy = policy();
        let cases = [
            (Some("1"), Ok("clients[2].allow[0]".to_string())),
            (Some("2"), Ok("clients[2].allow[0]".to_string())),
            (Some("0"), Err(PolicyDenial::CertificateRequired)),
            (None, Err(PolicyDenial::CertificateRequired)),
        ];
        for (credential_type, expected) in cases {
            let mut caller = token(LEGACY);
            caller.tenant = 1;
            caller.credential_type = credential_type;
            assert_eq!(
                caller.decide(&policy, "GET", "/rest/api/2/search"),
                expected,
                "{credential_type:?}"
            );
        }
    }

    #[test]
    fn every_required_role_must_be_present() {
        let policy = policy();
        let mut caller = token(CI);
        caller.roles = vec!["Jira.Write".into()];
        assert_eq!(
            caller.decide(&policy, "POST", "/rest/api/2/issue"),
            Err(PolicyDenial::MissingRole)
        );
        caller.roles = vec!["jira.write".into(), "Jira.Read".into()];
        assert_eq!(
            caller.decide(&policy, "POST", "/rest/api/2/issue"),
            Err(PolicyDenial::MissingRole)
        );
        caller.roles = Vec::new();
        assert_eq!(
            caller.decide(&policy, "POST", "/rest/api/2/issue"),
            Err(PolicyDenial::MissingRole)
        );
        caller.roles = vec!["Other".into(), "Jira.Read".into(), "Jira.Write".into()];
        assert_eq!(
            caller.decide(&policy, "POST", "/rest/api/2/issue"),
            Ok("clients[1].allow[0]".into())
        );
    }

    #[test]
    fn missing_role_is_reported_before_the_acl() {
        let policy = policy();
        let mut caller = token(CI);
        caller.roles = Vec::new();
        assert_eq!(
            caller.decide(&policy, "DELETE", "/rest/api/2/issue/OPS-1"),
            Err(PolicyDenial::MissingRole)
        );
    }

    /// A one-client policy with the given rule lists, for precedence tests.
    fn single_client(allow: &str, deny: &str) -> Policy {
        let document = format!(
            r#"{{"tenants": [{{"tenant_id": "{TENANT}", "audiences": ["a"], "jwks": {{"cluster": "c"}}}}],
                "clients": [{{"name": "c", "app_id": "{REPORTING}", "allow": {allow}, "deny": {deny}}}]}}"#
        );
        compile_policy(document.as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn deny_wins_over_allow() {
        let policy = single_client(
            r#"[{"methods": ["*"], "paths": ["/rest/api/2/**"]}]"#,
            r#"[{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]"#,
        );
        for path in [
            "/rest/api/2/issue",
            "/rest/api/2/issue/OPS-1",
            "/rest/api/2/issue/OPS-1/comment/5",
        ] {
            assert_eq!(
                token(REPORTING).decide(&policy, "DELETE", path),
                Err(PolicyDenial::DeniedByRule),
                "{path}"
            );
        }
        assert_eq!(
            token(REPORTING).decide(&policy, "DELETE", "/rest/api/2/project/OPS"),
            Ok("clients[0].allow[0]".into())
        );
        assert_eq!(
            token(REPORTING).decide(&policy, "GET", "/rest/api/2/issue/OPS-1"),
            Ok("clients[0].allow[0]".into())
        );
    }

    #[test]
    fn deny_applies_even_where_no_allow_rule_matches() {
        assert_eq!(
            token(CI).decide(&policy(), "DELETE", "/rest/api/2/issue/OPS-1"),
            Err(PolicyDenial::DeniedByRule)
        );
    }

    #[test]
    fn deny_with_projects_applies_to_listed_projects_in_any_case() {
        let policy = policy();
        for path in [
            "/rest/api/2/issue/SEC-1",
            "/rest/api/2/issue/sec-1",
            "/rest/api/2/project/SEC",
            "/rest/api/2/project/Sec",
        ] {
            assert_eq!(
                token(GUARDED).decide(&policy, "PUT", path),
                Err(PolicyDenial::DeniedByRule),
                "{path}"
            );
        }
    }

    #[test]
    fn deny_with_projects_applies_when_the_project_is_unknown() {
        let policy = policy();
        for path in [
            "/rest/api/2/issue/10001",
            "/rest/api/2/issue/SEC-007",
            "/rest/api/2/project/10000",
        ] {
            assert_eq!(
                token(GUARDED).decide(&policy, "PUT", path),
                Err(PolicyDenial::DeniedByRule),
                "{path}"
            );
        }
    }

    #[test]
    fn deny_with_projects_does_not_apply_to_other_projects() {
        let policy = policy();
        assert_eq!(
            token(GUARDED).decide(&policy, "PUT", "/rest/api/2/issue/OPS-1"),
            Ok("clients[3].allow[0]".into())
        );
        assert_eq!(
            token(GUARDED).decide(&policy, "GET", "/rest/api/2/issue/SEC-1"),
            Ok("clients[3].allow[0]".into())
        );
    }

    #[test]
    fn allow_with_projects_needs_a_listed_project() {
        let policy = policy();
        assert_eq!(
            token(CI).decide(&policy, "PUT", "/rest/api/2/issue/OPS-12"),
            Ok("clients[1].allow[1]".into())
        );
        assert_eq!(
            token(CI).decide(&policy, "PUT", "/rest/api/2/issue/sec-12"),
            Ok("clients[1].allow[1]".into())
        );
        assert_eq!(
            token(CI).decide(&policy, "PUT", "/rest/api/2/issue/HR-12"),
            Err(PolicyDenial::ProjectNotAllowed)
        );
    }

    #[test]
    fn allow_with_projects_refuses_an_undeterminable_project() {
        let policy = policy();
        assert_eq!(
            token(CI).decide(&policy, "GET", "/rest/api/2/issue/10001"),
            Err(PolicyDenial::ProjectNotDeterminable)
        );
        assert_eq!(
            token(CI).decide(&policy, "PUT", "/rest/api/2/issue/OPS-012"),
            Err(PolicyDenial::ProjectNotDeterminable)
        );
    }

    #[test]
    fn method_not_listed_for_a_matching_path() {
        let policy = policy();
        assert_eq!(
            token(REPORTING).decide(&policy, "POST", "/rest/api/2/search"),
            Err(PolicyDenial::MethodNotAllowed)
        );
        assert_eq!(
            token(REPORTING).decide(&policy, "get", "/rest/api/2/search"),
            Err(PolicyDenial::MethodNotAllowed)
        );
        assert_eq!(
            token(CI).decide(&policy, "GET", "/rest/api/2/issue"),
            Err(PolicyDenial::MethodNotAllowed)
        );
    }

    #[test]
    fn path_not_matched_by_any_rule() {
        let policy = policy();
        for path in [
            "/rest/api/2/myself",
            "/rest/api/latest/search",
            "/rest/api/2/issue/OPS-1/comment",
            "/",
        ] {
            assert_eq!(
                token(REPORTING).decide(&policy, "GET", path),
                Err(PolicyDenial::PathNotAllowed),
                "{path}"
            );
        }
    }

    #[test]
    fn project_mismatch_is_more_specific_than_method_mismatch() {
        let method_rule = r#"{"methods": ["POST"], "paths": ["/rest/api/2/issue/*"]}"#;
        let project_rule =
            r#"{"methods": ["PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS"]}"#;
        for allow in [
            format!("[{method_rule}, {project_rule}]"),
            format!("[{project_rule}, {method_rule}]"),
        ] {
            let policy = single_client(&allow, "[]");
            assert_eq!(
                token(REPORTING).decide(&policy, "PUT", "/rest/api/2/issue/HR-1"),
                Err(PolicyDenial::ProjectNotAllowed),
                "{allow}"
            );
            assert_eq!(
                token(REPORTING).decide(&policy, "GET", "/rest/api/2/issue/HR-1"),
                Err(PolicyDenial::MethodNotAllowed),
                "{allow}"
            );
        }
    }

    #[test]
    fn method_mismatch_is_more_specific_than_path_mismatch() {
        let policy = single_client(
            r#"[{"methods": ["GET"], "paths": ["/rest/api/2/search"]},
                {"methods": ["POST"], "paths": ["/rest/api/2/issue"]}]"#,
            "[]",
        );
        assert_eq!(
            token(REPORTING).decide(&policy, "GET", "/rest/api/2/issue"),
            Err(PolicyDenial::MethodNotAllowed)
        );
        assert_eq!(
            token(REPORTING).decide(&policy, "GET", "/rest/api/2/myself"),
            Err(PolicyDenial::PathNotAllowed)
        );
    }

    #[test]
    fn later_rule_can_allow_what_an_earlier_rule_refused_on_project() {
        let document = DOCUMENT.replace(
            r#"{"methods": ["GET"], "paths": ["/rest/api/2/issue/*/comment"]}"#,
            r#"{"methods": ["GET"], "paths": ["/rest/api/2/issue/*"]}"#,
        );
        let policy = compile_policy(document.as_bytes(), &|_| Some("x".into())).unwrap();
        assert_eq!(
            token(CI).decide(&policy, "GET", "/rest/api/2/issue/HR-1"),
            Ok("clients[1].allow[2]".into())
        );
        assert_eq!(
            token(CI).decide(&policy, "PUT", "/rest/api/2/issue/HR-1"),
            Err(PolicyDenial::ProjectNotAllowed)
        );
    }

    #[test]
    fn latest_alias_is_not_rewritten() {
        let policy = policy();
        assert_eq!(
            token(REPORTING).decide(&policy, "GET", "/rest/api/latest/issue/OPS-1"),
            Err(PolicyDenial::PathNotAllowed)
        );
    }

    #[test]
    fn denial_descriptions_and_codes() {
        let table = [
            (
                PolicyDenial::UnknownClient,
                "unknown_client",
                "client is not registered for this gateway",
            ),
            (
                PolicyDenial::DelegatedToken,
                "delegated_token",
                "delegated (user) tokens are not accepted",
            ),
            (
                PolicyDenial::CertificateRequired,
                "certificate_required",
                "client must authenticate to Entra ID with a certificate",
            ),
            (
                PolicyDenial::ClientSecretNotAccepted,
                "client_secret_not_accepted",
                "client secret credentials are not accepted for this client",
            ),
            (
                PolicyDenial::MissingRole,
                "missing_role",
                "token lacks a required app role",
            ),
            (
                PolicyDenial::DeniedByRule,
                "denied_by_rule",
                "request denied by policy",
            ),
            (
                PolicyDenial::MethodNotAllowed,
                "method_not_allowed",
                "method not allowed for this client",
            ),
            (
                PolicyDenial::PathNotAllowed,
                "path_not_allowed",
                "path not allowed for this client",
            ),
            (
                PolicyDenial::ProjectNotAllowed,
                "project_not_allowed",
                "project not allowed for this client",
            ),
        ];
        for (denial, code, description) in table {
            assert_eq!(denial.code(), code);
            assert_eq!(denial.description(), description);
        }
    }

    #[test]
    fn clients_are_listed_in_configuration_order() {
        let policy = policy();
        let names: Vec<&str> = policy.clients().iter().map(Client::name).collect();
        assert_eq!(
            names,
            ["reporting-bot", "ci-pipeline", "legacy-sync", "guarded"]
        );
        assert_eq!(policy.clients()[2].tenant(), TenantIndex(1));
        assert_eq!(policy.clients()[2].app_id(), Guid::parse(LEGACY).unwrap());
        assert!(policy.clients()[2].has_upstream_authorization());
        assert_eq!(policy.clock_skew_seconds(), 30);
    }
}
