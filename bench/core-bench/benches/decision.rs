//! Native micro-benchmarks of the decision core (no Envoy, no Wasm): what one request costs the
//! core itself, with the shipped policy (`envoy.yaml`) and an Entra-shaped key set.
//!
//! - `decide/warm_cache`: the whole pipeline for an allowed `GET /rest/api/2/myself` whose token
//!   is already in the verified-token cache (a client-credentials caller reusing its token).
//! - `decide/cold_verify`: the same request with the cache disabled (size 0), so the token is
//!   parsed, its RS256 signature verified and its claims checked on every call.
//! - `decide/rs256_verify_only`: the signature check alone, for scale.
//! - `decide/token_decode`: what a cache miss costs besides the signature: the token split,
//!   decoded, its header and claims read strictly, routed to its tenant and its claims checked
//!   (`read_unverified`).
//! - `authorize/*`: `canonical_path` + `Policy::authorize` for an already verified caller.
//! - `parse_jwks/entra_3_keys`: parsing a three-key set shaped like Entra ID's (`kty`, `use`,
//!   `kid`, `x5t`, `n`, `e`, `x5c`, `issuer`; no `alg`), certificates checked against `n`/`e`.

use std::hint::black_box;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha1::Digest;
use sha2::Sha256;

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::decide::decide;
use jira_entra_guard_core::outcome::{Decided, Outcome};
use jira_entra_guard_core::jwks::{parse_jwks, KeySet, KeySetState, KeySets, Refetch};
use jira_entra_guard_core::path::canonical_path;
use jira_entra_guard_core::policy::{Caller, Policy, RequestTarget, TenantIndex};
use jira_entra_guard_core::request::RequestHead;
use jira_entra_guard_core::token::verify::read_unverified;
use jira_entra_guard_core::token_cache::{DigestKey, TokenCache};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const API_APP_ID: &str = "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b";
const REPORTING_BOT: &str = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01";
const NOW: i64 = 1_790_000_000;

const ENVOY_YAML: &str = include_str!("../../../envoy.yaml");
const KEY_A: &str = include_str!("../../../core/fixtures/tenant-key-a.pem");
const CERT_A: &str = include_str!("../../../core/fixtures/tenant-key-a.crt");
const KEY_B: &str = include_str!("../../../core/fixtures/tenant-key-b.pem");
const CERT_B: &str = include_str!("../fixtures/tenant-key-b.crt");
const KEY_C: &str = include_str!("../fixtures/key-c.pem");
const CERT_C: &str = include_str!("../fixtures/key-c.crt");

/// The plugin configuration shipped in `envoy.yaml`: the JSON block under `value: |`.
fn shipped_plugin_config() -> String {
    let mut lines = ENVOY_YAML.lines().skip_while(|l| l.trim() != "value: |").skip(1);
    let first = lines.next().expect("envoy.yaml has a `value: |` block");
    let indent = first.len() - first.trim_start().len();
    let mut json = String::from(first.trim_start());
    for line in lines {
        let line_indent = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && line_indent < indent {
            break;
        }
        json.push('\n');
        json.push_str(line.get(indent..).unwrap_or(""));
    }
    json
}

fn policy() -> Policy {
    // legacy-sync's upstream credential comes from the environment; any value will do here.
    compile_policy(shipped_plugin_config().as_bytes(), &|_| {
        Some("Bearer bench".to_owned())
    })
    .expect("the shipped plugin configuration compiles")
}

fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// DER of a PEM certificate.
fn cert_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("certificate PEM")
}

/// A key set entry as Entra ID publishes it: `kid` = `x5t` = certificate thumbprint, no `alg`.
fn entra_jwk(key: &RsaPrivateKey, cert_pem: &str) -> (String, serde_json::Value) {
    let der = cert_der(cert_pem);
    let kid = b64url(sha1::Sha1::digest(&der));
    let entry = json!({
        "kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
        "n": b64url(key.n().to_bytes_be()), "e": b64url(key.e().to_bytes_be()),
        "x5c": [STANDARD.encode(&der)],
        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
    });
    (kid, entry)
}

/// The key sets the core sees: both tenants of the shipped policy publish the same three keys
/// (Microsoft's signing keys are shared across tenants).
struct BenchKeys {
    set: KeySet,
}

impl KeySets for BenchKeys {
    fn state(&self, _tenant: TenantIndex) -> KeySetState<'_> {
        KeySetState::Ready(&self.set)
    }

    fn refetch(&self, _tenant: TenantIndex) -> Refetch {
        Refetch::RateLimited
    }
}

struct Fixture {
    policy: Policy,
    jwks: String,
    keys: BenchKeys,
    kid_a: String,
    bearer: String,
}

impl Fixture {
    fn new() -> Fixture {
        let key_a = RsaPrivateKey::from_pkcs8_pem(KEY_A).expect("key a");
        let key_b = RsaPrivateKey::from_pkcs8_pem(KEY_B).expect("key b");
        let key_c = RsaPrivateKey::from_pkcs8_pem(KEY_C).expect("key c");
        let (kid_a, jwk_a) = entra_jwk(&key_a, CERT_A);
        let (_, jwk_b) = entra_jwk(&key_b, CERT_B);
        let (_, jwk_c) = entra_jwk(&key_c, CERT_C);
        // The signing key is listed last: the key lookup walks the whole set.
        let jwks = json!({ "keys": [jwk_b, jwk_c, jwk_a] }).to_string();
        let set = parse_jwks(jwks.as_bytes()).expect("the key set parses");
        assert_eq!(set.len(), 3, "all three keys usable: {:?}", set.skipped());

        let header = json!({"typ": "JWT", "alg": "RS256", "kid": kid_a});
        let claims = json!({
            "aud": API_APP_ID,
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW + 3600,
            "aio": "k2BgYFjR9/n7W3bench+bZ8lAAA=",
            "azp": REPORTING_BOT, "azpacr": "2", "idtyp": "app",
            "oid": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11",
            "rh": "1.AXwAv4j5cvGGr0GRqy180BHbR7fT4bdaSk5Oipv8HS4_Slt8AAB8AA.",
            "roles": ["Jira.Read"],
            "sub": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11",
            "tid": TENANT, "uti": "bAv9YyXf1kKz0n3dGk8QAA", "ver": "2.0",
        });
        let input = format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()));
        let signature = SigningKey::<Sha256>::new(key_a).sign(input.as_bytes());
        let token = format!("{input}.{}", b64url(signature.to_bytes()));

        Fixture {
            policy: policy(),
            jwks,
            keys: BenchKeys { set },
            kid_a,
            bearer: format!("Bearer {token}"),
        }
    }

    fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: "GET",
            path: "/rest/api/2/myself",
            authorization: vec![self.bearer.as_str()],
            method_overrides: vec![],
            ..Default::default()
        }
    }
}

fn allowed(outcome: &Outcome<'_>) -> bool {
    matches!(outcome, Outcome::Decided(Decided::Allow(Some(_))))
}

fn bench_decide(c: &mut Criterion) {
    let fx = Fixture::new();
    let head = fx.head();
    let mut group = c.benchmark_group("decide");

    let mut cache = TokenCache::new(10_000, DigestKey::new([7; 16]));
    let first = decide(&fx.policy, &head, &fx.keys, &mut cache, NOW);
    assert!(allowed(&first.outcome), "the benchmark request is allowed: {first:?}");
    assert!(!first.cache_hit);
    group.bench_function("warm_cache", |b| {
        b.iter(|| {
            let verdict = decide(&fx.policy, black_box(&head), &fx.keys, &mut cache, NOW);
            debug_assert!(verdict.cache_hit);
            black_box(allowed(&verdict.outcome))
        })
    });

    let mut no_cache = TokenCache::new(0, DigestKey::new([7; 16]));
    let verdict = decide(&fx.policy, &head, &fx.keys, &mut no_cache, NOW);
    assert!(allowed(&verdict.outcome) && !verdict.cache_hit);
    group.bench_function("cold_verify", |b| {
        b.iter(|| {
            let verdict = decide(&fx.policy, black_box(&head), &fx.keys, &mut no_cache, NOW);
            black_box(allowed(&verdict.outcome))
        })
    });

    let key = fx.keys.set.by_kid(&fx.kid_a).expect("key a is in the set");
    let token = fx.bearer.trim_start_matches("Bearer ");
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url signature");
    assert!(key.verify_rs256(input.as_bytes(), &signature));
    group.bench_function("rs256_verify_only", |b| {
        b.iter(|| black_box(key.verify_rs256(black_box(input.as_bytes()), &signature)))
    });

    assert!(read_unverified(token, &fx.policy, NOW).is_ok());
    group.bench_function("token_decode", |b| {
        b.iter(|| black_box(read_unverified(black_box(token), &fx.policy, NOW).is_ok()))
    });
    group.finish();
}

fn bench_authorize(c: &mut Criterion) {
    let fx = Fixture::new();
    let roles = vec!["Jira.Read".to_owned()];
    let caller = Caller {
        tenant: TenantIndex(0),
        app_id: REPORTING_BOT,
        credential_type: Some("2"),
        roles: &roles,
        delegated: false,
    };
    let mut group = c.benchmark_group("canonical_path+authorize");
    // An exact rule, and a wildcard rule reached after the exact ones, with a query string.
    for (name, raw) in [
        ("myself", "/rest/api/2/myself"),
        ("issue_wildcard", "/rest/api/2/issue/OPS-123?fields=summary,status"),
    ] {
        let path = canonical_path(raw).expect("canonical");
        let target = RequestTarget { method: "GET", path: &path };
        assert!(fx.policy.authorize(&caller, &target).is_ok(), "{raw} is allowed");
        group.bench_function(name, |b| {
            b.iter(|| {
                let path = canonical_path(black_box(raw)).expect("canonical");
                let target = RequestTarget { method: black_box("GET"), path: &path };
                black_box(fx.policy.authorize(&caller, &target).is_ok())
            })
        });
    }
    group.finish();
}

fn bench_parse_jwks(c: &mut Criterion) {
    let fx = Fixture::new();
    c.bench_function("parse_jwks/entra_3_keys", |b| {
        b.iter(|| {
            let set = parse_jwks(black_box(fx.jwks.as_bytes())).expect("parses");
            black_box(set.len())
        })
    });
}

criterion_group!(benches, bench_decide, bench_authorize, bench_parse_jwks);
criterion_main!(benches);
