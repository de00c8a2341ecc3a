//! The one error taxonomy of the filter. Every way a request can be refused is a [`Denial`];
//! [`Denial::status`] is the single place that maps a kind of failure to an HTTP status.

use crate::keys::jwks::KeySetError;
use crate::path::PathRejection;
use crate::policy::scope::BodyRejection;
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
    /// The decision needs the body and cannot have or trust it (400, 408, 413 or 415).
    Body(BodyRejection),
}

impl Denial {
    /// The HTTP status of the local reply.
    pub fn status(&self) -> u16 {
        match self {
            Denial::Request(_) | Denial::Path(_) => 400,
            Denial::MissingToken | Denial::Token(_) => 401,
            Denial::Policy(_) => 403,
            Denial::KeySet(_) => 503,
            Denial::Body(b) => b.status(),
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
            Denial::Body(b) => b.code(),
        }
    }

    /// Every reason [`Denial::metric_reason`] gives: what the shell creates a
    /// `denied_total{reason}` and a `dry_run_denied_total{reason}` counter for when it starts.
    pub const METRIC_REASONS: [&'static str; 15] = [
        "no_token",
        "invalid_token",
        "unknown_client",
        "acl",
        "project_not_allowed",
        "project_not_determinable",
        "body_too_large",
        "body_timeout",
        "unsupported_media_type",
        "invalid_body",
        "certificate_credential",
        "delegated_token",
        "refused_request",
        "token_in_query",
        "keys_unavailable",
    ];

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
                P::MissingRole | P::DeniedByRule | P::MethodNotAllowed | P::PathNotAllowed,
            ) => "acl",
            Denial::Policy(P::ProjectNotAllowed) => "project_not_allowed",
            Denial::Policy(P::ProjectNotDeterminable) => "project_not_determinable",
            Denial::Body(BodyRejection::TooLarge) => "body_too_large",
            Denial::Body(BodyRejection::TimedOut) => "body_timeout",
            Denial::Body(BodyRejection::UnsupportedMediaType | BodyRejection::ContentEncoding) => {
                "unsupported_media_type"
            }
            Denial::Body(BodyRejection::InvalidJson | BodyRejection::DuplicateMember) => {
                "invalid_body"
            }
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
            Denial::Body(b) => b.description(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One denial for every arm of [`Denial::metric_reason`].
    fn one_of_each_kind() -> Vec<Denial> {
        use crate::policy::PolicyDenial as P;
        let mut all = vec![
            Denial::Request(RequestRejection::MethodOverride),
            Denial::Request(RequestRejection::MissingPseudoHeader),
            Denial::Request(RequestRejection::TokenInQuery),
            Denial::Path(PathRejection::Fragment),
            Denial::MissingToken,
            Denial::KeySet(KeySetError::Unavailable),
            Denial::KeySet(KeySetError::Stale),
        ];
        all.extend(TokenError::ALL.map(Denial::Token));
        all.extend(
            [
                P::UnknownClient,
                P::DelegatedToken,
                P::CertificateRequired,
                P::ClientSecretNotAccepted,
                P::MissingRole,
                P::DeniedByRule,
                P::MethodNotAllowed,
                P::PathNotAllowed,
                P::ProjectNotAllowed,
                P::ProjectNotDeterminable,
            ]
            .map(Denial::Policy),
        );
        all.extend(BodyRejection::ALL.map(Denial::Body));
        all
    }

    #[test]
    fn every_metric_reason_is_listed_and_every_listed_reason_is_given() {
        let given: Vec<&str> = one_of_each_kind()
            .iter()
            .map(Denial::metric_reason)
            .collect();
        for reason in &given {
            assert!(Denial::METRIC_REASONS.contains(reason), "{reason} unlisted");
        }
        for listed in Denial::METRIC_REASONS {
            assert!(
                given.contains(&listed),
                "{listed} is listed but never given"
            );
        }
    }
}
