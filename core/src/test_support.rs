//! Shared test fixtures: keys, token signing, a fixed key store and a reference policy.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::keys::jwks::{parse_jwks, KeySet, KeySetState, KeySets, Refetch};
use crate::policy::{Policy, TenantIndex};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const OTHER_TENANT: &str = "0c9e5a4d-2f7b-4c1e-9d3a-5b6f7e8d9c0a";
pub const API_APP_ID: &str = "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b";
pub const REPORTING_BOT: &str = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01";
pub const NOW: i64 = 1_790_000_000;

pub fn key(name: &str) -> RsaPrivateKey {
    let pem = match name {
        "a" => include_str!("../fixtures/tenant-key-a.pem"),
        "b" => include_str!("../fixtures/tenant-key-b.pem"),
        "attacker" => include_str!("../fixtures/attacker-key.pem"),
        "weak" => include_str!("../fixtures/weak-1024.pem"),
        "e3" => include_str!("../fixtures/exponent-3.pem"),
        other => panic!("no fixture key {other}"),
    };
    RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS entry shaped like Entra ID's (no `alg`).
pub fn jwk(kid: &str, key: &RsaPrivateKey) -> Value {
    json!({
        "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
        "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be()),
    })
}

/// Signs `header` and `claims` (any JSON text) with RS256.
pub fn sign_raw(key: &RsaPrivateKey, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signer = SigningKey::<Sha256>::new(key.clone());
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.to_bytes()))
}

pub fn sign(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    sign_raw(key, &header.to_string(), &claims.to_string())
}

/// Claims of a valid v2 token for reporting-bot at [`NOW`].
pub fn v2_claims() -> Value {
    json!({
        "aud": API_APP_ID,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW + 3300,
        "aio": "E2RgYJg", "azp": REPORTING_BOT, "azpacr": "2",
        "idtyp": "app", "oid": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11",
        "rh": "0.AAAA", "roles": ["Jira.Read"], "sub": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11",
        "tid": TENANT, "uti": "Zx1-abc", "ver": "2.0",
    })
}

/// Claims of a valid v1 token for reporting-bot at [`NOW`].
pub fn v1_claims() -> Value {
    json!({
        "aud": "api://jira-gateway",
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW + 3300,
        "appid": REPORTING_BOT, "appidacr": "2", "idp": format!("https://sts.windows.net/{TENANT}/"),
        "idtyp": "app", "oid": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11", "roles": ["Jira.Read"],
        "sub": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11", "tid": TENANT, "uti": "Zx1-abd", "ver": "1.0",
    })
}

pub fn header(kid: &str) -> Value {
    json!({"typ": "JWT", "alg": "RS256", "kid": kid})
}

/// Key sets per tenant index, fixed for a test; unknown kids are rate-limited unless changed.
pub struct FixedKeys {
    pub sets: Vec<Option<KeySet>>,
    pub refetch: Refetch,
}

impl FixedKeys {
    pub fn new(sets: Vec<Option<KeySet>>) -> Self {
        FixedKeys {
            sets,
            refetch: Refetch::RateLimited,
        }
    }
}

impl KeySets for FixedKeys {
    fn state(&self, tenant: TenantIndex) -> KeySetState<'_> {
        match self.sets.get(tenant.0) {
            Some(Some(set)) => KeySetState::Ready(set),
            _ => KeySetState::Loading,
        }
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        self.refetch
    }
}

/// Tenant 0 publishes keys `a` (kid "key-a") and `b` (kid "key-b"); tenant 1 publishes `a`
/// under kid "shared-a" (Microsoft's keys are shared across tenants).
pub fn keys() -> FixedKeys {
    let t0 = json!({"keys": [jwk("key-a", &key("a")), jwk("key-b", &key("b"))]});
    let t1 = json!({"keys": [jwk("shared-a", &key("a"))]});
    FixedKeys::new(vec![
        Some(parse_jwks(t0.to_string().as_bytes()).unwrap()),
        Some(parse_jwks(t1.to_string().as_bytes()).unwrap()),
    ])
}

pub fn policy_json() -> Value {
    json!({
        "tenants": [
            {"tenant_id": TENANT, "audiences": ["api://jira-gateway", API_APP_ID],
             "jwks": {"cluster": "entra"}},
            {"tenant_id": OTHER_TENANT, "audiences": ["api://jira-gateway"],
             "jwks": {"cluster": "entra"}}
        ],
        "clients": [
            {"name": "reporting-bot", "app_id": REPORTING_BOT, "tenant_id": TENANT,
             "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/issue/*", "/rest/api/2/myself"]}]}
        ],
        "public_paths": [{"methods": ["GET"], "paths": ["/status"]}],
        "clock_skew_seconds": 60
    })
}

pub fn policy() -> Policy {
    crate::config::compile_policy(policy_json().to_string().as_bytes(), &|_| None).unwrap()
}

/// A verified-token cache of `capacity` entries with a fixed digest key.
pub fn test_cache(capacity: usize) -> crate::token_cache::TokenCache {
    crate::token_cache::TokenCache::new(capacity, crate::token_cache::DigestKey::new([7; 16]))
}
