//! The compact JWS envelope, decoded without trusting anything in it.
//!
//! Only what verification needs is read from the header: `alg` (checked, never used to choose
//! the algorithm), `kid`/`x5t` (key lookup in the tenant's own key set), `crit` and `nonce`
//! (presence, whatever their value, `null` included). Header-supplied keys (`jwk`, `jku`, `x5u`,
//! `x5c`) are ignored. The whole header passes [`super::strict_json::check_object`] first, so a
//! duplicate member, a broken escape, an out-of-range number or deep nesting is refused in every
//! member, read or not: two readers of one token must never see two different headers. `kid`
//! and `x5t`, when present, are non-empty strings (`"kid": null` is not an absent `kid`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::claims::present;
use super::strict_json::check_object;
use super::TokenError;

/// Tokens longer than this are refused before any decoding. Entra ID access tokens are 1–3 KiB;
/// the bound keeps per-request work and allocation small whatever a client sends.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The JOSE header members the filter reads.
#[derive(Debug, Deserialize)]
pub struct JoseHeader {
    /// The algorithm the token claims; must be `RS256`.
    pub alg: String,
    /// Key id in the tenant's key set.
    #[serde(default, deserialize_with = "present")]
    pub kid: Option<String>,
    /// Certificate thumbprint; selects the key when there is no `kid`.
    #[serde(default, deserialize_with = "present")]
    pub x5t: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    nonce: Option<IgnoredAny>,
}

impl JoseHeader {
    /// True when the header lists critical extensions.
    pub fn has_crit(&self) -> bool {
        self.crit.is_some()
    }

    /// True when the header carries `nonce`, which Entra ID adds to Microsoft Graph tokens.
    pub fn has_nonce(&self) -> bool {
        self.nonce.is_some()
    }
}

/// A token split and decoded, not yet verified.
#[derive(Debug)]
pub struct UntrustedToken<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a str,
    /// The decoded header.
    pub header: JoseHeader,
    /// The decoded payload (JSON, not yet parsed).
    pub payload: Vec<u8>,
    /// The encoded signature segment (decoded only when a key was found).
    pub signature_b64: &'a str,
}

impl<'a> UntrustedToken<'a> {
    /// Splits a compact JWS and decodes its header and payload.
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let (signing_input, signature_b64) =
            token.rsplit_once('.').ok_or(TokenError::NotCompactJws)?;
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(TokenError::NotCompactJws)?;
        if payload_b64.contains('.') {
            return Err(TokenError::NotCompactJws);
        }
        let header_json = decode_segment(header_b64)?;
        // UTF-8 and strict JSON throughout, also in members that are skipped (RFC 7515 §5.2
        // step 4).
        let header_text = check_object(&header_json).map_err(|_| TokenError::MalformedHeader)?;
        let header: JoseHeader =
            serde_json::from_str(header_text).map_err(|_| TokenError::MalformedHeader)?;
        if header.kid.as_deref() == Some("") || header.x5t.as_deref() == Some("") {
            return Err(TokenError::MalformedHeader);
        }
        let payload = decode_segment(payload_b64)?;
        Ok(UntrustedToken {
            signing_input,
            header,
            payload,
            signature_b64,
        })
    }

    /// Decodes the signature segment.
    pub fn signature(&self) -> Result<Vec<u8>, TokenError> {
        decode_segment(self.signature_b64)
    }
}

/// Decodes one segment: unpadded base64url with zero trailing bits, nothing else.
fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    if segment.is_empty() {
        return Err(TokenError::BadEncoding);
    }
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str, sig: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), sig)
    }

    #[test]
    fn well_formed_token_is_split_into_its_parts() {
        let t = token(r#"{"alg":"RS256","kid":"k1"}"#, r#"{"a":1}"#, "c2ln");
        let parsed = UntrustedToken::parse(&t).unwrap();
        assert_eq!(parsed.header.alg, "RS256");
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.payload, br#"{"a":1}"#);
        assert_eq!(parsed.signature().unwrap(), b"sig");
        assert!(t.starts_with(parsed.signing_input));
    }

    #[test]
    fn two_four_and_five_segments_are_not_a_compact_jws() {
        let h = b64(r#"{"alg":"RS256"}"#);
        for t in [
            format!("{h}.{h}"),
            format!("{h}.{h}.{h}.{h}"),
            format!("{h}.{h}.{h}.{h}.{h}"),
            h.clone(),
        ] {
            assert_eq!(
                UntrustedToken::parse(&t).unwrap_err(),
                TokenError::NotCompactJws,
                "{t}"
            );
        }
    }

    #[test]
    fn padded_base64_is_refused() {
        // 22 bytes: the padded encoding ends in "==".
        let padded = base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg":"RS256","x":12}"#);
        assert!(padded.ends_with('='));
        let t = format!("{padded}.{}.c2ln", b64("{}"));
        assert_eq!(
            UntrustedToken::parse(&t).unwrap_err(),
            TokenError::BadEncoding
        );
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "si" encodes to "c2k"; "c2l" differs only in trailing bits and decodes to the same bytes.
        let t = format!("{}.{}.c2l", b64(r#"{"alg":"RS256"}"#), b64("{}"));
        let parsed = UntrustedToken::parse(&t).unwrap();
        assert_eq!(parsed.signature().unwrap_err(), TokenError::BadEncoding);
    }

    #[test]
    fn standard_alphabet_is_refused() {
        let t = format!("{}.{}.a+b/", b64(r#"{"alg":"RS256"}"#), b64("{}"));
        let parsed = UntrustedToken::parse(&t).unwrap();
        assert_eq!(parsed.signature().unwrap_err(), TokenError::BadEncoding);
    }

    #[test]
    fn non_object_or_non_json_header_is_malformed() {
        for h in ["[]", "\"RS256\"", "not json", "{\"alg\":5}", "{}", "null"] {
            let t = token(h, "{}", "c2ln");
            assert_eq!(
                UntrustedToken::parse(&t).unwrap_err(),
                TokenError::MalformedHeader,
                "{h}"
            );
        }
    }

    #[test]
    fn header_that_is_not_utf8_is_malformed_even_in_ignored_members() {
        for header in [
            &b"{\"alg\":\"RS256\",\"x5u\":\"a\xdcb\"}"[..],
            b"{\"alg\":\"RS256\",\"\xff\":1}",
        ] {
            let t = format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header), b64("{}"));
            assert_eq!(
                UntrustedToken::parse(&t).unwrap_err(),
                TokenError::MalformedHeader,
                "{header:?}"
            );
        }
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        let t = token(r#"{"alg":"none","alg":"RS256"}"#, "{}", "c2ln");
        assert_eq!(
            UntrustedToken::parse(&t).unwrap_err(),
            TokenError::MalformedHeader
        );
        let t = token(r#"{"alg":"RS256","kid":"a","kid":"b"}"#, "{}", "c2ln");
        assert_eq!(
            UntrustedToken::parse(&t).unwrap_err(),
            TokenError::MalformedHeader
        );
    }

    #[test]
    fn unread_header_members_are_held_to_the_strict_json_rules() {
        for h in [
            r#"{"alg":"RS256","kid":"k","typ":"JWT","typ":"JWT"}"#,
            r#"{"alg":"RS256","kid":"k","jku":"a","jku":"b"}"#,
            r#"{"alg":"RS256","kid":"k","x5u":"\ud800"}"#,
            r#"{"alg":"RS256","kid":"k","n":1e400}"#,
            r#"{"alg":"RS256","kid":"k","jwk":{"e":{"e":{"e":{"e":{"e":{"e":{"e":{}}}}}}}}}"#,
        ] {
            let t = token(h, "{}", "c2ln");
            assert_eq!(
                UntrustedToken::parse(&t).unwrap_err(),
                TokenError::MalformedHeader,
                "{h}"
            );
        }
    }

    #[test]
    fn null_empty_or_non_string_key_ids_are_malformed() {
        for h in [
            r#"{"alg":"RS256","kid":null,"x5t":"t"}"#,
            r#"{"alg":"RS256","kid":"","x5t":"t"}"#,
            r#"{"alg":"RS256","kid":5}"#,
            r#"{"alg":"RS256","kid":["k"]}"#,
            r#"{"alg":"RS256","x5t":null}"#,
            r#"{"alg":"RS256","x5t":""}"#,
        ] {
            let t = token(h, "{}", "c2ln");
            assert_eq!(
                UntrustedToken::parse(&t).unwrap_err(),
                TokenError::MalformedHeader,
                "{h}"
            );
        }
    }

    #[test]
    fn null_crit_and_nonce_count_as_present() {
        let t = token(r#"{"alg":"RS256","crit":null,"nonce":null}"#, "{}", "c2ln");
        let parsed = UntrustedToken::parse(&t).unwrap();
        assert!(parsed.header.has_crit());
        assert!(parsed.header.has_nonce());
    }

    #[test]
    fn oversized_token_is_refused_before_decoding() {
        let t = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(UntrustedToken::parse(&t).unwrap_err(), TokenError::TooLarge);
    }

    #[test]
    fn empty_segments_are_bad_encoding() {
        assert_eq!(
            UntrustedToken::parse("..").unwrap_err(),
            TokenError::BadEncoding
        );
        let t = format!("{}.{}.", b64(r#"{"alg":"RS256"}"#), b64("{}"));
        assert_eq!(
            UntrustedToken::parse(&t).unwrap().signature().unwrap_err(),
            TokenError::BadEncoding
        );
    }

    #[test]
    fn crit_and_nonce_are_noticed() {
        let t = token(
            r#"{"alg":"RS256","crit":["exp"],"nonce":"x"}"#,
            "{}",
            "c2ln",
        );
        let parsed = UntrustedToken::parse(&t).unwrap();
        assert!(parsed.header.has_crit());
        assert!(parsed.header.has_nonce());
    }
}
