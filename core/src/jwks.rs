//! Key-set parsing: an Entra ID JWKS document becomes the RS256 verification keys of one tenant.
//! Entries the filter cannot use are skipped and counted, never fatal.

/// Why no usable key set is available for a tenant (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetError {
    /// The key set has not been fetched yet, or every fetch failed.
    Unavailable,
}

impl KeySetError {
    /// Reason for the 503 body.
    pub fn description(&self) -> &'static str {
        "signing keys are temporarily unavailable"
    }
}

/// The usable verification keys of one tenant.
#[derive(Debug, Clone, Default)]
pub struct KeySet {}
