//! The Entra ID access-token claims the filter reads, with strict JSON types.
//!
//! Time claims must be JSON integers: a string, a float, `null` or a boolean is a malformed
//! token, not a missing claim (a lenient reader here once let `"exp": "never"` through). A claim
//! of the wrong type anywhere in this struct, or a duplicated claim, makes the whole payload
//! malformed. Claims the filter does not read are ignored.

use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// True when any audience satisfies `accept`.
    pub fn any(&self, mut accept: impl FnMut(&str) -> bool) -> bool {
        match self {
            Audience::One(a) => accept(a),
            Audience::Many(list) => list.iter().any(|a| accept(a)),
        }
    }
}

/// The claims of an Entra ID access token that the filter checks or forwards.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EntraClaims {
    /// Issuer; selects the tenant and the token version.
    pub iss: Option<String>,
    /// Audience(s).
    pub aud: Option<Audience>,
    /// Expiry, seconds since the epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    /// Not-before, seconds since the epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    /// Issued-at, seconds since the epoch.
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<i64>,
    /// Tenant id.
    pub tid: Option<String>,
    /// Token version, `1.0` or `2.0`.
    pub ver: Option<String>,
    /// Client application id (v2).
    pub azp: Option<String>,
    /// How the client authenticated (v2): "0" public, "1" secret, "2" certificate.
    pub azpacr: Option<String>,
    /// Client application id (v1).
    pub appid: Option<String>,
    /// How the client authenticated (v1).
    pub appidacr: Option<String>,
    /// App roles granted to the client.
    pub roles: Option<Vec<String>>,
    /// Delegated scopes; present only on user tokens.
    pub scp: Option<IgnoredAny>,
    /// `app` for app-only tokens when the optional claim is configured.
    pub idtyp: Option<String>,
    /// Unique token identifier (for audit logs).
    pub uti: Option<String>,
    /// Service principal object id.
    pub oid: Option<String>,
}

impl EntraClaims {
    /// Parses the decoded payload. It must be UTF-8 throughout (RFC 7519 §7.2 step 10), also
    /// inside the members the filter ignores, which a byte-slice parser would skip unchecked.
    pub fn parse(payload: &[u8]) -> Result<Self, super::TokenError> {
        let text = std::str::from_utf8(payload).map_err(|_| super::TokenError::MalformedClaims)?;
        serde_json::from_str(text).map_err(|_| super::TokenError::MalformedClaims)
    }

    /// True for user (delegated) tokens: they carry `scp`, or an `idtyp` other than `app`.
    pub fn is_delegated(&self) -> bool {
        self.scp.is_some() || self.idtyp.as_deref().is_some_and(|t| t != "app")
    }
}

/// A NumericDate restricted to JSON integers. `null` is an error, not an absent claim.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct IntegerSeconds;
    impl Visitor<'_> for IntegerSeconds {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer number of seconds")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))
        }
    }
    deserializer.deserialize_any(IntegerSeconds).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::TokenError;

    #[test]
    fn entra_v2_claims_are_read() {
        let c = EntraClaims::parse(
            br#"{"aud":"api://x","iss":"i","iat":1,"nbf":2,"exp":3,"azp":"a","azpacr":"2","roles":["R"],"tid":"t","ver":"2.0","idtyp":"app","uti":"u","extra":{"deep":[1,2]}}"#,
        )
        .unwrap();
        assert_eq!(c.exp, Some(3));
        assert_eq!(c.nbf, Some(2));
        assert_eq!(c.aud, Some(Audience::One("api://x".into())));
        assert_eq!(c.roles, Some(vec!["R".into()]));
        assert!(!c.is_delegated());
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_malformed() {
        for claim in ["exp", "nbf", "iat"] {
            for value in [
                "\"1700000000\"",
                "1700000000.5",
                "null",
                "true",
                "[1]",
                "{}",
            ] {
                let json = format!("{{\"{claim}\":{value}}}");
                assert_eq!(
                    EntraClaims::parse(json.as_bytes()).unwrap_err(),
                    TokenError::MalformedClaims,
                    "{json}"
                );
            }
        }
    }

    #[test]
    fn out_of_range_timestamp_is_malformed() {
        assert_eq!(
            EntraClaims::parse(br#"{"exp":18446744073709551615}"#).unwrap_err(),
            TokenError::MalformedClaims
        );
    }

    #[test]
    fn array_valued_issuer_is_malformed() {
        assert_eq!(
            EntraClaims::parse(br#"{"iss":["a","b"]}"#).unwrap_err(),
            TokenError::MalformedClaims
        );
    }

    #[test]
    fn duplicate_claims_are_malformed() {
        assert_eq!(
            EntraClaims::parse(br#"{"exp":1,"exp":99999999999}"#).unwrap_err(),
            TokenError::MalformedClaims
        );
        assert_eq!(
            EntraClaims::parse(br#"{"azp":"a","azp":"b"}"#).unwrap_err(),
            TokenError::MalformedClaims
        );
    }

    #[test]
    fn non_object_payload_is_malformed() {
        for p in ["[]", "1", "\"x\"", "null", "not json", ""] {
            assert_eq!(
                EntraClaims::parse(p.as_bytes()).unwrap_err(),
                TokenError::MalformedClaims,
                "{p}"
            );
        }
    }

    #[test]
    fn payload_that_is_not_utf8_is_malformed_even_in_ignored_claims() {
        for payload in [
            &b"{\"exp\":1,\"sub\":\"a\xdcb\"}"[..],
            b"{\"exp\":1,\"x\xff\":1}",
            b"{\"exp\":1,\"sub\":\"\xc0\xae\"}",
            b"{\"exp\":1}\xff",
        ] {
            assert_eq!(
                EntraClaims::parse(payload).unwrap_err(),
                TokenError::MalformedClaims,
                "{payload:?}"
            );
        }
        assert!(EntraClaims::parse("{\"exp\":1,\"sub\":\"r\u{e9}sum\u{e9}\"}".as_bytes()).is_ok());
    }

    #[test]
    fn audience_may_be_an_array() {
        let c = EntraClaims::parse(br#"{"aud":["a","b"]}"#).unwrap();
        assert!(c.aud.unwrap().any(|a| a == "b"));
    }

    #[test]
    fn scp_or_user_idtyp_marks_a_delegated_token() {
        assert!(EntraClaims::parse(br#"{"scp":"read"}"#)
            .unwrap()
            .is_delegated());
        assert!(EntraClaims::parse(br#"{"idtyp":"user"}"#)
            .unwrap()
            .is_delegated());
        assert!(!EntraClaims::parse(br#"{}"#).unwrap().is_delegated());
    }
}
