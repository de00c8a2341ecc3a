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
//!    method but not the project ([`PolicyDenial::ProjectNotAllowed`]), else a rule matched the
//!    path but not the method ([`PolicyDenial::MethodNotAllowed`]), else
//!    [`PolicyDenial::PathNotAllowed`].
//!
//! Methods are compared exactly with `:method`; paths are matched as written, without
//! rewriting `/rest/api/latest/` to a version (see [`acl`] for the pattern syntax and
//! [`projects`] for the project paths understood).

use std::fmt;

use crate::guid::Guid;
use crate::path::RequestPath;

pub mod acl;
pub mod projects;

pub use projects::project_of;

use acl::Rule;

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
    /// `:path` of the key-set request.
    pub path: String,
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
    /// `https://sts.windows.net/{tid}/`
    pub issuer_v1: String,
    /// `https://login.microsoftonline.com/{tid}/v2.0`
    pub issuer_v2: String,
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
    /// An `allow` rule matches path and method, but not the project the path is about.
    ProjectNotAllowed,
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

    /// The tenant the client belongs to.
    pub fn tenant(&self) -> TenantIndex {
        self.tenant
    }

    /// True when the client maps to its own upstream `Authorization` value.
    pub fn has_upstream_authorization(&self) -> bool {
        self.upstream_authorization.is_some()
    }

    /// The client's decision for an authenticated caller already known to be this client.
    fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
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
        let project = project_of(path);
        if self
            .deny
            .iter()
            .any(|rule| rule.denies(method, path, project))
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
            if rule.allows(method, path, project) {
                return Ok(Grant {
                    client_name: &self.name,
                    app_id: &self.app_id_text,
                    upstream_authorization: self.upstream_authorization.as_deref(),
                    matched_rule: &rule.id,
                });
            }
            reason = PolicyDenial::ProjectNotAllowed;
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

    /// The tenant (and token version) whose issuer string is exactly `iss`.
    pub fn tenant_by_issuer(&self, iss: &str) -> Option<(TenantIndex, TokenVersion)> {
        self.tenants.iter().enumerate().find_map(|(index, tenant)| {
            if tenant.issuer_v1 == iss {
                Some((TenantIndex(index), TokenVersion::V1))
            } else if tenant.issuer_v2 == iss {
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

    /// True when the request matches a `public_paths` rule and needs no token.
    pub fn is_public(&self, target: &RequestTarget<'_>) -> bool {
        self.public_rule(target).is_some()
    }

    /// The `public_paths` rule the request matches, e.g. `public_paths[0]`, for logs.
    pub fn public_rule(&self, target: &RequestTarget<'_>) -> Option<&str> {
        self.public
            .iter()
            .find(|rule| rule.allows(target.method, target.path, None))
            .map(|rule| rule.id.as_str())
    }

    /// Decides whether `caller` may make the call `target`.
    pub fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
    ) -> Result<Grant<'_>, PolicyDenial> {
        let app_id = Guid::parse(caller.app_id).ok_or(PolicyDenial::UnknownClient)?;
        self.clients
            .iter()
            .find(|client| client.app_id == app_id && client.tenant == caller.tenant)
            .ok_or(PolicyDenial::UnknownClient)?
            .authorize(caller, target)
    }
}
