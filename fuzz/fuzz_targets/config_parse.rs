//! Arbitrary bytes as the plugin configuration (`compile_policy`), then the compiled policy at
//! work on a few requests.
//!
//! Invariants: no panic; a compiled policy has tenants and clients; each tenant is found by its
//! own v1 and v2 issuer strings and by nothing else; client names and upstream credentials are
//! valid header values; a grant names the client the caller is.

#![no_main]

use jira_entra_guard_core::config::compile_policy;
use jira_entra_guard_core::path::canonical_path;
use jira_entra_guard_core::policy::{Caller, RequestTarget, TenantIndex, TokenVersion};
use libfuzzer_sys::fuzz_target;

const REQUESTS: [(&str, &str); 6] = [
    ("GET", "/rest/api/2/search?jql=project%20%3D%20OPS"),
    ("GET", "/rest/api/2/issue/OPS-1"),
    ("PUT", "/rest/api/2/issue/SEC-12"),
    ("DELETE", "/rest/api/2/issue/10001"),
    ("POST", "/rest/api/2/project/OPS/version"),
    ("GET", "/status"),
];

fn env(name: &str) -> Option<String> {
    match name {
        "JIRA_PAT" => Some("Bearer pat-value".into()),
        "EMPTY" => Some(String::new()),
        "NEWLINE" => Some("Bearer a\r\nx-injected: 1".into()),
        _ => None,
    }
}

fn header_value_ok(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = compile_policy(data, &env) else {
        return;
    };
    assert!(!policy.tenants().is_empty() && !policy.clients().is_empty());
    assert!((0..=600).contains(&policy.clock_skew_seconds()));
    for (index, tenant) in policy.tenants().iter().enumerate() {
        let tid = tenant.tenant_id.to_string();
        // The cloud's issuers or explicit ones: at least one, each naming the tenant, each
        // leading to this tenant and version only, and exact (no case folding).
        assert!(tenant.issuer_v1.is_some() || tenant.issuer_v2.is_some());
        for (issuer, version) in [
            (&tenant.issuer_v1, TokenVersion::V1),
            (&tenant.issuer_v2, TokenVersion::V2),
        ] {
            let Some(issuer) = issuer else { continue };
            assert!(issuer.starts_with("https://") && issuer.contains(&tid), "{issuer}");
            assert_eq!(
                policy.tenant_by_issuer(issuer),
                Some((TenantIndex(index), version))
            );
            assert_eq!(policy.tenant_by_issuer(&issuer.to_uppercase()), None);
        }
        assert!(!tenant.audiences.is_empty());
    }
    let roles: Vec<String> = Vec::new();
    for client in policy.clients() {
        assert!(!client.name().is_empty() && header_value_ok(client.name()));
        assert!(!client.name().contains(' '));
        if let Some(upstream) = client.upstream_authorization() {
            assert!(
                !upstream.is_empty() && header_value_ok(upstream),
                "{upstream:?}"
            );
        }
        let caller = Caller {
            tenant: client.tenant(),
            app_id: client.app_id_text(),
            credential_type: Some("2"),
            roles: &roles,
            delegated: false,
        };
        for (method, raw) in REQUESTS {
            let Ok(path) = canonical_path(raw) else {
                continue;
            };
            let target = RequestTarget {
                method,
                path: &path,
            };
            let _ = policy.is_public(&target);
            if let Ok(grant) = policy.authorize(&caller, &target) {
                assert_eq!(
                    policy.client_of(&caller).map(|c| c.name()),
                    Some(grant.client_name),
                    "a grant names the client the caller is"
                );
            }
        }
    }
});
