//! Key-set parsing: an Entra ID JWKS document becomes the RS256 verification keys of one tenant.
//!
//! Entra ID key entries carry `kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c` and sometimes `issuer`,
//! and no `alg`. An entry the filter cannot use (another key type, an encryption key, a weak or
//! oversized modulus, an exponent other than 65537, bad base64) is skipped and recorded in
//! [`KeySet::skipped`]; only a document that is not a key set at all, or one without a single
//! usable key, is an error.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::VerifyingKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use sha2::Sha256;

/// Smallest accepted RSA modulus. Entra ID signs with 2048-bit keys; anything smaller is weak.
pub const MIN_MODULUS_BITS: usize = 2048;
/// Largest accepted RSA modulus: bounds the cost of one verification.
pub const MAX_MODULUS_BITS: usize = 4096;
/// The only accepted public exponent. Entra ID uses it; other exponents are refused by policy.
pub const REQUIRED_EXPONENT: u32 = 65_537;
/// A key-set document larger than this is refused before parsing.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Why no usable key set is available for a tenant (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetError {
    /// The key set has not been fetched yet, or every fetch failed.
    Unavailable,
    /// The last good key set is older than the configured staleness bound.
    Stale,
}

impl KeySetError {
    /// Reason for the 503 body.
    pub fn description(&self) -> &'static str {
        match self {
            KeySetError::Unavailable => "signing keys are temporarily unavailable",
            KeySetError::Stale => "signing keys are too old to be trusted",
        }
    }

    /// Stable machine-readable reason for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            KeySetError::Unavailable => "keys_unavailable",
            KeySetError::Stale => "keys_stale",
        }
    }
}

/// Why a fetched document could not become a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Larger than [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// Not JSON, or not an object with a `keys` array.
    NotAKeySet(String),
    /// A well-formed key set with no entry the filter can use.
    NoUsableKey {
        /// Why each entry was skipped.
        skipped: Vec<SkippedKey>,
    },
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::TooLarge => write!(f, "key set larger than {MAX_DOCUMENT_BYTES} bytes"),
            JwksError::NotAKeySet(why) => write!(f, "not a key set: {why}"),
            JwksError::NoUsableKey { skipped } => {
                write!(f, "no usable key ({} skipped", skipped.len())?;
                for s in skipped {
                    write!(f, "; {s}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// An entry of the document that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// The entry's `kid`, when it had a readable one.
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: &'static str,
}

impl std::fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "keys[{}] (kid {kid:?}): {}", self.index, self.reason),
            None => write!(f, "keys[{}]: {}", self.index, self.reason),
        }
    }
}

/// One RS256 verification key, ready to use.
#[derive(Debug, Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    x5t: Option<String>,
    verifier: VerifyingKey<Sha256>,
    modulus_bytes: usize,
}

impl VerificationKey {
    /// Builds a key from its modulus and exponent (big-endian bytes), enforcing the size and
    /// exponent policy.
    pub fn from_components(
        kid: Option<String>,
        x5t: Option<String>,
        n: &[u8],
        e: &[u8],
    ) -> Result<Self, &'static str> {
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        if e != BigUint::from(REQUIRED_EXPONENT) {
            return Err("exponent is not 65537");
        }
        let bits = n.bits();
        if bits < MIN_MODULUS_BITS {
            return Err("modulus shorter than 2048 bits");
        }
        if bits > MAX_MODULUS_BITS {
            return Err("modulus longer than 4096 bits");
        }
        let key = RsaPublicKey::new(n, e).map_err(|_| "not a valid RSA public key")?;
        let modulus_bytes = key.size();
        Ok(VerificationKey {
            kid,
            x5t,
            verifier: VerifyingKey::<Sha256>::new(key),
            modulus_bytes,
        })
    }

    /// The key id, when the entry had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The certificate thumbprint, when the entry had one.
    pub fn x5t(&self) -> Option<&str> {
        self.x5t.as_deref()
    }

    /// Checks an RSASSA-PKCS1-v1_5 SHA-256 signature over `message`.
    pub fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier;
        // A signature must be exactly as long as the modulus (RFC 8017 §8.2.2 step 1).
        if signature.len() != self.modulus_bytes {
            return false;
        }
        match rsa::pkcs1v15::Signature::try_from(signature) {
            Ok(sig) => self.verifier.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// The usable verification keys of one tenant.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// A key set made of the given keys (tests and tools).
    pub fn from_keys(keys: Vec<VerificationKey>) -> Self {
        KeySet {
            keys,
            skipped: Vec::new(),
        }
    }

    /// The key whose `kid` is `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The key whose certificate thumbprint `x5t` is `x5t` (tokens that name no `kid`).
    pub fn by_x5t(&self, x5t: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.x5t.as_deref() == Some(x5t))
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entries of the document that were skipped.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    kid: Option<String>,
    x5t: Option<String>,
    n: Option<String>,
    e: Option<String>,
    key_ops: Option<Vec<String>>,
}

/// Parses a JWKS document into the tenant's usable RS256 keys.
pub fn parse_jwks(body: &[u8]) -> Result<KeySet, JwksError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(JwksError::TooLarge);
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| JwksError::NotAKeySet(e.to_string()))?;
    let mut set = KeySet::default();
    for (index, entry) in document.keys.into_iter().enumerate() {
        match usable_key(entry) {
            Ok(key) => {
                // A repeated kid would make key selection depend on document order.
                if let Some(kid) = key.kid() {
                    if set.by_kid(kid).is_some() {
                        set.skipped.push(SkippedKey {
                            index,
                            kid: Some(kid.to_owned()),
                            reason: "duplicate kid",
                        });
                        continue;
                    }
                }
                set.keys.push(key);
            }
            Err((kid, reason)) => set.skipped.push(SkippedKey { index, kid, reason }),
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKey {
            skipped: set.skipped,
        });
    }
    Ok(set)
}

type Skip = (Option<String>, &'static str);

fn usable_key(entry: serde_json::Value) -> Result<VerificationKey, Skip> {
    let raw: RawKey = serde_json::from_value(entry).map_err(|_| (None, "malformed entry"))?;
    let kid = raw.kid;
    let skip = |reason: &'static str| (kid.clone(), reason);
    if raw.kty.as_deref() != Some("RSA") {
        return Err(skip("not an RSA key"));
    }
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err(skip("not a signing key"));
    }
    // Entra ID omits `alg`; when present it must allow RS256.
    if raw.alg.as_deref().is_some_and(|a| a != "RS256") {
        return Err(skip("alg is not RS256"));
    }
    if let Some(ops) = &raw.key_ops {
        if !ops.iter().any(|op| op == "verify") {
            return Err(skip("key_ops does not allow verify"));
        }
    }
    if kid.is_none() && raw.x5t.is_none() {
        return Err(skip("neither kid nor x5t"));
    }
    let n = raw
        .n
        .as_deref()
        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        .ok_or_else(|| skip("missing or malformed n"))?;
    let e = raw
        .e
        .as_deref()
        .and_then(|e| URL_SAFE_NO_PAD.decode(e).ok())
        .ok_or_else(|| skip("missing or malformed e"))?;
    VerificationKey::from_components(kid.clone(), raw.x5t, &n, &e).map_err(|reason| (kid, reason))
}

/// What the shell knows about a tenant's key set at the moment of a request.
#[derive(Debug, Clone, Copy)]
pub enum KeySetState<'a> {
    /// A usable key set.
    Ready(&'a KeySet),
    /// The first fetch is in flight: the request may wait for it.
    Loading,
    /// No usable key set, and waiting will not help now.
    Unavailable(KeySetError),
}

/// Source of each tenant's current key set; implemented by the shell's key store.
pub trait KeySets {
    /// The key set of the tenant at `index` in [`crate::policy::Policy::tenants`].
    fn state(&self, tenant: crate::policy::TenantIndex) -> KeySetState<'_>;
}
