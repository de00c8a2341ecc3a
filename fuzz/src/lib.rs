//! What the fuzz targets share: one fixed policy, one fixed key store holding fixture keys `a`
//! and `b` (keys and ids from `jira-entra-guard-fixtures`), a signer, and independent checks of
//! what an accepted token must satisfy. Nothing here decides anything the filter decides; it only restates the rules
//! in the simplest possible way so a fuzz target can catch the core disagreeing with them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::keys::jwks::{parse_jwks, KeySet, KeySetState, KeySets, Refetch};
use jira_entra_guard_core::policy::{Policy, TenantIndex};
use jira_entra_guard_fixtures::{
    jwk, key, sign_bytes, API_APP_ID, API_URI, CI_PIPELINE, NOW, OTHER_TENANT, REPORTING_BOT,
    TENANT,
};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::Sha256;

/// `clock_skew_seconds` of the fixed policy.
pub const SKEW: i64 = 60;

/// The fixed plugin configuration: two tenants, two clients, an ACL with projects and a deny
/// rule, and a public path.
pub fn policy_json() -> Value {
    json!({
        "tenants": [
            {"tenant_id": TENANT, "audiences": [API_URI, API_APP_ID], "jwks": {"cluster": "entra"}},
            {"tenant_id": OTHER_TENANT, "audiences": [API_URI], "jwks": {"cluster": "entra"}}
        ],
        "clients": [
            {"name": "reporting-bot", "app_id": REPORTING_BOT, "tenant_id": TENANT,
             "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/issue/*",
                                                       "/rest/api/2/myself", "/rest/api/2/project/**"]}]},
            {"name": "ci-pipeline", "app_id": CI_PIPELINE, "tenant_id": TENANT,
             "required_roles": ["Jira.Write"],
             "allow": [{"methods": ["POST"], "paths": ["/rest/api/2/issue"]},
                       {"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS", "SEC"]}],
             "deny": [{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]},
            {"name": "partner-sync", "app_id": REPORTING_BOT, "tenant_id": OTHER_TENANT,
             "allow": [{"methods": ["*"], "paths": ["/rest/api/2/issue/*/comment"]}]}
        ],
        "public_paths": [{"methods": ["GET"], "paths": ["/status"]}],
        "clock_skew_seconds": SKEW
    })
}

/// Tenant 0 publishes key `a` as `key-a` and key `b` as `key-b`; tenant 1 publishes `a` as
/// `shared-a`. A token naming an unknown key is refused at once (the refetch is rate-limited).
pub struct FixedKeys(pub Vec<KeySet>);

impl KeySets for FixedKeys {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        match self.0.get(tenant.0) {
            Some(set) => KeySetState::Ready(set),
            None => KeySetState::Loading,
        }
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        Refetch::RateLimited
    }
}

/// Everything a target needs, built once per process.
pub struct Fixture {
    pub policy: Policy,
    pub keys: FixedKeys,
    pub key_a: RsaPrivateKey,
    pub public_keys: Vec<RsaPublicKey>,
}

impl Fixture {
    fn new() -> Self {
        let (key_a, key_b) = (key("a"), key("b"));
        let (pub_a, pub_b) = (key_a.to_public_key(), key_b.to_public_key());
        let set = |doc: Value| match parse_jwks(doc.to_string().as_bytes()) {
            Ok(set) => set,
            Err(e) => panic!("fixture key set: {e}"),
        };
        let keys = FixedKeys(vec![
            set(json!({"keys": [jwk("key-a", &pub_a), jwk("key-b", &pub_b)]})),
            set(json!({"keys": [jwk("shared-a", &pub_a)]})),
        ]);
        let policy = match compile_policy(policy_json().to_string().as_bytes(), &|_| None) {
            Ok(p) => p,
            Err(e) => panic!("fixture policy: {e}"),
        };
        Fixture {
            policy,
            keys,
            key_a,
            public_keys: vec![pub_a, pub_b],
        }
    }

    /// The process-wide fixture.
    pub fn get() -> &'static Fixture {
        thread_local! {
            static FIXTURE: &'static Fixture = Box::leak(Box::new(Fixture::new()));
        }
        FIXTURE.with(|f| *f)
    }

    /// `BASE64URL(header).BASE64URL(claims).BASE64URL(RS256 signature with key a)`.
    pub fn sign(&self, header: &[u8], claims: &[u8]) -> String {
        sign_bytes(&self.key_a, header, claims)
    }

    /// True when the token's signature verifies under one of the fixture's public keys, checked
    /// here without the filter's key selection.
    pub fn signed_by_a_fixture_key(&self, token: &str) -> bool {
        let Some((input, sig)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        let Ok(sig) = Signature::try_from(sig.as_slice()) else {
            return false;
        };
        self.public_keys.iter().any(|k| {
            VerifyingKey::<Sha256>::new(k.clone())
                .verify(input.as_bytes(), &sig)
                .is_ok()
        })
    }
}

/// Restates the claim rules for an accepted token from its raw payload; returns what is wrong.
pub fn claims_violation(token: &str) -> Option<String> {
    let Some(payload) = token.split('.').nth(1) else {
        return Some("no payload segment".into());
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(payload) else {
        return Some("payload is not base64url".into());
    };
    if let Some(why) = strict_json_violation(&bytes) {
        return Some(format!("payload is not strict JSON: {why}"));
    }
    let Ok(Value::Object(c)) = serde_json::from_slice::<Value>(&bytes) else {
        return Some("payload is not a JSON object".into());
    };
    for name in ["iss", "sub", "jti"] {
        if c.get(name).is_some_and(|v| !v.is_string()) {
            return Some(format!("{name} is not a string"));
        }
    }
    let int = |name: &str| {
        c.get(name)
            .and_then(Value::as_u64)
            .and_then(|t| i64::try_from(t).ok())
    };
    let Some(exp) = int("exp") else {
        return Some("no integer exp".into());
    };
    if NOW > exp.saturating_add(SKEW) {
        return Some(format!("expired: exp {exp}"));
    }
    for name in ["nbf", "iat"] {
        match c.get(name) {
            None => {}
            Some(v) => match v.as_u64().and_then(|t| i64::try_from(t).ok()) {
                Some(t) if t <= NOW.saturating_add(SKEW) => {}
                _ => return Some(format!("{name} {v} not acceptable")),
            },
        }
    }
    let iss = c.get("iss").and_then(Value::as_str).unwrap_or_default();
    let tid = c
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let issuer = [TENANT, OTHER_TENANT].iter().find_map(|t| {
        if iss == format!("https://login.microsoftonline.com/{t}/v2.0") {
            Some((*t, true))
        } else if iss == format!("https://sts.windows.net/{t}/") {
            Some((*t, false))
        } else {
            None
        }
    });
    let Some((tenant, v2)) = issuer else {
        return Some(format!("issuer {iss:?} is not a configured tenant's"));
    };
    if tid != tenant {
        return Some(format!("tid {tid} is not the issuer's tenant {tenant}"));
    }
    let audiences: &[&str] = if tenant == TENANT {
        &[API_URI, API_APP_ID]
    } else {
        &[API_URI]
    };
    // Exactly, or an App ID URI with one trailing slash.
    let aud_ok = |a: &Value| {
        a.as_str().is_some_and(|a| {
            audiences.contains(&a)
                || a.strip_suffix('/')
                    .is_some_and(|a| a.contains("://") && audiences.contains(&a))
        })
    };
    let ok = match c.get("aud") {
        Some(Value::Array(list)) => list.iter().any(aud_ok),
        Some(a) => aud_ok(a),
        None => false,
    };
    if !ok {
        return Some("no accepted audience".into());
    }
    let client = if v2 { "azp" } else { "appid" };
    if c.get(client)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Some(format!("no {client}"));
    }
    None
}

/// Largest magnitude a JSON number in a token may have: 2^53 - 1.
pub const MAX_EXACT_INTEGER: u64 = 9_007_199_254_740_991;
/// Deepest container nesting in a token's JSON; the top-level object is level 1.
pub const MAX_JSON_DEPTH: usize = 8;

/// The strict JSON rules for a token's header and claims, restated on top of serde_json: why
/// `bytes` is not one UTF-8 JSON object without duplicate member names (at any depth, compared
/// unescaped), with numbers within +-(2^53 - 1) and nesting at most [`MAX_JSON_DEPTH`] deep;
/// `None` when it is. serde_json itself refuses bad escapes, unpaired surrogates and numbers
/// that overflow f64.
pub fn strict_json_violation(bytes: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Some("not UTF-8".into());
    };
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Some("not an object".into());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let checked = serde::de::DeserializeSeed::deserialize(StrictValue { depth: 0 }, &mut de)
        .and_then(|()| de.end());
    checked.err().map(|e| e.to_string())
}

#[derive(Clone, Copy)]
struct StrictValue {
    depth: usize,
}

impl StrictValue {
    fn enter<E: serde::de::Error>(self) -> Result<StrictValue, E> {
        let depth = self.depth + 1;
        if depth > MAX_JSON_DEPTH {
            return Err(E::custom("nested too deep"));
        }
        Ok(StrictValue { depth })
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        if v > MAX_EXACT_INTEGER {
            return Err(E::custom("number out of range"));
        }
        Ok(())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_u64(v.unsigned_abs())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        if !v.is_finite() || v.abs() > MAX_EXACT_INTEGER as f64 {
            return Err(E::custom("number out of range"));
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        let mut names = std::collections::HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !names.insert(name) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}
