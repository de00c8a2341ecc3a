//! The one error taxonomy of the filter. Every way a request can be refused is a [`Denial`];
//! [`Denial::status`] is the single place that maps a kind of failure to an HTTP status.

use crate::jwks::KeySetError;
use crate::path::PathRejection;
use crate::policy::PolicyDenial;
use crate::request::RequestRejection;
use crate::token::TokenError;

/// Why a request does not reach Jira.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The request itself is refused before authentication (400).
    Request(RequestRejection),
    /// The path is ambiguous and refused before any rule (400).
    Path(PathRejection),
    /// No bearer token was presented (401, `WWW-Authenticate` without an error code).
    MissingToken,
    /// A token was presented and is not acceptable (401 `invalid_token`).
    Token(TokenError),
    /// No usable key set for the token's tenant (503 with `Retry-After`).
    KeySet(KeySetError),
    /// The caller is authenticated but the ACL refuses the call (403).
    Policy(PolicyDenial),
}

impl Denial {
    /// The HTTP status of the local reply.
    pub fn status(&self) -> u16 {
        match self {
            Denial::Request(_) | Denial::Path(_) => 400,
            Denial::MissingToken | Denial::Token(_) => 401,
            Denial::Policy(_) => 403,
            Denial::KeySet(_) => 503,
        }
    }

    /// Stable machine-readable reason for audit logs: the specific cause.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::Request(RequestRejection::MethodOverride) => "method_override",
            Denial::Request(RequestRejection::MissingPseudoHeader) => "missing_pseudo_header",
            Denial::Request(RequestRejection::TokenInQuery) => "token_in_query",
            Denial::Path(_) => "refused_path",
            Denial::MissingToken => "no_token",
            Denial::Token(e) => e.code(),
            Denial::KeySet(e) => e.code(),
            Denial::Policy(p) => p.code(),
        }
    }

    /// The reason a denial is counted under in metrics: the broad class an operator watches.
    pub fn metric_reason(&self) -> &'static str {
        use crate::policy::PolicyDenial as P;
        match self {
            // Its own reason: a client leaking tokens into URLs is worth an alert of its own.
            Denial::Request(RequestRejection::TokenInQuery) => "token_in_query",
            Denial::Request(_) | Denial::Path(_) => "refused_request",
            Denial::MissingToken => "no_token",
            Denial::Token(_) => "invalid_token",
            Denial::KeySet(_) => "keys_unavailable",
            Denial::Policy(P::UnknownClient) => "unknown_client",
            Denial::Policy(P::CertificateRequired | P::ClientSecretNotAccepted) => {
                "certificate_credential"
            }
            Denial::Policy(P::DelegatedToken) => "delegated_token",
            Denial::Policy(
                P::MissingRole
                | P::DeniedByRule
                | P::MethodNotAllowed
                | P::PathNotAllowed
                | P::ProjectNotAllowed,
            ) => "acl",
        }
    }

    /// Human-readable reason for the response body and logs. Never contains the token.
    pub fn description(&self) -> &'static str {
        match self {
            Denial::Request(r) => r.description(),
            Denial::Path(r) => r.description(),
            Denial::MissingToken => "a bearer token is required",
            Denial::Token(e) => e.description(),
            Denial::KeySet(e) => e.description(),
            Denial::Policy(p) => p.description(),
        }
    }
}
