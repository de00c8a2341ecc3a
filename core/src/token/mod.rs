//! Bearer-token verification: the compact JWS envelope, the Entra ID claims, and the checks that
//! turn an untrusted token into a verified caller.

/// Why a presented token is not acceptable (401 `invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The token is not a compact JWS.
    Malformed,
}

impl TokenError {
    /// Reason for `error_description` and the body.
    pub fn description(&self) -> &'static str {
        "token is malformed"
    }
}
