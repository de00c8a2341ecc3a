"""The end-to-end table: each row is one request through the built filter in a real Envoy,
with the status it must get, whether Jira may see it, and the reason the body must name.

Envoy runs the shipped envoy.yaml with Envoy's *default* path handling, so every path trick
reaches the filter raw. Tokens come from the Entra ID emulator: through the real certificate
client-credentials flow where a client would get them that way, and crafted through the
emulator's signing endpoint for the attacks.
"""

from __future__ import annotations

import json

import pytest

import stack as s
from attack_cases import ATTACK_CASES, send_until_answered
from cases import UNCONFIGURED_TENANT, Case, active_kid, bearer, crafted, flow, signed, valid_claims


NO_TOKEN = "a bearer token is required"

CASES = [
    # --- accepted
    Case("v2-token-by-certificate", "GET", "/rest/api/2/myself", flow("reporting-bot"), 200, True,
         client="reporting-bot"),
    Case("v1-token-by-certificate", "GET", "/rest/api/2/search?jql=project%20%3D%20OPS",
         flow("reporting-bot", s.LEGACY_API_URI), 200, True, client="reporting-bot"),
    Case("public-path-without-token", "GET", "/status", None, 200, True),
    Case("caller-identity-headers-are-replaced", "GET", "/rest/api/2/myself", flow("reporting-bot"),
         200, True, client="reporting-bot",
         extra_headers=[("x-jira-client", "admin"), ("x-jira-client-id", "forged")]),
    # --- 401: no token
    Case("no-token", "GET", "/rest/api/2/myself", None, 401, False, NO_TOKEN),
    Case("basic-auth-is-no-bearer-token", "GET", "/rest/api/2/myself",
         lambda t, e: [("authorization", "Basic cmVwb3J0aW5nLWJvdDpzZWNyZXQ=")], 401, False,
         NO_TOKEN),
    Case("token-in-query-is-refused", "GET", "/rest/api/2/myself?access_token=x.y.z", None, 400,
         False, "send the token in the Authorization header"),
    Case("token-in-cookie-is-ignored", "GET", "/rest/api/2/myself",
         lambda t, e: [("cookie", f"access_token={t.flow('reporting-bot')}")], 401, False,
         NO_TOKEN),
    # --- 401: invalid token
    Case("authorization-repeated", "GET", "/rest/api/2/myself",
         lambda t, e: [("authorization", f"Bearer {t.flow('reporting-bot')}")] * 2, 401, False,
         "more than one Authorization header"),
    Case("expired", "GET", "/rest/api/2/myself",
         crafted(overrides={"exp": 1_600_000_000, "iat": 1_599_990_000, "nbf": 1_599_990_000}),
         401, False, "token is expired"),
    Case("not-yet-valid", "GET", "/rest/api/2/myself",
         crafted(overrides={"nbf": 4_000_000_000, "exp": 4_000_003_600}), 401, False,
         "token is not yet valid"),
    Case("missing-exp", "GET", "/rest/api/2/myself", crafted(remove=["exp"]), 401, False,
         "token has no expiry"),
    Case("exp-as-string", "GET", "/rest/api/2/myself", crafted(overrides={"exp": "4000000000"}),
         401, False, "token claims are malformed"),
    Case("wrong-audience", "GET", "/rest/api/2/myself", crafted(overrides={"aud": "api://other"}),
         401, False, "token audience is not accepted"),
    Case("untrusted-issuer", "GET", "/rest/api/2/myself",
         crafted(overrides={"iss": f"https://login.microsoftonline.com/{UNCONFIGURED_TENANT}/v2.0",
                            "tid": UNCONFIGURED_TENANT}), 401, False, "token issuer is not trusted"),
    Case("tid-does-not-match-issuer", "GET", "/rest/api/2/myself",
         crafted(overrides={"tid": s.OTHER_TENANT}), 401, False, "token tenant does not match"),
    Case("unknown-kid", "GET", "/rest/api/2/myself",
         signed({"alg": "RS256", "kid": "no-such-key"}, valid_claims), 401, False,
         "unknown key"),
    Case("known-kid-attacker-signature", "GET", "/rest/api/2/myself",
         lambda t, e: [("authorization", "Bearer " + e.sign(
             {"alg": "RS256", "kid": active_kid(e)}, valid_claims(t, e), key="attacker",
             raw_header=True))],
         401, False, "token signature is invalid"),
    Case("alg-none", "GET", "/rest/api/2/myself",
         lambda t, e: [("authorization", "Bearer " + e.sign(
             {"alg": "none", "kid": active_kid(e)}, valid_claims(t, e), raw_header=True,
             signature="none"))], 401, False, "algorithm is not RS256"),
    Case("two-segments", "GET", "/rest/api/2/myself",
         bearer(lambda t, e: ".".join(t.flow("reporting-bot").split(".")[:2])), 401, False,
         "not a compact JWS"),
    Case("graph-token", "GET", "/rest/api/2/myself",
         crafted(overrides={"aud": "00000003-0000-0000-c000-000000000000"},
                 header_overrides={"nonce": "AbCdEf"}), 401, False, "Microsoft Graph"),
    # --- 403: policy
    Case("unknown-client", "GET", "/rest/api/2/myself", flow("intruder"), 403, False,
         "client is not registered"),
    # --- ACL: reporting-bot may GET /rest/api/2/{myself,search,issue/*,project/**}
    Case("acl-single-star-matches-one-segment", "GET", "/rest/api/2/issue/OPS-1",
         flow("reporting-bot"), 200, True, client="reporting-bot"),
    Case("acl-double-star-matches-deeper-paths", "GET", "/rest/api/2/project/OPS/versions",
         flow("reporting-bot"), 200, True, client="reporting-bot"),
    Case("acl-single-star-is-not-two-segments", "GET", "/rest/api/2/issue/OPS-1/comment",
         flow("reporting-bot"), 403, False, "path not allowed"),
    Case("acl-method-not-allowed", "POST", "/rest/api/2/search", flow("reporting-bot"), 403, False,
         "method not allowed", body=b'{"jql":"project = OPS"}'),
    Case("acl-no-rule-for-path-and-method", "POST", "/rest/api/2/issue", flow("reporting-bot"), 403,
         False, "path not allowed", body=b'{"fields":{"project":{"key":"OPS"}}}'),
    Case("acl-path-not-allowed", "GET", "/rest/api/2/serverInfo", flow("reporting-bot"), 403, False,
         "path not allowed"),
    Case("acl-latest-alias-needs-its-own-pattern", "GET", "/rest/api/latest/myself",
         flow("reporting-bot"), 403, False, "path not allowed"),
    Case("acl-paths-are-case-sensitive", "GET", "/rest/api/2/MYSELF", flow("reporting-bot"), 403,
         False, "path not allowed"),
    Case("acl-query-string-is-not-part-of-the-path", "GET", "/rest/api/2/myself?x=/rest/api/2/serverInfo",
         flow("reporting-bot"), 200, True, client="reporting-bot"),
    # --- ACL: ci-pipeline (Jira.Write role; POST issue; GET/PUT issue/* in OPS, SEC; no DELETE)
    Case("acl-create-issue", "POST", "/rest/api/2/issue", flow("ci-pipeline"), 201, True,
         client="ci-pipeline", body=b'{"fields":{"project":{"key":"OPS"},"summary":"build 42"}}'),
    Case("acl-project-listed", "GET", "/rest/api/2/issue/OPS-7", flow("ci-pipeline"), 200, True,
         client="ci-pipeline"),
    Case("acl-project-listed-edit", "PUT", "/rest/api/2/issue/SEC-3", flow("ci-pipeline"), 204, True,
         client="ci-pipeline", body=b'{"fields":{"summary":"x"}}'),
    Case("acl-project-key-is-case-insensitive-like-jira", "GET", "/rest/api/2/issue/ops-7",
         flow("ci-pipeline"), 200, True, client="ci-pipeline"),
    Case("acl-project-not-listed", "GET", "/rest/api/2/issue/DEV-1", flow("ci-pipeline"), 403, False,
         "project not allowed"),
    Case("acl-project-not-listed-lowercase", "GET", "/rest/api/2/issue/dev-1", flow("ci-pipeline"),
         403, False, "project not allowed"),
    Case("acl-project-undeterminable-numeric-id", "GET", "/rest/api/2/issue/10001",
         flow("ci-pipeline"), 403, False, "project not allowed"),
    Case("acl-deny-rule-wins", "DELETE", "/rest/api/2/issue/OPS-7", flow("ci-pipeline"), 403, False,
         "denied by policy"),
    Case("acl-missing-required-role", "POST", "/rest/api/2/issue",
         crafted("ci-pipeline", overrides={"roles": ["Jira.Read"]}), 403, False,
         "lacks a required app role", body=b"{}"),
    Case("acl-roles-claim-absent", "POST", "/rest/api/2/issue",
         crafted("ci-pipeline", remove=["roles"]), 403, False, "lacks a required app role",
         body=b"{}"),
    # --- credentials and token kinds
    Case("client-secret-accepted-when-allowed", "GET", "/rest/api/2/search",
         flow("legacy-sync", secret="legacy-sync-demo-secret"), 200, True, client="legacy-sync",
         upstream_authorization="Bearer demo-pat-legacy-sync"),
    Case("client-secret-refused-by-default", "GET", "/rest/api/2/myself",
         crafted(acr="1"), 403, False, "client secret credentials are not accepted"),
    Case("public-client-refused", "GET", "/rest/api/2/myself",
         crafted(acr="0"), 403, False, "must authenticate to Entra ID with a certificate"),
    Case("delegated-token-with-scp-refused", "GET", "/rest/api/2/myself",
         crafted(overrides={"scp": "Jira.Read"}), 403, False, "delegated (user) tokens"),
    Case("delegated-token-with-user-idtyp-refused", "GET", "/rest/api/2/myself",
         crafted(overrides={"idtyp": "user"}), 403, False, "delegated (user) tokens"),
    # --- tenants: clients are matched by app id AND issuing tenant
    Case("same-app-id-other-tenant-is-another-client", "GET", "/rest/api/2/issue/OPS-1",
         flow("partner-sync", tenant=s.OTHER_TENANT), 200, True, client="partner-sync"),
    Case("other-tenant-client-has-its-own-acl", "GET", "/rest/api/2/search",
         flow("partner-sync", tenant=s.OTHER_TENANT), 403, False, "path not allowed"),
    Case("app-id-known-only-in-another-tenant", "GET", "/rest/api/2/issue/OPS-1",
         crafted("partner-sync", tenant=s.OTHER_TENANT,
                 overrides={"azp": s.CLIENTS["ci-pipeline"]}), 403, False, "client is not registered"),
    # --- canonical paths (Envoy's defaults: the filter sees raw paths)
    *[Case(f"path-{name}", "GET", path, flow("reporting-bot"), 400, False, reason)
      for name, path, reason in [
          ("dot-dot", "/rest/api/2/issue/../../2/serverInfo", "dot segment"),
          ("dot", "/rest/api/2/./myself", "dot segment"),
          ("encoded-dot-dot", "/rest/api/2/issue/%2e%2e/myself", "dot segment"),
          ("mixed-dot-dot", "/rest/api/2/issue/.%2E/myself", "dot segment"),
          ("upper-encoded-dot-dot", "/rest/api/2/issue/%2E%2E/myself", "dot segment"),
          ("double-slash", "/rest/api/2//myself", "empty segment"),
          ("leading-double-slash", "//rest/api/2/myself", "empty segment"),
          ("trailing-slash", "/rest/api/2/myself/", "must not end with /"),
          ("path-parameter", "/rest/api/2/myself;jsessionid=ABC", "path parameter"),
          ("path-parameter-in-segment", "/rest/api/2/issue;x=1/OPS-1", "path parameter"),
          ("encoded-semicolon", "/rest/api/2/myself%3bx", "path parameter"),
          ("encoded-slash", "/rest/api/2/issue%2fOPS-1", "encoded /"),
          ("encoded-slash-upper", "/rest/api/2/issue%2FOPS-1", "encoded /"),
          ("encoded-backslash", "/rest/api/2/issue%5cOPS-1", "backslash"),
          ("encoded-percent", "/rest/api/2/issue/%252e%252e", "encoded %"),
          ("encoded-nul", "/rest/api/2/myself%00", "control character"),
          ("encoded-control", "/rest/api/2/myself%0a", "control character"),
          ("encoded-letter", "/rest/api/2/%6dyself", "percent-encode letters"),
          ("malformed-escape", "/rest/api/2/myself%zz", "malformed"),
      ]],
    Case("method-override-header-refused", "GET", "/rest/api/2/myself", flow("reporting-bot"), 400,
         False, "method-override", extra_headers=[("x-http-method-override", "DELETE")]),
    Case("method-override-x-http-method-refused", "GET", "/rest/api/2/myself", flow("reporting-bot"),
         400, False, "method-override", extra_headers=[("x-http-method", "PUT")]),
    Case("method-override-x-method-override-refused", "GET", "/rest/api/2/myself",
         flow("reporting-bot"), 400, False, "method-override",
         extra_headers=[("x-method-override", "POST")]),
    Case("method-override-equal-to-method-passes", "GET", "/rest/api/2/myself",
         flow("reporting-bot"), 200, True, client="reporting-bot",
         extra_headers=[("x-http-method-override", "GET")]),
]


CASES += ATTACK_CASES


def send(envoy, case: Case, tokens, emulator):
    headers = list(case.extra_headers)
    if case.auth is not None:
        headers += case.auth(tokens, emulator)
    if case.body:
        headers.append(("content-type", "application/json"))
    if case.envoy_rejects:
        return send_until_answered(envoy.port, case.method, case.path, headers)
    return s.raw_request(envoy.port, case.method, case.path, headers, case.body)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_request(case: Case, envoy, jira, tokens, emulator):
    jira.reset()
    status, headers, body = send(envoy, case, tokens, emulator)
    seen = jira.requests()
    assert status == case.status, body
    if case.reaches_jira:
        assert len(seen) == 1, "Jira must see the request exactly once"
        assert seen[0]["method"] == case.method
        assert seen[0]["path"] == (case.jira_path or case.path), "Jira sees what the ACL approved"
        got = dict((n, v) for n, v in seen[0]["headers"])
        names = [n for n, _ in seen[0]["headers"]]
        if case.upstream_authorization is None:
            assert "authorization" not in names, "the Entra token must not reach Jira"
        else:
            assert got["authorization"] == case.upstream_authorization
        if case.client:
            assert got["x-jira-client"] == case.client
            assert got["x-jira-client-id"] == s.CLIENTS[case.client]
            assert names.count("x-jira-client") == 1 and names.count("x-jira-client-id") == 1
        else:
            assert "x-jira-client" not in names
    else:
        assert seen == [], "a refused request must never reach Jira"
        if not case.envoy_rejects:
            err = json.loads(body)
            assert err["errors"] == {}
            assert case.reason in err["errorMessages"][0]
            assert headers["content-type"].startswith("application/json")
    if status == 401:
        challenge = headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="jira"')
        if case.reason == NO_TOKEN:
            assert challenge == 'Bearer realm="jira"'
        else:
            assert 'error="invalid_' in challenge and case.reason in challenge
        assert "eyJ" not in body.decode() and "eyJ" not in challenge, "the token is never echoed"
