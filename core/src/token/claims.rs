//! The Entra ID access-token claims the filter reads, with strict JSON types.
//!
//! The payload first passes [`super::strict_json::check_object`] (no duplicate member at any
//! depth, no broken escapes, no out-of-range numbers, no deep nesting), so members the filter
//! does not read are held to the same rules as those it does.
//!
//! The registered claims (RFC 7519 §4.1) have their registered types whenever they are present,
//! read by the filter or not: `iss`, `sub`, `jti` are strings; `aud` is a string or an array of
//! strings; `exp`, `nbf`, `iat` are non-negative JSON integers written without a fraction, an
//! exponent or a sign (`-0`, `1.7e9` and `1700000000.0` are malformed, not rounded). `null` is
//! not an absent claim but a claim of the wrong type. A claim of the wrong type makes the whole
//! payload malformed (a lenient reader here once let `"exp": "never"` through).

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
    #[serde(default, deserialize_with = "present")]
    pub iss: Option<String>,
    /// Audience(s).
    #[serde(default, deserialize_with = "present")]
    pub aud: Option<Audience>,
    /// `sub`: not read, but a string when present.
    #[serde(default, rename = "sub", deserialize_with = "present")]
    _subject: Option<Text>,
    /// `jti`: not read, but a string when present.
    #[serde(default, rename = "jti", deserialize_with = "present")]
    _token_id: Option<Text>,
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
        let text = super::strict_json::check_object(payload)
            .map_err(|_| super::TokenError::MalformedClaims)?;
        serde_json::from_str(text).map_err(|_| super::TokenError::MalformedClaims)
    }

    /// True for user (delegated) tokens: they carry `scp`, or an `idtyp` other than `app`.
    pub fn is_delegated(&self) -> bool {
        self.scp.is_some() || self.idtyp.as_deref().is_some_and(|t| t != "app")
    }
}

/// A member that, when present, must have type `T`: `null` is refused rather than read as an
/// absent member (`Option`'s own reading). With `#[serde(default)]`, absent stays `None`.
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A string member whose value is not kept.
#[derive(Debug, Clone, Copy)]
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyString;
        impl Visitor<'_> for AnyString {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        deserializer.deserialize_str(AnyString)
    }
}

/// A NumericDate restricted to non-negative JSON integers. `null` is an error, not an absent
/// claim; so is `-0`, which the JSON reader hands over as a float.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct IntegerSeconds;
    impl Visitor<'_> for IntegerSeconds {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer number of seconds")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            if v < 0 {
                return Err(E::custom("negative timestamp"));
            }
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
    fn negative_or_signed_time_claims_are_malformed() {
        for claim in ["exp", "nbf", "iat"] {
            for value in ["-1", "-1790000000", "-0", "1.79e9", "1790000000.0", "0.0"] {
                let json = format!("{{\"{claim}\":{value}}}");
                assert_eq!(
                    EntraClaims::parse(json.as_bytes()).unwrap_err(),
                    TokenError::MalformedClaims,
                    "{json}"
                );
            }
        }
        let zero = EntraClaims::parse(br#"{"exp":0,"nbf":0,"iat":0}"#).unwrap();
        assert_eq!((zero.exp, zero.nbf, zero.iat), (Some(0), Some(0), Some(0)));
    }

    #[test]
    fn registered_string_claims_of_another_type_are_malformed_though_unread() {
        for claim in ["sub", "jti", "iss"] {
            for value in ["1", "null", "true", "[\"a\"]", "{}"] {
                let json = format!("{{\"{claim}\":{value}}}");
                assert_eq!(
                    EntraClaims::parse(json.as_bytes()).unwrap_err(),
                    TokenError::MalformedClaims,
                    "{json}"
                );
            }
        }
        assert!(EntraClaims::parse(br#"{"sub":"s","jti":"j","iss":"i"}"#).is_ok());
    }

    #[test]
    fn null_or_non_string_audience_is_malformed() {
        for value in ["null", "1", "[1]", "[\"a\",null]", "{}"] {
            let json = format!("{{\"aud\":{value}}}");
            assert_eq!(
                EntraClaims::parse(json.as_bytes()).unwrap_err(),
                TokenError::MalformedClaims,
                "{json}"
            );
        }
    }

    #[test]
    fn unread_members_are_held_to_the_strict_json_rules() {
        for payload in [
            r#"{"exp":1,"sub":"a","sub":"a"}"#,
            r#"{"exp":1,"xms_tcdt":1,"xms_tcdt":1}"#,
            r#"{"exp":1,"unknown":{"x":1,"x":1}}"#,
            r#"{"exp":1,"x":"\ud800"}"#,
            r#"{"exp":1,"x":1e400}"#,
            r#"{"exp":1,"x":[[[[[[[[1]]]]]]]]}"#,
        ] {
            assert_eq!(
                EntraClaims::parse(payload.as_bytes()).unwrap_err(),
                TokenError::MalformedClaims,
                "{payload}"
            );
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
