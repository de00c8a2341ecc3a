//! Envoy's `verify_signature` foreign function, as data: the filter can hand RSA signature checks
//! to Envoy's native BoringSSL instead of checking them with RSA compiled to Wasm, which is
//! several times slower. This module encodes the function's argument message and decodes its
//! result (both small protobuf messages, `VerifySignatureArguments` and `VerifySignatureResult`
//! of Envoy's `verify_signature.proto`), and carries a known-good probe the shell uses at
//! start-up to find out whether the host has the function and whether it answers correctly.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Name of the foreign function.
pub const FUNCTION: &str = "verify_signature";

/// Serializes `VerifySignatureArguments { hash_function: "sha256", public_key, signature, text }`.
pub fn encode_arguments(public_key_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        16usize
            .saturating_add(public_key_der.len())
            .saturating_add(signature.len())
            .saturating_add(text.len()),
    );
    field(&mut out, 1, b"sha256");
    field(&mut out, 2, public_key_der);
    field(&mut out, 3, signature);
    field(&mut out, 4, text);
    out
}

/// A length-delimited field: key, varint length, bytes.
fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    let mut len = bytes.len();
    loop {
        let low = u8::try_from(len & 0x7f).unwrap_or(0);
        len >>= 7;
        if len == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// Reads `VerifySignatureResult.result` (field 1, a bool). Anything unreadable is `None`; an
/// absent field is `false` (protobuf's default).
pub fn decode_result(message: &[u8]) -> Option<bool> {
    let mut result = false;
    let mut rest = message;
    while let Some((&key, tail)) = rest.split_first() {
        rest = tail;
        match key {
            // field 1, varint
            0x08 => {
                let (value, tail) = varint(rest)?;
                result = value != 0;
                rest = tail;
            }
            // field 2 (error text) or any other length-delimited field
            k if k & 0x07 == 2 => {
                let (len, tail) = varint(rest)?;
                let len = usize::try_from(len).ok()?;
                rest = tail.get(len..)?;
            }
            k if k & 0x07 == 0 => {
                let (_, tail) = varint(rest)?;
                rest = tail;
            }
            _ => return None,
        }
    }
    Some(result)
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        let shift = u32::try_from(i).ok()?.checked_mul(7)?;
        value |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some((value, bytes.get(i.checked_add(1)?..)?));
        }
    }
    None
}

/// A valid RS256 signature (by fixture key `a`) over [`PROBE_MESSAGE`].
pub const PROBE_MESSAGE: &[u8] = b"jira-entra-guard signature probe";

const PROBE_PUBLIC_KEY: &[&str] = &[
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA40J4h1FMZKiKkbXCVT2HKGMmX+JG8/bNPc9Znw394/Sz",
    "LUX7VuR2RWDA19VJGGyudyx6TLgVVF8V278BioRufgNwBJr/Frkvomt0sK87lgQuiyvR4bmPK6nACxpJj36fZ93Q",
    "E+jikh77HRWW2/u6XTEdninowXKeuLWHWS77rVq9FYk484THaG6pcJTJztr2Z3sjsBGfBGGJAJmSAAcyQUNRWJy1",
    "lDFjZ4IWrwU17yRE+GuE8Un9EKd1yu4UJFzK7VtZ7srgs+d20kzVBFbTzuHgh6SPsZOTAsvMZMBZ7s2UqiGDnGkU",
    "cMKYTNw1IzulvXpZPWmxPdrLPQ9e4lWbSQIDAQAB",
];

const PROBE_SIGNATURE: &[&str] = &[
    "EnjEZIjNvW0VBF5NLXBJBLRJ+No7HHFwrujzw9kbjabvgHmkd9WSKQUVgqyb1rh6c+omZrhZ/3bD3atONj1yf1k+",
    "94N4bbjO62e0gTm3KB0QRnbPb+TIWmAYJGyKyjXq7Zo3Yv8GruRVl+kF/U3+dH3UVCfMFXGD0227C54pyrZRbxGO",
    "Fw1hpE42p4QK0i5MfDZzzCIBbolJWb89wJGE1MNXphdzPPV3ngugmn9JZNaOf+dRT8gUndKZIICHfPXY3bDgcL7P",
    "OF4OfGzxi/TpfJtVQojRTAbHmdjx6dHSWgq7gAoMEtKuExGWKQgAPW6/mqkEgwZB3x4ah8zKbPYLDg==",
];

/// The probe's public key (DER SubjectPublicKeyInfo) and signature.
pub fn probe() -> (Vec<u8>, Vec<u8>) {
    let decode = |parts: &[&str]| STANDARD.decode(parts.concat()).unwrap_or_default();
    (decode(PROBE_PUBLIC_KEY), decode(PROBE_SIGNATURE))
}

/// The probe with one signature bit flipped: a host that accepts it is not verifying.
pub fn broken_probe() -> (Vec<u8>, Vec<u8>) {
    let (key, mut signature) = probe();
    if let Some(b) = signature.get_mut(7) {
        *b ^= 0x20;
    }
    (key, signature)
}

#[cfg(test)]
mod tests {
    use rsa::pkcs8::DecodePublicKey;

    use super::*;
    use crate::keys::jwks::VerificationKey;
    use rsa::traits::PublicKeyParts;

    fn probe_key() -> VerificationKey {
        let (der, _) = probe();
        let key = rsa::RsaPublicKey::from_public_key_der(&der).unwrap();
        VerificationKey::from_components(
            Some("probe".into()),
            None,
            &key.n().to_bytes_be(),
            &key.e().to_bytes_be(),
        )
        .unwrap()
    }

    #[test]
    fn probe_vector_is_a_valid_signature() {
        let (_, signature) = probe();
        assert!(probe_key().verify_rs256(PROBE_MESSAGE, &signature));
        let (_, broken) = broken_probe();
        assert!(!probe_key().verify_rs256(PROBE_MESSAGE, &broken));
    }

    #[test]
    fn key_der_of_a_verification_key_is_its_subject_public_key_info() {
        let (der, _) = probe();
        assert_eq!(probe_key().public_key_der(), der.as_slice());
    }

    #[test]
    fn arguments_are_the_protobuf_envoy_expects() {
        let encoded = encode_arguments(&[0xAA; 300], b"sig", b"text");
        assert_eq!(
            &encoded[..8],
            &[0x0A, 6, b's', b'h', b'a', b'2', b'5', b'6']
        );
        // field 2 with a two-byte varint length (300 = 0xAC 0x02)
        assert_eq!(&encoded[8..11], &[0x12, 0xAC, 0x02]);
        assert_eq!(&encoded[311..316], &[0x1A, 3, b's', b'i', b'g']);
        assert_eq!(&encoded[316..], &[0x22, 4, b't', b'e', b'x', b't']);
    }

    #[test]
    fn result_is_read_whatever_else_the_message_carries() {
        assert_eq!(decode_result(&[0x08, 0x01]), Some(true));
        assert_eq!(
            decode_result(&[0x08, 0x00, 0x12, 0x03, b'b', b'a', b'd']),
            Some(false)
        );
        assert_eq!(decode_result(&[0x12, 0x02, b'n', b'o']), Some(false));
        assert_eq!(decode_result(&[]), Some(false));
        assert_eq!(decode_result(&[0x12, 0x05, b'x']), None, "truncated");
        assert_eq!(decode_result(&[0x08]), None, "missing varint");
        assert_eq!(
            decode_result(&[0x0D, 0, 0, 0, 0]),
            None,
            "fixed32 is not expected"
        );
    }
}
