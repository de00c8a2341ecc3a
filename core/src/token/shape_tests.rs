//! Token shapes under a valid tenant signature, end to end through [`verify_token`]: every
//! real Entra ID shape is accepted, and every odd shape that a strict JWT reader (Envoy's
//! `jwt_authn`) refuses is refused here too, with its reason.

use serde_json::{json, Value};

use super::verify::{verify_token, VerifyFailure};
use super::TokenError;
use crate::test_support::*;

fn outcome(header: &str, claims: &str) -> Result<(), TokenError> {
    match verify_token(
        &sign_raw(&key("a"), header, claims),
        &policy(),
        &keys(),
        NOW,
    ) {
        Ok(_) => Ok(()),
        Err(VerifyFailure::Token(e)) => Err(e),
        Err(other) => panic!("not a token verdict: {other:?}"),
    }
}

fn signed_claims(claims: &str) -> Result<(), TokenError> {
    outcome(&header("key-a").to_string(), claims)
}

fn signed_header(header: &str) -> Result<(), TokenError> {
    outcome(header, &v2_claims().to_string())
}

/// The claims text with `extra` (`"name":value,...`) inserted as its first members.
fn plus(claims: &Value, extra: &str) -> String {
    let text = claims.to_string();
    format!("{{{extra},{}", text.trim_start_matches('{'))
}

fn with(mut claims: Value, name: &str, value: Value) -> String {
    claims[name] = value;
    claims.to_string()
}

#[test]
fn every_claim_entra_emits_in_v1_and_v2_app_tokens_is_accepted() {
    let extras = json!({
        "acct": 0, "acrs": ["c1"], "aio": "E2RgYJg/9n7W3+bZ8lAAA=", "auth_time": NOW - 400,
        "ctry": "US", "idp": format!("https://sts.windows.net/{TENANT}/"),
        "jti": "bAv9YyXf1kKz0n3dGk8QAA", "rh": "1.AXwAv4j5cvGGr0GRqy180BHbR7fT4bdaSk5Oipv8HS4_Slt8AAB8AA.",
        "tenant_region_scope": "EU", "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
        "xms_cc": ["cp1"], "xms_ftd": "x7Hc1z0ZrFv3bZ1Yk8Xb4w", "xms_idrel": "7 24",
        "xms_rd": "0.42LlYBJiOBAS4WAX", "xms_ssm": "1", "xms_tcdt": 1_600_000_000_i64,
        "xms_tdbr": "EU",
        // A managed identity's client-credentials token.
        "xms_mirid": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/ops/providers/Microsoft.ManagedIdentity/userAssignedIdentities/jira-sync",
        "xms_az_rid": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/ops/providers/Microsoft.Web/sites/jira-sync",
    });
    for base in [v1_claims(), v2_claims()] {
        let mut claims = base.clone();
        for (name, value) in extras.as_object().unwrap() {
            claims[name] = value.clone();
        }
        assert_eq!(signed_claims(&claims.to_string()), Ok(()), "{claims}");
    }
    let v1_header = json!({"typ": "JWT", "alg": "RS256", "x5t": "key-a", "kid": "key-a"});
    assert_eq!(
        outcome(&v1_header.to_string(), &v1_claims().to_string()),
        Ok(())
    );
}

#[test]
fn app_id_uri_audience_with_one_trailing_slash_is_accepted() {
    assert_eq!(
        signed_claims(&with(v1_claims(), "aud", json!("api://jira-gateway/"))),
        Ok(())
    );
    assert_eq!(
        signed_claims(&with(v1_claims(), "aud", json!("api://jira-gateway"))),
        Ok(())
    );
}

#[test]
fn app_id_uri_audience_with_more_trailing_slashes_is_another_audience() {
    for aud in [
        "api://jira-gateway//",
        "api://jira-gateway///",
        "api://jira-gateway/x",
    ] {
        assert_eq!(
            signed_claims(&with(v1_claims(), "aud", json!(aud))),
            Err(TokenError::WrongAudience),
            "{aud}"
        );
    }
}

#[test]
fn application_id_audience_with_a_trailing_slash_is_another_audience() {
    assert_eq!(
        signed_claims(&with(v2_claims(), "aud", json!(format!("{API_APP_ID}/")))),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn non_string_sub_or_jti_is_malformed_though_unread() {
    for (name, value) in [
        ("sub", json!(42)),
        ("sub", json!(["6e1f6a9e"])),
        ("sub", Value::Null),
        ("jti", json!({"id": "x"})),
        ("jti", json!(true)),
    ] {
        assert_eq!(
            signed_claims(&with(v2_claims(), name, value.clone())),
            Err(TokenError::MalformedClaims),
            "{name}: {value}"
        );
    }
}

#[test]
fn negative_nbf_or_iat_is_malformed() {
    for name in ["nbf", "iat"] {
        assert_eq!(
            signed_claims(&with(v2_claims(), name, json!(-1))),
            Err(TokenError::MalformedClaims),
            "{name}"
        );
    }
}

#[test]
fn negative_zero_or_fractional_expiry_is_malformed_not_expired() {
    for value in ["-0", "0.0", "1790003300.5", "1.7900033e9"] {
        let claims = v2_claims().to_string().replace(
            &format!("\"exp\":{}", NOW + 3300),
            &format!("\"exp\":{value}"),
        );
        assert!(claims.contains(value));
        assert_eq!(
            signed_claims(&claims),
            Err(TokenError::MalformedClaims),
            "{value}"
        );
    }
    assert_eq!(
        signed_claims(&with(v2_claims(), "exp", json!(0))),
        Err(TokenError::Expired)
    );
}

#[test]
fn unread_member_nested_deeply_is_malformed() {
    for levels in [9, 100, 1000] {
        let deep = format!("\"xms_deep\":{}1{}", "[".repeat(levels), "]".repeat(levels));
        assert_eq!(
            signed_claims(&plus(&v2_claims(), &deep)),
            Err(TokenError::MalformedClaims),
            "{levels}"
        );
    }
}

#[test]
fn duplicate_unread_claims_are_malformed() {
    for duplicate in [
        "\"sub\":\"6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11\"",
        "\"xms_tcdt\":1600000000,\"xms_tcdt\":1600000000",
        "\"unknown\":1,\"unknown\":2",
        "\"nested\":{\"a\":1,\"a\":1}",
    ] {
        assert_eq!(
            signed_claims(&plus(&v2_claims(), duplicate)),
            Err(TokenError::MalformedClaims),
            "{duplicate}"
        );
    }
}

#[test]
fn duplicate_unread_header_members_are_malformed() {
    for h in [
        r#"{"typ":"JWT","alg":"RS256","kid":"key-a","typ":"JWT"}"#,
        r#"{"alg":"RS256","kid":"key-a","jku":"https://a","jku":"https://b"}"#,
    ] {
        assert_eq!(signed_header(h), Err(TokenError::MalformedHeader), "{h}");
    }
}

#[test]
fn unpaired_surrogates_and_huge_numbers_in_unread_members_are_malformed() {
    assert_eq!(
        signed_claims(&plus(&v2_claims(), r#""xms_x":"\uD800""#)),
        Err(TokenError::MalformedClaims)
    );
    assert_eq!(
        signed_claims(&plus(&v2_claims(), r#""xms_x":1e400"#)),
        Err(TokenError::MalformedClaims)
    );
    assert_eq!(
        signed_header(r#"{"alg":"RS256","kid":"key-a","x5u":"\udc00"}"#),
        Err(TokenError::MalformedHeader)
    );
    assert_eq!(
        signed_header(r#"{"alg":"RS256","kid":"key-a","n":1e400}"#),
        Err(TokenError::MalformedHeader)
    );
}

#[test]
fn null_kid_with_a_valid_x5t_is_malformed() {
    assert_eq!(
        signed_header(r#"{"alg":"RS256","kid":null,"x5t":"key-a"}"#),
        Err(TokenError::MalformedHeader)
    );
    assert_eq!(
        signed_header(r#"{"alg":"RS256","kid":"","x5t":"key-a"}"#),
        Err(TokenError::MalformedHeader)
    );
    assert_eq!(signed_header(r#"{"alg":"RS256","x5t":"key-a"}"#), Ok(()));
}

#[test]
fn no_key_survives_a_kid_that_two_entries_of_the_key_set_name() {
    use crate::keys::jwks::parse_jwks;
    let document = json!({"keys": [jwk("key-a", &key("a")), jwk("key-a", &key("b")),
                                   jwk("key-c", &key("b"))]});
    let set = parse_jwks(document.to_string().as_bytes()).unwrap();
    let keys = fixed_keys(vec![Some(set), None]);
    for signer in ["a", "b"] {
        let token = sign(&key(signer), &header("key-a"), &v2_claims());
        assert_eq!(
            verify_token(&token, &policy(), &keys, NOW).unwrap_err(),
            VerifyFailure::Token(TokenError::UnknownKey),
            "signed with {signer}"
        );
    }
    let token = sign(&key("b"), &header("key-c"), &v2_claims());
    assert!(verify_token(&token, &policy(), &keys, NOW).is_ok());
}
