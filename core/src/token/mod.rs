//! Bearer-token verification, in the order the data flows: [`bearer`] takes the token out of the
//! `Authorization` header, [`jws`] splits and decodes the compact JWS without trusting it,
//! [`claims`] reads the Entra ID claims with strict types, and [`verify`] picks the tenant, the
//! key and the algorithm (always RS256, whatever the header says) and checks every claim.

pub mod bearer;
pub mod claims;
pub mod jws;
pub mod strict_json;
pub mod verify;

/// Microsoft Graph's application id: tokens for Graph cannot be validated by anyone but Graph.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Microsoft Graph's App ID URI.
pub const GRAPH_APP_ID_URI: &str = "https://graph.microsoft.com";

/// Why a presented token is not acceptable (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// `Bearer` with nothing after it, or a value with characters a token cannot have.
    MalformedBearer,
    /// Longer than [`jws::MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three dot-separated segments.
    NotCompactJws,
    /// A segment is not unpadded, canonical base64url.
    BadEncoding,
    /// The header is not a JSON object with a string `alg`, or has a duplicate member.
    MalformedHeader,
    /// `alg` is anything but RS256.
    UnsupportedAlgorithm,
    /// The header has `crit`: no extension is understood, so none may be critical.
    CriticalHeader,
    /// The claims are not a JSON object, a claim has the wrong type, or a member is duplicated.
    MalformedClaims,
    /// A Microsoft Graph token (Graph audience or a `nonce` header).
    GraphToken,
    /// No `iss` claim.
    MissingIssuer,
    /// `iss` is not the v1 or v2 issuer of a configured tenant.
    UntrustedIssuer,
    /// The header names neither `kid` nor `x5t`.
    MissingKeyId,
    /// The tenant's key set has no key with that `kid`/`x5t`.
    UnknownKey,
    /// The tenant's key set — usable and within `max_stale_seconds` — has no key with that
    /// `kid`/`x5t`, and the refetch that could have brought it failed, hung past the request's
    /// wait, or is not allowed while the key server is failing. The answer is the same as for
    /// [`TokenError::UnknownKey`]; the cause is told apart so that key-server trouble shows.
    UnknownKeyRefetchFailed,
    /// The signature does not verify under the selected key.
    BadSignature,
    /// No `exp` claim.
    MissingExpiry,
    /// `exp` is in the past beyond the allowed clock skew.
    Expired,
    /// `nbf` is in the future beyond the allowed clock skew.
    NotYetValid,
    /// `iat` is in the future beyond the allowed clock skew.
    IssuedInFuture,
    /// `exp` is further from `iat`, or from now, than `max_token_lifetime_seconds`.
    LifetimeTooLong,
    /// `tid` is missing or is not the tenant of the issuer.
    TenantMismatch,
    /// `ver` does not match the issuer form.
    VersionMismatch,
    /// `aud` contains none of the tenant's audiences.
    WrongAudience,
    /// No `azp` (v2) or `appid` (v1) claim.
    MissingClientId,
}

impl TokenError {
    /// Every token error, in declaration order: what the shell creates an
    /// `invalid_token_total{cause}` counter for when it starts.
    pub const ALL: [TokenError; 25] = [
        TokenError::MultipleAuthorizationHeaders,
        TokenError::MalformedBearer,
        TokenError::TooLarge,
        TokenError::NotCompactJws,
        TokenError::BadEncoding,
        TokenError::MalformedHeader,
        TokenError::UnsupportedAlgorithm,
        TokenError::CriticalHeader,
        TokenError::MalformedClaims,
        TokenError::GraphToken,
        TokenError::MissingIssuer,
        TokenError::UntrustedIssuer,
        TokenError::MissingKeyId,
        TokenError::UnknownKey,
        TokenError::UnknownKeyRefetchFailed,
        TokenError::BadSignature,
        TokenError::MissingExpiry,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::LifetimeTooLong,
        TokenError::TenantMismatch,
        TokenError::VersionMismatch,
        TokenError::WrongAudience,
        TokenError::MissingClientId,
    ];

    /// Reason for `error_description` and the body; never contains token material.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::MultipleAuthorizationHeaders => "more than one Authorization header",
            TokenError::MalformedBearer => "malformed bearer token",
            TokenError::TooLarge => "token is too large",
            TokenError::NotCompactJws => "token is not a compact JWS (three segments)",
            TokenError::BadEncoding => "token segment is not canonical unpadded base64url",
            TokenError::MalformedHeader => "token header is malformed",
            TokenError::UnsupportedAlgorithm => "token algorithm is not RS256",
            TokenError::CriticalHeader => "token header has unsupported critical parameters",
            TokenError::MalformedClaims => "token claims are malformed",
            TokenError::GraphToken => {
                "token is issued for Microsoft Graph and cannot be validated here; request a token for this API"
            }
            TokenError::MissingIssuer => "token has no issuer",
            TokenError::UntrustedIssuer => "token issuer is not trusted",
            TokenError::MissingKeyId => "token header names no signing key",
            TokenError::UnknownKey | TokenError::UnknownKeyRefetchFailed => {
                "token is signed with an unknown key"
            }
            TokenError::BadSignature => "token signature is invalid",
            TokenError::MissingExpiry => "token has no expiry",
            TokenError::Expired => "token is expired",
            TokenError::NotYetValid => "token is not yet valid",
            TokenError::IssuedInFuture => "token is issued in the future",
            TokenError::LifetimeTooLong => "token lifetime is longer than accepted",
            TokenError::TenantMismatch => "token tenant does not match its issuer",
            TokenError::VersionMismatch => "token version does not match its issuer",
            TokenError::WrongAudience => "token audience is not accepted",
            TokenError::MissingClientId => "token has no client application id",
        }
    }

    /// The RFC 6750 error code for `WWW-Authenticate`.
    pub fn error_code(&self) -> &'static str {
        match self {
            TokenError::MultipleAuthorizationHeaders | TokenError::MalformedBearer => {
                "invalid_request"
            }
            _ => "invalid_token",
        }
    }

    /// Stable machine-readable reason for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::MultipleAuthorizationHeaders => "multiple_authorization_headers",
            TokenError::MalformedBearer => "malformed_bearer",
            TokenError::TooLarge => "token_too_large",
            TokenError::NotCompactJws => "not_compact_jws",
            TokenError::BadEncoding => "bad_encoding",
            TokenError::MalformedHeader => "malformed_header",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::CriticalHeader => "critical_header",
            TokenError::MalformedClaims => "malformed_claims",
            TokenError::GraphToken => "graph_token",
            TokenError::MissingIssuer => "missing_issuer",
            TokenError::UntrustedIssuer => "untrusted_issuer",
            TokenError::MissingKeyId => "missing_key_id",
            TokenError::UnknownKey => "unknown_key",
            TokenError::UnknownKeyRefetchFailed => "unknown_key_refetch_failed",
            TokenError::BadSignature => "bad_signature",
            TokenError::MissingExpiry => "missing_expiry",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::LifetimeTooLong => "lifetime_too_long",
            TokenError::TenantMismatch => "tenant_mismatch",
            TokenError::VersionMismatch => "version_mismatch",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::MissingClientId => "missing_client_id",
        }
    }
}

#[cfg(test)]
mod shape_tests;

#[cfg(test)]
mod tests {
    use super::TokenError;

    /// The place of each error in [`TokenError::ALL`]. The match has no wildcard: a new error
    /// does not compile until it has a place here, and the test below then needs it in `ALL`.
    fn place(error: TokenError) -> usize {
        match error {
            TokenError::MultipleAuthorizationHeaders => 0,
            TokenError::MalformedBearer => 1,
            TokenError::TooLarge => 2,
            TokenError::NotCompactJws => 3,
            TokenError::BadEncoding => 4,
            TokenError::MalformedHeader => 5,
            TokenError::UnsupportedAlgorithm => 6,
            TokenError::CriticalHeader => 7,
            TokenError::MalformedClaims => 8,
            TokenError::GraphToken => 9,
            TokenError::MissingIssuer => 10,
            TokenError::UntrustedIssuer => 11,
            TokenError::MissingKeyId => 12,
            TokenError::UnknownKey => 13,
            TokenError::UnknownKeyRefetchFailed => 14,
            TokenError::BadSignature => 15,
            TokenError::MissingExpiry => 16,
            TokenError::Expired => 17,
            TokenError::NotYetValid => 18,
            TokenError::IssuedInFuture => 19,
            TokenError::LifetimeTooLong => 20,
            TokenError::TenantMismatch => 21,
            TokenError::VersionMismatch => 22,
            TokenError::WrongAudience => 23,
            TokenError::MissingClientId => 24,
        }
    }

    #[test]
    fn every_token_error_is_listed_once_in_order() {
        for (index, error) in TokenError::ALL.into_iter().enumerate() {
            assert_eq!(place(error), index, "{error:?}");
        }
        let mut codes: Vec<&str> = TokenError::ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TokenError::ALL.len(), "codes are distinct");
    }
}
