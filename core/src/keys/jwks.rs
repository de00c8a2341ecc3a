//! Key-set parsing: an Entra ID JWKS document becomes the RS256 verification keys of one tenant.
//!
//! Entra ID key entries carry `kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c` and sometimes `issuer`,
//! and no `alg`. An entry the filter cannot use (another key type, an encryption key, a weak or
//! oversized modulus, an exponent other than 65537, bad base64) is skipped and recorded in
//! [`KeySet::skipped`]; only a document that is not a key set at all, or one without a single
//! usable key, is an error.
//!
//! A `kid` that names more than one entry of the document makes every entry with that `kid`
//! unusable (each is recorded as skipped, so the fetch is logged with them once): a token naming
//! that `kid` cannot say which key it means, and picking by document order would make the answer
//! depend on how Entra ID happened to list its keys.
//!
//! When an entry carries a certificate (`x5c`), the certificate must hold the same public key
//! as `n`/`e`, and `x5t`, when present, must be the certificate's SHA-1 thumbprint: an entry
//! whose parts disagree is skipped, since no one can say which part is the real key.

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
    public_key_der: Vec<u8>,
    fingerprint: KeyFingerprint,
}

/// The first 16 bytes of the SHA-256 of a key's DER SubjectPublicKeyInfo: names the key
/// *material*, where `kid` and `x5t` only name whatever the key set publishes under them.
pub type KeyFingerprint = [u8; 16];

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
        let public_key_der = {
            use rsa::pkcs8::EncodePublicKey;
            key.to_public_key_der()
                .map_err(|_| "not a valid RSA public key")?
                .into_vec()
        };
        let fingerprint = {
            use sha2::Digest;
            let digest = Sha256::digest(&public_key_der);
            let mut fingerprint = KeyFingerprint::default();
            for (to, from) in fingerprint.iter_mut().zip(digest.iter()) {
                *to = *from;
            }
            fingerprint
        };
        Ok(VerificationKey {
            kid,
            x5t,
            verifier: VerifyingKey::<Sha256>::new(key),
            modulus_bytes,
            public_key_der,
            fingerprint,
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

    /// What the key material hashes to: equal for equal `n` and `e`, whatever the entry's names.
    pub fn fingerprint(&self) -> &KeyFingerprint {
        &self.fingerprint
    }

    /// The key as a DER SubjectPublicKeyInfo, the form Envoy's `verify_signature` takes.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
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

    /// `N skipped`, followed by each skipped entry and why, for the one log line of a fetch.
    pub fn skipped_summary(&self) -> String {
        let mut summary = format!("{} skipped", self.skipped.len());
        for (i, skipped) in self.skipped.iter().enumerate() {
            summary.push_str(if i == 0 { " (" } else { "; " });
            summary.push_str(&skipped.to_string());
        }
        if !self.skipped.is_empty() {
            summary.push(')');
        }
        summary
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
    x5c: Option<Vec<String>>,
}

/// Parses a JWKS document into the tenant's usable RS256 keys.
pub fn parse_jwks(body: &[u8]) -> Result<KeySet, JwksError> {
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(JwksError::TooLarge);
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| JwksError::NotAKeySet(e.to_string()))?;
    let ambiguous = repeated_kids(&document.keys);
    let mut set = KeySet::default();
    for (index, entry) in document.keys.into_iter().enumerate() {
        match usable_key(entry) {
            Ok(key)
                if key
                    .kid()
                    .is_some_and(|kid| ambiguous.iter().any(|a| a == kid)) =>
            {
                set.skipped.push(SkippedKey {
                    index,
                    kid: key.kid,
                    reason: DUPLICATE_KID,
                });
            }
            Ok(key) => set.keys.push(key),
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

/// Why an entry whose `kid` another entry repeats is skipped.
pub const DUPLICATE_KID: &str = "duplicate kid: no entry with this kid is used";

/// The `kid`s that more than one entry names (usable entries or not).
fn repeated_kids(entries: &[serde_json::Value]) -> Vec<String> {
    let mut kids: Vec<&str> = entries
        .iter()
        .filter_map(|entry| entry.get("kid")?.as_str())
        .collect();
    kids.sort_unstable();
    let mut repeated: Vec<&str> = kids
        .iter()
        .zip(kids.iter().skip(1))
        .filter(|(a, b)| a == b)
        .map(|(a, _)| *a)
        .collect();
    repeated.dedup();
    repeated.into_iter().map(str::to_owned).collect()
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
    if let Some(chain) = &raw.x5c {
        let leaf = chain.first().ok_or_else(|| skip("x5c is empty"))?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(leaf)
            .map_err(|_| skip("x5c certificate is not base64"))?;
        let (cert_n, cert_e) =
            certificate_rsa_key(&der).ok_or_else(|| skip("x5c is not an RSA certificate"))?;
        if strip_leading_zeros(&cert_n) != strip_leading_zeros(&n)
            || strip_leading_zeros(&cert_e) != strip_leading_zeros(&e)
        {
            return Err(skip("x5c certificate key differs from n/e"));
        }
        if let Some(x5t) = &raw.x5t {
            use sha1::Digest;
            if *x5t != URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der)) {
                return Err(skip("x5t is not the x5c certificate's thumbprint"));
            }
        }
    }
    VerificationKey::from_components(kid.clone(), raw.x5t, &n, &e).map_err(|reason| (kid, reason))
}

/// The RSA modulus and exponent of a DER X.509 certificate's subject public key.
fn certificate_rsa_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key = RsaPublicKey::from_pkcs1_der(spki.subject_public_key.as_bytes()?).ok()?;
    Some((key.n().to_bytes_be(), key.e().to_bytes_be()))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
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

/// Whether a token naming an unknown key may cause the tenant's key set to be fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetch {
    /// No fetch is running and the rate limit allows one: fetch and wait for it.
    Allowed,
    /// A fetch is already running: wait for it.
    InFlight,
    /// A refetch happened too recently: decide with the current set.
    RateLimited,
    /// The last fetch failed and none is running: decide with the current set now rather than
    /// press a failing key server outside its retry schedule.
    Failed,
}

/// Source of each tenant's current key set; implemented by the shell's key store.
pub trait KeySets {
    /// The key set of the tenant at `index` in [`crate::policy::Policy::tenants`].
    fn state(&self, tenant: crate::policy::TenantIndex) -> KeySetState<'_>;

    /// Whether an unknown `kid` may trigger a refetch of the tenant's key set now.
    fn refetch(&self, tenant: crate::policy::TenantIndex) -> Refetch;

    /// Checks an RS256 signature with `key`; by default with RSA compiled into the module.
    fn verify_rs256(&self, key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool {
        key.verify_rs256(message, signature)
    }
}

/// Something that checks RS256 signatures (Envoy's native crypto, or RSA in Wasm).
pub trait SignatureVerifier {
    /// True when `signature` is a valid RS256 signature of `message` under `key`.
    fn verify_rs256(&self, key: &VerificationKey, message: &[u8], signature: &[u8]) -> bool;
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::test_support::{b64, jwk, key};

    fn parse(keys: Vec<Value>) -> Result<KeySet, JwksError> {
        parse_jwks(json!({ "keys": keys }).to_string().as_bytes())
    }

    fn skipped_reason(entry: Value) -> &'static str {
        let set = parse(vec![entry, jwk("good", &key("a"))]).unwrap();
        assert_eq!(set.len(), 1);
        set.skipped()[0].reason
    }

    #[test]
    fn entra_shaped_entry_without_alg_is_usable() {
        let set = parse(vec![jwk("k1", &key("a")), jwk("k2", &key("b"))]).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.by_kid("k2").is_some());
        assert!(set.by_x5t("k1").is_some());
        assert!(set.by_kid("k3").is_none());
    }

    #[test]
    fn unusable_entries_are_skipped_not_fatal() {
        let mut ec = jwk("ec", &key("a"));
        ec["kty"] = json!("EC");
        assert_eq!(skipped_reason(ec), "not an RSA key");
        let mut enc = jwk("enc", &key("a"));
        enc["use"] = json!("enc");
        assert_eq!(skipped_reason(enc), "not a signing key");
        let mut ps = jwk("ps", &key("a"));
        ps["alg"] = json!("PS256");
        assert_eq!(skipped_reason(ps), "alg is not RS256");
        assert_eq!(
            skipped_reason(jwk("weak", &key("weak"))),
            "modulus shorter than 2048 bits"
        );
        assert_eq!(
            skipped_reason(jwk("e3", &key("e3"))),
            "exponent is not 65537"
        );
        let mut bad_n = jwk("bad", &key("a"));
        bad_n["n"] = json!("not base64!");
        assert_eq!(skipped_reason(bad_n), "missing or malformed n");
        assert_eq!(skipped_reason(json!("not an object")), "malformed entry");
        let mut ops = jwk("ops", &key("a"));
        ops["key_ops"] = json!(["encrypt"]);
        assert_eq!(skipped_reason(ops), "key_ops does not allow verify");
    }

    #[test]
    fn explicit_rs256_alg_is_accepted() {
        let mut entry = jwk("k", &key("a"));
        entry["alg"] = json!("RS256");
        assert_eq!(parse(vec![entry]).unwrap().len(), 1);
    }

    #[test]
    fn duplicate_kid_makes_every_entry_with_it_unusable() {
        let set = parse(vec![
            jwk("k", &key("a")),
            jwk("other", &key("a")),
            jwk("k", &key("b")),
        ])
        .unwrap();
        assert_eq!(set.len(), 1, "only the unambiguous key survives");
        assert!(
            set.by_kid("k").is_none(),
            "neither the first nor the second"
        );
        assert!(set.by_kid("other").is_some());
        let skipped: Vec<_> = set.skipped().iter().map(|s| (s.index, s.reason)).collect();
        assert_eq!(skipped, [(0, DUPLICATE_KID), (2, DUPLICATE_KID)]);
        assert_eq!(
            set.skipped_summary(),
            "2 skipped (keys[0] (kid \"k\"): duplicate kid: no entry with this kid is used; \
             keys[2] (kid \"k\"): duplicate kid: no entry with this kid is used)"
        );
        // The entries are unusable by their x5t too: the key is gone, not just its kid.
        assert!(set.by_x5t("k").is_none());
    }

    #[test]
    fn duplicate_kid_counts_entries_that_are_unusable_for_other_reasons() {
        let mut enc = jwk("k", &key("b"));
        enc["use"] = json!("enc");
        let set = parse(vec![enc, jwk("k", &key("a")), jwk("good", &key("a"))]).unwrap();
        assert!(set.by_kid("k").is_none());
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_set_whose_only_kid_is_duplicated_has_no_usable_key() {
        let same = jwk("k", &key("a"));
        assert!(matches!(
            parse(vec![same.clone(), same]),
            Err(JwksError::NoUsableKey { skipped }) if skipped.len() == 2
        ));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        let mut enc = jwk("enc", &key("a"));
        enc["use"] = json!("enc");
        assert!(
            matches!(parse(vec![enc]), Err(JwksError::NoUsableKey { skipped }) if skipped.len() == 1)
        );
        assert!(matches!(parse(vec![]), Err(JwksError::NoUsableKey { .. })));
    }

    #[test]
    fn documents_that_are_not_key_sets_are_errors() {
        for body in [&b"not json"[..], b"[]", b"{}", b"{\"keys\":{}}", b""] {
            assert!(
                matches!(parse_jwks(body), Err(JwksError::NotAKeySet(_))),
                "{body:?}"
            );
        }
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(parse_jwks(&huge).unwrap_err(), JwksError::TooLarge);
    }

    /// A self-signed certificate for fixture key `a` (see fixtures/README.md).
    fn cert_a() -> Vec<u8> {
        crate::test_support::certificate_der("a")
    }

    fn with_cert(kid: &str, key_name: &str, cert: &[u8], x5t: Option<String>) -> Value {
        let mut entry = jwk(kid, &key(key_name));
        entry["x5c"] = json!([base64::engine::general_purpose::STANDARD.encode(cert)]);
        match x5t {
            Some(t) => entry["x5t"] = json!(t),
            None => {
                entry.as_object_mut().unwrap().remove("x5t");
            }
        }
        entry
    }

    fn thumbprint(der: &[u8]) -> String {
        crate::test_support::thumbprint(der)
    }

    #[test]
    fn certificate_matching_the_key_and_thumbprint_is_accepted() {
        let cert = cert_a();
        let set = parse(vec![with_cert("k", "a", &cert, Some(thumbprint(&cert)))]).unwrap();
        assert_eq!(set.len(), 1);
        let set = parse(vec![with_cert("k", "a", &cert, None)]).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn certificate_of_another_key_is_skipped() {
        let cert = cert_a();
        assert_eq!(
            skipped_reason(with_cert("k", "b", &cert, Some(thumbprint(&cert)))),
            "x5c certificate key differs from n/e"
        );
    }

    #[test]
    fn thumbprint_that_is_not_the_certificates_is_skipped() {
        let cert = cert_a();
        assert_eq!(
            skipped_reason(with_cert("k", "a", &cert, Some(b64([7u8; 20])))),
            "x5t is not the x5c certificate's thumbprint"
        );
    }

    #[test]
    fn key_set_reports_what_it_holds() {
        let set = parse(vec![jwk("k1", &key("a"))]).unwrap();
        assert!(!set.is_empty());
        let k1 = set.by_kid("k1").unwrap();
        assert_eq!((k1.kid(), k1.x5t()), (Some("k1"), Some("k1")));
        let rebuilt = KeySet::from_keys(vec![k1.clone()]);
        assert_eq!(rebuilt.len(), 1);
        assert!(rebuilt.by_kid("k1").is_some());
        assert!(KeySet::from_keys(vec![]).is_empty());
    }

    #[test]
    fn key_set_errors_name_their_reasons() {
        assert_eq!(KeySetError::Unavailable.code(), "keys_unavailable");
        assert_eq!(KeySetError::Stale.code(), "keys_stale");
        assert_eq!(
            KeySetError::Unavailable.description(),
            "signing keys are temporarily unavailable"
        );
        assert_eq!(
            KeySetError::Stale.description(),
            "signing keys are too old to be trusted"
        );
        assert_eq!(
            JwksError::TooLarge.to_string(),
            "key set larger than 524288 bytes"
        );
        assert_eq!(
            JwksError::NotAKeySet("why".into()).to_string(),
            "not a key set: why"
        );
        let skipped = vec![
            SkippedKey {
                index: 0,
                kid: Some("k".into()),
                reason: "not an RSA key",
            },
            SkippedKey {
                index: 1,
                kid: None,
                reason: "malformed entry",
            },
        ];
        assert_eq!(
            JwksError::NoUsableKey { skipped }.to_string(),
            "no usable key (2 skipped; keys[0] (kid \"k\"): not an RSA key; keys[1]: malformed entry)"
        );
    }

    #[test]
    fn leading_zeros_are_stripped_and_nothing_else() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0, 2]), [1, 0, 2]);
        assert_eq!(strip_leading_zeros(&[3, 0, 1]), [3, 0, 1]);
        // Moduli without a zero byte stay whole: two of them never compare equal by accident.
        assert_eq!(strip_leading_zeros(&[0xc5, 0x17, 0xff]), [0xc5, 0x17, 0xff]);
        assert_ne!(
            strip_leading_zeros(&[0xc5, 0x17]),
            strip_leading_zeros(&[0xd2, 0x81])
        );
        assert!(strip_leading_zeros(&[0, 0]).is_empty());
    }

    #[test]
    fn certificate_matches_n_written_with_a_leading_zero() {
        let cert = cert_a();
        let mut entry = with_cert("k", "a", &cert, None);
        let mut n = vec![0u8];
        n.extend(key("a").n().to_bytes_be());
        entry["n"] = json!(b64(n));
        assert_eq!(parse(vec![entry]).unwrap().len(), 1);
    }

    #[test]
    fn key_set_document_size_limit_is_exact() {
        let at_limit = vec![b' '; MAX_DOCUMENT_BYTES];
        assert!(matches!(
            parse_jwks(&at_limit),
            Err(JwksError::NotAKeySet(_))
        ));
        let over = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(parse_jwks(&over).unwrap_err(), JwksError::TooLarge);
    }

    #[test]
    fn garbage_certificate_is_skipped() {
        assert_eq!(
            skipped_reason(with_cert("k", "a", b"not a certificate", None)),
            "x5c is not an RSA certificate"
        );
        let mut entry = jwk("k", &key("a"));
        entry["x5c"] = json!([]);
        assert_eq!(skipped_reason(entry), "x5c is empty");
    }
}
