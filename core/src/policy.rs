//! The compiled, validated policy the request path uses: trusted tenants and their key-set
//! sources, known clients, and each client's ACL. Built once by [`crate::config`] at configure
//! time; read-only afterwards.

use crate::guid::Guid;
use crate::path::RequestPath;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Why the policy refused an authenticated caller (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDenial {
    /// No configured client has this app id in this tenant.
    UnknownClient,
}

impl PolicyDenial {
    /// A short reason for the 403 body; never lists what would be allowed.
    pub fn description(&self) -> &'static str {
        "client is not allowed"
    }

    /// Stable machine-readable reason for logs and metrics.
    pub fn code(&self) -> &'static str {
        "unknown_client"
    }
}

/// The compiled plugin configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    tenants: Vec<Tenant>,
    clock_skew_seconds: i64,
}

impl Policy {
    /// Trusted tenants, in configuration order.
    pub fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    /// The tenant (and token version) whose issuer string is exactly `iss`.
    pub fn tenant_by_issuer(&self, iss: &str) -> Option<(TenantIndex, TokenVersion)> {
        let _ = iss;
        None
    }

    /// Allowed difference between our clock and Entra ID's for `exp`/`nbf`, in seconds.
    pub fn clock_skew_seconds(&self) -> i64 {
        self.clock_skew_seconds
    }

    /// True when the request matches a `public_paths` rule and needs no token.
    pub fn is_public(&self, target: &RequestTarget<'_>) -> bool {
        let _ = target;
        false
    }

    /// Decides whether `caller` may make the call `target`.
    pub fn authorize(
        &self,
        caller: &Caller<'_>,
        target: &RequestTarget<'_>,
    ) -> Result<Grant<'_>, PolicyDenial> {
        let _ = (caller, target);
        Err(PolicyDenial::UnknownClient)
    }
}
