//! The `jira-entra-guard` binary as an operator runs it: exit codes and output of `validate`,
//! `check` (flags, signed tokens, decode-only) and `schema`, and the checked-in schema kept in
//! step with the types it is generated from.

// This whole file is test code; clippy.toml's test allowances cover only `#[test]` functions,
// not the helpers an integration test shares between them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use jira_entra_guard_core::config::{compile_policy, schema};
use jira_entra_guard_fixtures::{header, jwk, key, v2_claims, API_URI, NOW, OTHER_TENANT, TENANT};
use jira_entra_guard_fixtures::{CI_PIPELINE as CI, REPORTING_BOT as REPORTING};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_with_env(args, &[])
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_jira-entra-guard"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("JIRA_PAT_LEGACY_SYNC")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A new file under this test binary's scratch directory; a fresh name on every call, since
/// the tests run in parallel.
fn scratch(name: &str, contents: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Two clients in one tenant; ci-pipeline needs a role and may not delete.
fn config() -> Value {
    json!({
        "tenants": [{"tenant_id": TENANT, "audiences": ["api://jira-gateway"], "jwks": {"cluster": "entra"}}],
        "clients": [
            {"name": "reporting-bot", "app_id": REPORTING,
             "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/issue/*"]}]},
            {"name": "ci-pipeline", "app_id": CI, "required_roles": ["Jira.Write"],
             "upstream_authorization_env": "JIRA_PAT_CI",
             "allow": [{"methods": ["POST"], "paths": ["/rest/api/2/issue"]},
                       {"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS"]}],
             "deny": [{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]}
        ],
        "public_paths": [{"methods": ["GET"], "paths": ["/status"]}]
    })
}

fn config_file(name: &str, config: &Value) -> String {
    scratch(name, &config.to_string())
}

fn sign(key: &RsaPrivateKey, kid: &str, claims: &Value) -> String {
    jira_entra_guard_fixtures::sign(key, &header(kid), claims)
}

/// A JWKS file shaped like Entra ID's, with the public half of `key`.
fn jwks_file(name: &str, kid: &str, key: &RsaPrivateKey) -> String {
    scratch(name, &json!({"keys": [jwk(kid, key)]}).to_string())
}

/// A v2 application token of `app_id` at [`NOW`], for the App ID URI.
fn claims(app_id: &str, roles: &[&str]) -> Value {
    let mut claims = v2_claims();
    claims["aud"] = json!(API_URI);
    claims["azp"] = json!(app_id);
    claims["roles"] = json!(roles);
    claims
}

fn check_token(config: &str, method: &str, path: &str, token: &str, jwks: &str) -> Run {
    let now = NOW.to_string();
    run(&[
        "check",
        config,
        "--method",
        method,
        "--path",
        path,
        "--token",
        token,
        "--jwks",
        jwks,
        "--now",
        &now,
        "--env",
        "JIRA_PAT_CI=Bearer ci-pat",
    ])
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn validate_accepts_a_configuration_and_counts_tenants_and_clients() {
    let file = config_file("valid.json", &config());
    let out = run(&["validate", &file, "--env", "JIRA_PAT_CI=Bearer ci-pat"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ok: 1 tenant, 2 clients\n")
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn validate_refuses_with_the_filters_own_log_line() {
    let mut document = config();
    document["tenants"][0]["tenant_id"] = json!("abc");
    let file = config_file("bad-guid.json", &document);
    let out = run(&["validate", &file, "--env", "JIRA_PAT_CI=x"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "configuration refused: tenants[0].tenant_id: \"abc\" is not a GUID\n"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn validate_names_a_missing_upstream_credential_variable() {
    let file = config_file("needs-env.json", &config());
    let out = run(&["validate", &file]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "configuration refused: clients[1].upstream_authorization_env: environment variable \"JIRA_PAT_CI\" is not set\n"
    );
}

#[test]
fn validate_reads_upstream_credentials_from_the_process_environment() {
    let file = config_file("process-env.json", &config());
    let out = run_with_env(&["validate", &file], &[("JIRA_PAT_CI", "Bearer from-env")]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ok: 1 tenant, 2 clients\n")
    );
}

#[test]
fn validate_with_ignore_missing_env_uses_a_placeholder_and_says_so() {
    let file = config_file("placeholder.json", &config());
    let out = run(&["validate", &file, "--ignore-missing-env"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ok: 1 tenant, 2 clients\n")
    );
    assert_eq!(
        out.stderr,
        "note: environment variable \"JIRA_PAT_CI\" is not set; a placeholder was used (--ignore-missing-env)\n"
    );
}

#[test]
fn validate_accepts_the_shipped_envoy_yaml() {
    let out = run(&["validate", "../envoy.yaml"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("ok: 2 tenants, "), "{}", out.stdout);
    assert_eq!(out.stderr, "");
    // The VM's key_values may be overridden with --env.
    let out = run(&[
        "validate",
        "../envoy.yaml",
        "--env",
        "JIRA_PAT_LEGACY_SYNC=Bearer other",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn validate_of_an_envoy_file_reports_the_plugins_error() {
    let yaml = std::fs::read_to_string(format!("{ROOT}/envoy.yaml")).unwrap();
    let broken = yaml.replacen(
        "\"tenant_id\": \"72f988bf-86f1-41af-91ab-2d7cd011db47\",\n                          \"audiences\"",
        "\"tenant_id\": \"abc\",\n                          \"audiences\"",
        1,
    );
    assert_ne!(
        broken, yaml,
        "envoy.yaml no longer has the expected first tenant"
    );
    let file = scratch("broken-envoy.yaml", &broken);
    let out = run(&["validate", &file]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "configuration refused: tenants[0].tenant_id: \"abc\" is not a GUID\n"
    );
}

/// An Envoy file whose VM takes JIRA_PAT_CI from Envoy's environment (`host_env_keys`).
fn envoy_file(name: &str, host_env_keys: &[&str]) -> String {
    let configuration = serde_json::to_string(&config().to_string()).unwrap();
    let keys = serde_json::to_string(host_env_keys).unwrap();
    let yaml = format!(
        r#"static_resources:
  listeners:
  - name: jira
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          http_filters:
          - name: jira-entra-guard
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: jira-entra-guard
                vm_config:
                  environment_variables:
                    host_env_keys: {keys}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {configuration}
"#
    );
    scratch(name, &yaml)
}

#[test]
fn envoy_host_env_keys_come_from_the_environment_or_env_flags() {
    let file = envoy_file("host-env.yaml", &["JIRA_PAT_CI"]);
    let out = run(&["validate", &file]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .ends_with("environment variable \"JIRA_PAT_CI\" is not set\n"),
        "{}",
        out.stderr
    );
    let out = run(&["validate", &file, "--env", "JIRA_PAT_CI=Bearer x"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "ok: 1 tenant, 2 clients\n")
    );
    let out = run(&["validate", &file, "--ignore-missing-env"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn envoy_variable_the_vm_does_not_declare_is_not_set_even_when_supplied() {
    let file = envoy_file("undeclared-env.yaml", &[]);
    let out = run_with_env(
        &["validate", &file, "--env", "JIRA_PAT_CI=Bearer x"],
        &[("JIRA_PAT_CI", "Bearer y")],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        lines(&out.stderr),
        [
            "note: \"JIRA_PAT_CI\" is in neither vm_config.environment_variables.key_values nor host_env_keys of the Envoy file, so the Wasm VM does not have it",
            "configuration refused: clients[1].upstream_authorization_env: environment variable \"JIRA_PAT_CI\" is not set",
        ]
    );
}

#[test]
fn validate_of_an_unreadable_file_is_a_usage_error() {
    let out = run(&["validate", "no-such-file.json"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("cannot read no-such-file.json: "));
}

fn check_app_id(extra: &[&str]) -> Run {
    let file = config_file("check.json", &config());
    let mut args = vec!["check", file.as_str(), "--env", "JIRA_PAT_CI=Bearer ci-pat"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn check_by_app_id_allows_and_names_the_rule_and_client() {
    let out = check_app_id(&[
        "--method",
        "PUT",
        "--path",
        "/rest/api/2/issue/OPS-7",
        "--app-id",
        CI,
        "--roles",
        "Jira.Read,Jira.Write",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        lines(&out.stdout),
        [
            "decision: allow",
            "status:   - (forwarded to Jira)",
            "reason:   -",
            "rule:     clients[1].allow[1]",
            "projects: path: OPS",
            "client:   ci-pipeline (8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202)",
            "mode:     enforce",
            "caller:   app-id",
            "upstream: Authorization replaced by the client's upstream_authorization_env value (not shown)",
        ]
    );
}

#[test]
fn check_by_app_id_denies_with_status_reason_and_code() {
    let out = check_app_id(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/issue/SEC-1",
        "--app-id",
        CI,
        "--roles",
        "Jira.Write",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        lines(&out.stdout),
        [
            "decision: deny",
            "status:   403",
            "reason:   project not allowed for this client (project_not_allowed)",
            "rule:     -",
            "projects: path: SEC",
            "client:   ci-pipeline (8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202)",
            "mode:     enforce",
            "caller:   app-id",
        ]
    );
}

#[test]
fn check_by_app_id_applies_roles_and_credential_type() {
    let base = [
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--app-id",
        CI,
        "--json",
    ];
    let code_of = |out: &Run| -> Value {
        serde_json::from_str::<Value>(&out.stdout).unwrap()["code"].clone()
    };
    let out = check_app_id(&base);
    assert_eq!((out.code, code_of(&out)), (1, json!("missing_role")));
    let mut with_role = base.to_vec();
    with_role.extend(["--roles", "Jira.Write", "--credential", "secret"]);
    let out = check_app_id(&with_role);
    assert_eq!(
        (out.code, code_of(&out)),
        (1, json!("client_secret_not_accepted"))
    );
    with_role.truncate(with_role.len() - 2);
    let out = check_app_id(&with_role);
    assert_eq!((out.code, code_of(&out)), (0, Value::Null));
}

#[test]
fn check_json_output_is_one_object() {
    let out = check_app_id(&[
        "--method",
        "DELETE",
        "--path",
        "/rest/api/2/issue/OPS-1",
        "--app-id",
        CI,
        "--roles",
        "Jira.Write",
        "--json",
    ]);
    assert_eq!(out.code, 1);
    let verdict: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        verdict,
        json!({
            "decision": "deny", "status": 403, "reason": "request denied by policy",
            "code": "denied_by_rule", "rule": null, "client": "ci-pipeline", "app_id": CI,
            "mode": "enforce", "caller": "app-id", "upstream_authorization_replaced": false,
            "projects": "path: OPS",
            "notes": []
        })
    );
}

#[test]
fn check_reports_a_denial_that_audit_mode_only_logs() {
    let mut document = config();
    document["clients"][0]["mode"] = json!("audit");
    let file = config_file("audit.json", &document);
    let deny = |app_id: &str| {
        let out = run(&[
            "check",
            &file,
            "--method",
            "DELETE",
            "--path",
            "/rest/api/2/issue/OPS-1",
            "--app-id",
            app_id,
            "--roles",
            "Jira.Write",
            "--env",
            "JIRA_PAT_CI=x",
            "--json",
        ]);
        assert_eq!(out.code, 1, "the exit code reports the decision");
        serde_json::from_str::<Value>(&out.stdout).unwrap()["mode"].clone()
    };
    assert_eq!(deny(REPORTING), json!("audit"));
    assert_eq!(deny(CI), json!("enforce"));
    document["mode"] = json!("audit");
    let file = config_file("audit-all.json", &document);
    let out = run(&[
        "check",
        &file,
        "--method",
        "DELETE",
        "--path",
        "/rest/api/2/issue/OPS-1",
        "--app-id",
        CI,
        "--roles",
        "Jira.Write",
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "mode:     audit (the filter logs this denial and forwards the request to Jira anyway)\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn check_runs_the_filters_request_checks_before_the_acl() {
    let out = check_app_id(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/issue/%2e%2e/myself",
        "--app-id",
        REPORTING,
        "--json",
    ]);
    assert_eq!(out.code, 1);
    let verdict: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(verdict["status"], 400);
    assert_eq!(verdict["code"], "refused_path");
    let out = check_app_id(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/issue/OPS-1",
        "--app-id",
        REPORTING,
        "-H",
        "X-HTTP-Method-Override: DELETE",
        "--json",
    ]);
    let verdict: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (verdict["status"].clone(), verdict["code"].clone()),
        (json!(400), json!("method_override"))
    );
}

#[test]
fn check_of_a_public_path_needs_no_client() {
    let out = check_app_id(&[
        "--method",
        "GET",
        "--path",
        "/status",
        "--app-id",
        "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01",
    ]);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("rule:     public_paths[0]\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("client:   -\n"), "{}", out.stdout);
}

#[test]
fn check_of_an_unknown_client_is_denied() {
    let out = check_app_id(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/search",
        "--app-id",
        "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01",
    ]);
    assert_eq!(out.code, 1);
    assert!(out
        .stdout
        .contains("reason:   client is not registered for this gateway (unknown_client)\n"));
}

#[test]
fn check_needs_the_tenant_when_an_app_id_is_in_several() {
    let out = run(&[
        "check",
        "../envoy.yaml",
        "--method",
        "GET",
        "--path",
        "/rest/api/2/issue/OPS-1",
        "--app-id",
        REPORTING,
    ]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("is configured in several tenants"),
        "{}",
        out.stderr
    );
    let out = run(&[
        "check",
        "../envoy.yaml",
        "--method",
        "GET",
        "--path",
        "/rest/api/2/issue/SEC-1",
        "--app-id",
        REPORTING,
        "--tenant",
        OTHER_TENANT,
    ]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("client:   partner-sync "),
        "{}",
        out.stdout
    );
}

#[test]
fn check_with_a_signed_token_allows_what_the_filter_allows() {
    let config = config_file("token.json", &config());
    let jwks = jwks_file("jwks-a.json", "key-a", &key("a"));
    let token = sign(&key("a"), "key-a", &claims(REPORTING, &[]));
    let out = check_token(&config, "GET", "/rest/api/2/issue/OPS-1", &token, &jwks);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("rule:     clients[0].allow[0]\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("caller:   signature\n"));
}

#[test]
fn check_with_a_signed_token_names_the_client_it_refuses() {
    let config = config_file("token-deny.json", &config());
    let jwks = jwks_file("jwks-a-deny.json", "key-a", &key("a"));
    let token = sign(&key("a"), "key-a", &claims(REPORTING, &[]));
    let out = check_token(&config, "DELETE", "/rest/api/2/issue/OPS-1", &token, &jwks);
    assert_eq!(out.code, 1);
    assert_eq!(
        lines(&out.stdout),
        [
            "decision: deny",
            "status:   403",
            "reason:   method not allowed for this client (method_not_allowed)",
            "rule:     -",
            "client:   reporting-bot (3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01)",
            "mode:     enforce",
            "caller:   signature",
        ]
    );
}

#[test]
fn check_with_a_token_refuses_unknown_keys_forgeries_and_expiry() {
    let config = config_file("token-bad.json", &config());
    let jwks = jwks_file("jwks-a-bad.json", "key-a", &key("a"));
    let reason = |token: &str, now: &str| {
        let out = run(&[
            "check",
            &config,
            "--method",
            "GET",
            "--path",
            "/rest/api/2/search",
            "--token",
            token,
            "--jwks",
            &jwks,
            "--now",
            now,
            "--json",
            "--env",
            "JIRA_PAT_CI=x",
        ]);
        assert_eq!(out.code, 1, "{}", out.stdout);
        let verdict: Value = serde_json::from_str(&out.stdout).unwrap();
        (
            verdict["status"].as_u64().unwrap(),
            verdict["code"].as_str().unwrap().to_owned(),
        )
    };
    let now = NOW.to_string();
    let good = claims(REPORTING, &[]);
    let other_key = sign(&key("b"), "key-b", &good);
    assert_eq!(reason(&other_key, &now), (401, "unknown_key".into()));
    let forged = sign(&key("attacker"), "key-a", &good);
    assert_eq!(reason(&forged, &now), (401, "bad_signature".into()));
    let valid = sign(&key("a"), "key-a", &good);
    let later = (NOW + 7200).to_string();
    assert_eq!(reason(&valid, &later), (401, "expired".into()));
}

#[test]
fn check_understands_a_tenants_cloud_and_names_the_cloud_of_a_foreign_issuer() {
    let mut usgov = config();
    usgov["tenants"][0]["cloud"] = json!("usgov");
    let usgov_file = config_file("cloud-usgov.json", &usgov);
    let jwks = jwks_file("jwks-cloud.json", "key-a", &key("a"));
    let mut gov_claims = claims(REPORTING, &[]);
    gov_claims["iss"] = json!(format!("https://login.microsoftonline.us/{TENANT}/v2.0"));
    let gov = sign(&key("a"), "key-a", &gov_claims);
    let out = check_token(&usgov_file, "GET", "/rest/api/2/search", &gov, &jwks);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let public = sign(&key("a"), "key-a", &claims(REPORTING, &[]));
    let out = check_token(&usgov_file, "GET", "/rest/api/2/search", &public, &jwks);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("reason:   token issuer is not trusted (untrusted_issuer)\n"),
        "{}",
        out.stdout
    );
    let note = format!(
        "note: \"https://login.microsoftonline.com/{TENANT}/v2.0\" is the public cloud's issuer for tenant {TENANT}, which is configured with cloud \"usgov\" (tenants[0].cloud)"
    );
    assert!(
        out.stderr.contains(&note) || out.stdout.contains(&note),
        "{}{}",
        out.stdout,
        out.stderr
    );

    let mut typo = config();
    typo["tenants"][0]["cloud"] = json!("us-gov");
    let out = run(&["validate", &config_file("cloud-typo.json", &typo)]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            r#"tenants[0].cloud: "us-gov" is not one of "public", "usgov", "china", "external_id""#
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn check_with_key_sets_per_tenant_reports_a_tenant_without_one() {
    let mut document = config();
    document["tenants"]
        .as_array_mut()
        .unwrap()
        .push(json!({"tenant_id": OTHER_TENANT, "audiences": ["api://jira-gateway"], "jwks": {"cluster": "entra"}}));
    document["clients"][0]["tenant_id"] = json!(TENANT);
    document["clients"][1]["tenant_id"] = json!(TENANT);
    let config = config_file("two-tenants.json", &document);
    let jwks = jwks_file("jwks-other.json", "key-a", &key("a"));
    let token = sign(&key("a"), "key-a", &claims(REPORTING, &[]));
    let now = NOW.to_string();
    let out = run(&[
        "check",
        &config,
        "--method",
        "GET",
        "--path",
        "/rest/api/2/search",
        "--token",
        &token,
        "--jwks",
        &format!("{OTHER_TENANT}={jwks}"),
        "--now",
        &now,
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("status:   503\n"), "{}", out.stdout);
    assert_eq!(
        out.stderr,
        format!("note: no --jwks key set was given for tenant {TENANT}, the token's issuer\n")
    );
    let out = run(&[
        "check",
        &config,
        "--method",
        "GET",
        "--path",
        "/rest/api/2/search",
        "--token",
        &token,
        "--jwks",
        &format!("{TENANT}={jwks}"),
        "--now",
        &now,
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn check_decode_only_applies_the_acl_without_verifying_and_warns() {
    let config = config_file("decode-only.json", &config());
    let now = NOW.to_string();
    let forged = sign(&key("attacker"), "nobody", &claims(CI, &["Jira.Write"]));
    let token_file = scratch("token.txt", &format!("{forged}\n"));
    let out = run(&[
        "check",
        &config,
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--token",
        &format!("@{token_file}"),
        "--decode-only",
        "--now",
        &now,
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("rule:     clients[1].allow[0]\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("caller:   decode-only\n"));
    assert!(
        out.stderr
            .starts_with("warning: --decode-only: the token's signature"),
        "{}",
        out.stderr
    );
    let no_role = sign(&key("attacker"), "nobody", &claims(CI, &[]));
    let out = run(&[
        "check",
        &config,
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--token",
        &no_role,
        "--decode-only",
        "--now",
        &now,
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("(missing_role)"), "{}", out.stdout);
    // The claims are still checked: the same forged token an hour after it expired.
    let late = (NOW + 7_200).to_string();
    let out = run(&[
        "check",
        &config,
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--token",
        &forged,
        "--decode-only",
        "--now",
        &late,
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("(expired)"), "{}", out.stdout);
}

#[test]
fn check_usage_and_configuration_errors_exit_2() {
    let config = config_file("usage.json", &config());
    let out = run(&[
        "check",
        &config,
        "--method",
        "GET",
        "--path",
        "/x",
        "--token",
        "a.b.c",
        "--env",
        "JIRA_PAT_CI=x",
    ]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "--token needs --jwks FILE to verify it, or --decode-only to skip verification\n"
    );
    let out = run(&["check", &config, "--method", "GET", "--path", "/x"]);
    assert_eq!(out.code, 2, "neither --token nor --app-id");
    let out = run(&[
        "check", &config, "--method", "GET", "--path", "/x", "--app-id", CI,
    ]);
    assert_eq!(out.code, 2, "refused configuration (JIRA_PAT_CI unset)");
    assert!(
        out.stderr.starts_with("configuration refused: "),
        "{}",
        out.stderr
    );
}

const SCHEMA_FILE: &str = "schema/plugin-config.schema.json";

#[test]
fn checked_in_schema_is_what_the_types_generate() {
    let out = run(&["schema"]);
    assert_eq!(out.code, 0);
    let checked_in = std::fs::read_to_string(format!("{ROOT}/{SCHEMA_FILE}")).unwrap_or_default();
    assert!(
        checked_in == out.stdout,
        "{SCHEMA_FILE} is out of date with core/src/config/raw.rs; regenerate it with\n  cargo run -q -p jira-entra-guard-cli -- schema > {SCHEMA_FILE}"
    );
}

/// The schema node for the field at `pointer` in a document (`/tenants/0/jwks/refresh_seconds`).
fn schema_of(schema: &Value, pointer: &str) -> Value {
    let mut node = schema.clone();
    for part in pointer.split('/').skip(1) {
        if let Some(reference) = node["$ref"].as_str() {
            node = schema
                .pointer(reference.trim_start_matches('#'))
                .unwrap()
                .clone();
        }
        node = if part.parse::<usize>().is_ok() {
            node["items"].clone()
        } else {
            node["properties"][part].clone()
        };
    }
    node
}

#[test]
fn schema_bounds_are_the_bounds_the_configuration_compiler_enforces() {
    let schema = schema();
    let least_refresh = schema_of(&schema, "/tenants/0/jwks/refresh_seconds")["minimum"].clone();
    let mut checked = 0;
    for pointer in [
        "/clock_skew_seconds",
        "/token_cache_size",
        "/key_wait_ms",
        "/tenants/0/jwks/refresh_seconds",
        "/tenants/0/jwks/min_refetch_seconds",
        "/tenants/0/jwks/max_stale_seconds",
        "/tenants/0/jwks/fetch_timeout_ms",
    ] {
        let node = schema_of(&schema, pointer);
        let (min, max) = (
            node["minimum"].as_i64().unwrap(),
            node["maximum"].as_i64().unwrap(),
        );
        let compiles = |value: i64| {
            let mut document = config();
            if pointer == "/tenants/0/jwks/max_stale_seconds" {
                // Its least value is refresh_seconds; set that to its own least value.
                document["tenants"][0]["jwks"]["refresh_seconds"] = json!(least_refresh);
            }
            // The fetch timeout must be shorter than the key wait: give the other its extreme.
            if pointer == "/key_wait_ms" {
                document["tenants"][0]["jwks"]["fetch_timeout_ms"] = json!(100);
            }
            if pointer == "/tenants/0/jwks/fetch_timeout_ms" {
                document["key_wait_ms"] = json!(30_000);
            }
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut document
            } else {
                document.pointer_mut(parent).unwrap()
            };
            target[field] = json!(value);
            compile_policy(document.to_string().as_bytes(), &|_| Some("x".into())).is_ok()
        };
        assert!(
            compiles(min) && compiles(max),
            "{pointer}: {min}..={max} must compile"
        );
        assert!(
            !compiles(min - 1) && !compiles(max + 1),
            "{pointer}: outside {min}..={max} must be refused"
        );
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn schema_describes_ids_with_the_cores_guid_pattern() {
    let schema = schema();
    for pointer in [
        "/tenants/0/tenant_id",
        "/clients/0/app_id",
        "/clients/0/tenant_id",
    ] {
        assert_eq!(
            schema_of(&schema, pointer)["pattern"],
            json!(jira_entra_guard_core::config::GUID_PATTERN),
            "{pointer}"
        );
    }
}

#[test]
fn schema_subcommand_prints_a_draft_2020_12_schema_of_the_configuration() {
    let out = run(&["schema"]);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(printed["additionalProperties"], false);
    assert_eq!(printed["required"], json!(["tenants", "clients"]));
    assert_eq!(printed, schema());
}

/// ci-pipeline limited to OPS for creates and searches.
fn scoped_check(extra: &[&str]) -> Run {
    let mut document = config();
    document["clients"][1]["allow"] = json!([
        {"methods": ["POST"], "paths": ["/rest/api/2/issue"], "projects": ["OPS"]},
        {"methods": ["GET"], "paths": ["/rest/api/2/search"], "projects": ["OPS"]}
    ]);
    let file = config_file("scoped-check.json", &document);
    let mut args = vec![
        "check",
        file.as_str(),
        "--env",
        "JIRA_PAT_CI=Bearer ci-pat",
        "--app-id",
        CI,
        "--roles",
        "Jira.Write",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn check_reads_the_body_and_names_the_field_that_decided() {
    let ops = scratch("create-ops.json", r#"{"fields":{"project":{"key":"OPS"}}}"#);
    let out = scoped_check(&[
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--body",
        &ops,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        lines(&out.stdout).contains(&"projects: fields.project: OPS"),
        "{}",
        out.stdout
    );
    let sec = scratch("create-sec.json", r#"{"fields":{"project":{"key":"SEC"}}}"#);
    let out = scoped_check(&[
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--body",
        &sec,
    ]);
    assert_eq!(out.code, 1);
    assert!(
        lines(&out.stdout).contains(&"projects: fields.project: SEC"),
        "{}",
        out.stdout
    );
    let out = scoped_check(&[
        "--method",
        "POST",
        "--path",
        "/rest/api/2/issue",
        "--body",
        &ops,
        "-H",
        "Content-Type: text/plain",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("(unsupported_media_type)"),
        "{}",
        out.stdout
    );
    let out = scoped_check(&["--method", "POST", "--path", "/rest/api/2/issue"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("--body FILE"), "{}", out.stdout);
}

#[test]
fn check_reads_jql_from_the_query_and_names_the_clause() {
    let out = scoped_check(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/search?jql=status%3DOpen+AND+project+in+(ops)",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        lines(&out.stdout).contains(&"projects: jql clause `project in (OPS)`"),
        "{}",
        out.stdout
    );
    let out = scoped_check(&[
        "--method",
        "GET",
        "--path",
        "/rest/api/2/search?jql=project%3DOPS+OR+project%3DSEC",
        "--json",
    ]);
    assert_eq!(out.code, 1);
    let verdict: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(verdict["code"], json!("project_not_determinable"));
    assert_eq!(
        verdict["projects"],
        json!("project cannot be determined: jql: the top level of the query is an OR")
    );
}
