//! A JSON reader for request bodies the decision reads, strict where Jira's parser and this one
//! could otherwise disagree: the text must be UTF-8 JSON (RFC 8259, no byte-order mark, no
//! comments, no trailing commas; lone surrogate escapes are refused) and no object may repeat a
//! member name, compared after unescaping and regardless of ASCII letter case. Jira's parser
//! keeps the last of two equal names; refusing them means the gateway never checks one
//! `project` while Jira files the issue under another.
//!
//! Escapes are decoded as every JSON parser decodes them: `"\u004fPS"` is `"OPS"` here and in
//! Jira alike.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value whose objects keep their members in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string, escapes decoded.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object; member names are unique (ignoring ASCII case).
    Object(Vec<(String, JsonValue)>),
}

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonRejection {
    /// Not valid UTF-8 JSON.
    Invalid,
    /// An object repeats a member name.
    DuplicateMember,
}

const DUPLICATE: &str = "duplicate member name";

/// Parses a whole body.
pub fn parse(body: &[u8]) -> Result<JsonValue, JsonRejection> {
    serde_json::from_slice::<JsonValue>(body).map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) {
            JsonRejection::DuplicateMember
        } else {
            JsonRejection::Invalid
        }
    })
}

impl JsonValue {
    /// The member `name` of an object (`None` for other values).
    pub fn get(&self, name: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(members) => members.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::String(text) => Some(text),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonValue, E> {
        serde_json::Number::from_f64(v)
            .map(JsonValue::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        let mut members: Vec<(String, JsonValue)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(A::Error::custom(DUPLICATE));
            }
            let value = map.next_value()?;
            members.push((name, value));
        }
        Ok(JsonValue::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_body_is_read_with_escapes_decoded() {
        let value =
            parse(br#"{"fields": {"project": {"key": "\u004fPS"}}, "n": [1, -2.5, null, true]}"#)
                .unwrap();
        assert_eq!(
            value
                .get("fields")
                .and_then(|f| f.get("project"))
                .and_then(|p| p.get("key")),
            Some(&JsonValue::String("OPS".into()))
        );
    }

    #[test]
    fn repeated_member_names_are_refused_at_any_depth_and_in_any_case() {
        for body in [
            r#"{"a": 1, "a": 2}"#,
            r#"{"fields": {"project": {"key": "OPS", "key": "SEC"}}}"#,
            r#"{"fields": {"project": {"key": "OPS", "KEY": "SEC"}}}"#,
            r#"{"fields": {"project": {"key": "OPS", "\u006bey": "SEC"}}}"#,
            r#"[{"x": {"y": 1, "y": 1}}]"#,
        ] {
            assert_eq!(
                parse(body.as_bytes()),
                Err(JsonRejection::DuplicateMember),
                "{body}"
            );
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [
            &b""[..],
            b"{",
            b"{\"a\": 1,}",
            b"{\"a\": 1} x",
            b"\xef\xbb\xbf{}",
            b"{\"a\": \"\xff\"}",
            b"{\"a\": \"\\ud800\"}",
            b"// c\n{}",
            b"{'a': 1}",
            b"{a: 1}",
        ] {
            assert_eq!(parse(body), Err(JsonRejection::Invalid), "{body:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let body = "[".repeat(100_000);
        assert_eq!(parse(body.as_bytes()), Err(JsonRejection::Invalid));
    }
}
