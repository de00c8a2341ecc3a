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

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::decide::decide;
use jira_entra_guard_core::keys::fixed::FixedKeySets;
use jira_entra_guard_core::keys::jwks::{parse_jwks, KeySet};
use jira_entra_guard_core::outcome::{Decided, Outcome};
use jira_entra_guard_core::path::canonical_path;
use jira_entra_guard_core::policy::{Caller, Policy, RequestTarget, TenantIndex};
use jira_entra_guard_core::request::RequestHead;
use jira_entra_guard_core::token::verify::read_unverified;
use jira_entra_guard_core::token_cache::{DigestKey, TokenCache};
use jira_entra_guard_fixtures::{entra_jwk, header, key, sign, v2_claims, NOW, REPORTING_BOT};

const ENVOY_YAML: &str = include_str!("../../../envoy.yaml");

/// The plugin configuration shipped in `envoy.yaml`: the JSON block under `value: |`.
fn shipped_plugin_config() -> String {
    let mut lines = ENVOY_YAML
        .lines()
        .skip_while(|l| l.trim() != "value: |")
        .skip(1);
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

struct Fixture {
    policy: Policy,
    jwks: String,
    /// The three keys every tenant of the shipped policy publishes.
    set: KeySet,
    /// The key sets the core sees: both tenants publish `set` (Microsoft's signing keys are
    /// shared across tenants).
    keys: FixedKeySets,
    kid_a: String,
    bearer: String,
}

impl Fixture {
    fn new() -> Fixture {
        let (kid_a, jwk_a) = entra_jwk("a");
        let (_, jwk_b) = entra_jwk("b");
        let (_, jwk_c) = entra_jwk("c");
        // The signing key is listed last: the key lookup walks the whole set.
        let jwks = json!({ "keys": [jwk_b, jwk_c, jwk_a] }).to_string();
        let set = parse_jwks(jwks.as_bytes()).expect("the key set parses");
        assert_eq!(set.len(), 3, "all three keys usable: {:?}", set.skipped());

        // A v2 token of reporting-bot, valid for an hour, with Entra ID's full claim set.
        let mut claims = v2_claims();
        claims["exp"] = json!(NOW + 3600);
        claims["aio"] = json!("k2BgYFjR9/n7W3bench+bZ8lAAA=");
        claims["rh"] = json!("1.AXwAv4j5cvGGr0GRqy180BHbR7fT4bdaSk5Oipv8HS4_Slt8AAB8AA.");
        claims["uti"] = json!("bAv9YyXf1kKz0n3dGk8QAA");
        let token = sign(&key("a"), &header(&kid_a), &claims);

        let policy = policy();
        Fixture {
            keys: FixedKeySets::same_for_every_tenant(policy.tenants().len(), &set),
            policy,
            jwks,
            set,
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
    assert!(
        allowed(&first.outcome),
        "the benchmark request is allowed: {first:?}"
    );
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

    let key = fx.set.by_kid(&fx.kid_a).expect("key a is in the set");
    let token = fx.bearer.trim_start_matches("Bearer ");
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
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
        (
            "issue_wildcard",
            "/rest/api/2/issue/OPS-123?fields=summary,status",
        ),
    ] {
        let path = canonical_path(raw).expect("canonical");
        let target = RequestTarget {
            method: "GET",
            path: &path,
        };
        assert!(
            fx.policy.authorize(&caller, &target).is_ok(),
            "{raw} is allowed"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let path = canonical_path(black_box(raw)).expect("canonical");
                let target = RequestTarget {
                    method: black_box("GET"),
                    path: &path,
                };
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
