"""Writes the seed corpora in fuzz/corpus/<target>/: a handful of real-shaped inputs per target,
made from the core's fixture keys and the fuzz fixture's policy (fuzz/src/lib.rs). Run with the
project venv from the repository root: `.venv/bin/python fuzz/seeds.py`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "core" / "fixtures"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0c9e5a4d-2f7b-4c1e-9d3a-5b6f7e8d9c0a"
API_APP_ID = "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b"
REPORTING_BOT = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01"
CI_PIPELINE = "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202"
NOW = 1_790_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key(name: str):
    return serialization.load_pem_private_key((FIXTURES / f"{name}.pem").read_bytes(), None)


def compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sign(header: bytes, claims: bytes, private=None) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    sig = (private or key("tenant-key-a")).sign(signing_input.encode(), padding.PKCS1v15(),
                                               hashes.SHA256())
    return f"{signing_input}.{b64(sig)}"


def v2_claims(**changes) -> dict:
    c = {"aud": API_APP_ID, "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
         "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW + 3300, "azp": REPORTING_BOT,
         "azpacr": "2", "idtyp": "app", "oid": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11",
         "roles": ["Jira.Read"], "sub": "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11", "tid": TENANT,
         "uti": "Zx1-abc", "ver": "2.0"}
    c.update(changes)
    return c


def v1_claims(**changes) -> dict:
    c = {"aud": "api://jira-gateway", "iss": f"https://sts.windows.net/{TENANT}/",
         "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW + 3300, "appid": REPORTING_BOT,
         "appidacr": "2", "idtyp": "app", "roles": ["Jira.Read"], "tid": TENANT, "ver": "1.0"}
    c.update(changes)
    return c


def header(kid="key-a", **extra) -> bytes:
    return compact_json({"typ": "JWT", "alg": "RS256", "kid": kid, **extra})


def jwk(kid: str, private, **extra) -> dict:
    n = private.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": b64(n.n.to_bytes(256, "big")),
            "e": b64(n.e.to_bytes(3, "big")), **extra}


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def token_verify() -> None:
    mode_raw, mode_claims, mode_header_claims = b"\x00", b"\x06", b"\x07"
    tokens = {
        "v2-valid": sign(header(), compact_json(v2_claims())),
        "v1-valid": sign(header("key-a", x5t="key-a"), compact_json(v1_claims())),
        "v2-other-tenant-shared-key": sign(header("shared-a"), compact_json(v2_claims(
            iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0", tid=OTHER_TENANT,
            aud="api://jira-gateway"))),
        "v2-expired": sign(header(), compact_json(v2_claims(exp=NOW - 3600))),
        "v2-attacker": sign(header(), compact_json(v2_claims()), key("attacker-key")),
    }
    for name, token in tokens.items():
        write("token_verify", f"raw-{name}", mode_raw + f"Bearer {token}".encode())
    write("token_verify", "raw-alg-none", mode_raw + b"Bearer " + ".".join(
        [b64(b'{"alg":"none"}'), b64(compact_json(v2_claims())), ""]).encode())
    write("token_verify", "claims-v2", mode_claims + compact_json(v2_claims()))
    write("token_verify", "claims-v2-ci", mode_claims + compact_json(v2_claims(
        azp=CI_PIPELINE, roles=["Jira.Write"])))
    write("token_verify", "claims-duplicate-exp",
          mode_claims + compact_json(v2_claims())[:-1] + b',"exp":99999999999}')
    write("token_verify", "header-claims-v1",
          mode_header_claims + header("key-b", x5t="key-b") + b"\xff" + compact_json(v1_claims()))
    write("token_verify", "header-claims-graph", mode_header_claims + header(nonce="abc") + b"\xff"
          + compact_json(v2_claims(aud="00000003-0000-0000-c000-000000000000")))


def jwks_parse() -> None:
    a, b = key("tenant-key-a"), key("tenant-key-b")
    cert = (FIXTURES / "tenant-key-a.crt").read_text()
    der = base64.b64decode("".join(l for l in cert.splitlines() if not l.startswith("-----")))
    from hashlib import sha1
    thumb = b64(sha1(der).digest())
    write("jwks_parse", "two-keys", compact_json({"keys": [jwk("key-a", a), jwk("key-b", b)]}))
    write("jwks_parse", "entra-shaped-with-x5c", compact_json({"keys": [
        jwk(thumb, a, x5c=[base64.b64encode(der).decode()],
            issuer=f"https://login.microsoftonline.com/{TENANT}/v2.0")]}))
    write("jwks_parse", "mixed-entries", compact_json({"keys": [
        {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
        jwk("enc", a, use="enc"), jwk("ps", a, alg="PS256"), jwk("ops", a, key_ops=["verify"]),
        jwk("key-a", a), jwk("key-a", b), "not an object"]}))
    write("jwks_parse", "empty", b'{"keys":[]}')


def config_parse() -> None:
    envoy = yaml.safe_load((ROOT / "envoy.yaml").read_text())
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "jira-entra-guard")
    shipped = wasm["typed_config"]["config"]["configuration"]["value"]
    write("config_parse", "shipped-envoy-yaml", shipped.encode())
    write("config_parse", "minimal", compact_json({
        "tenants": [{"tenant_id": TENANT, "audiences": ["api://jira-gateway"],
                     "jwks": {"cluster": "entra"}}],
        "clients": [{"name": "bot", "app_id": REPORTING_BOT,
                     "allow": [{"methods": ["GET"], "paths": ["/rest/api/2/**"]}]}]}))
    write("config_parse", "everything", compact_json({
        "tenants": [{"tenant_id": TENANT.upper(), "audiences": ["api://jira-gateway", API_APP_ID],
                     "jwks": {"cluster": "entra", "authority": "login.microsoftonline.com",
                              "path": f"/{TENANT}/discovery/v2.0/keys"}},
                    {"tenant_id": OTHER_TENANT, "audiences": ["api://jira-gateway"],
                     "jwks": {"cluster": "entra"}}],
        "clients": [{"name": "ci", "app_id": CI_PIPELINE, "tenant_id": TENANT,
                     "required_roles": ["Jira.Write"], "allow_client_secret": True,
                     "upstream_authorization_env": "JIRA_PAT",
                     "allow": [{"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"],
                                "projects": ["OPS", "SEC"]},
                               {"methods": ["*"], "paths": ["/rest/agile/1.0/**"]}],
                     "deny": [{"methods": ["DELETE"], "paths": ["/rest/api/2/issue/**"]}]}],
        "public_paths": [{"methods": ["GET"], "paths": ["/status"]}],
        "clock_skew_seconds": 0}))
    write("config_parse", "clouds", compact_json({
        "tenants": [{"tenant_id": TENANT, "audiences": ["a"], "cloud": "usgov", "jwks": {"cluster": "c"}},
                    {"tenant_id": OTHER_TENANT, "audiences": ["a"], "cloud": "external_id",
                     "issuers": {"v2": f"https://{OTHER_TENANT}.ciamlogin.com/{OTHER_TENANT}/v2.0"},
                     "jwks": {"cluster": "c", "discovery": True}}],
        "clients": [{"name": "x", "app_id": REPORTING_BOT, "tenant_id": TENANT,
                     "allow": [{"methods": ["GET"], "paths": ["/"]}]}]}))
    write("config_parse", "newline-credential", compact_json({
        "tenants": [{"tenant_id": TENANT, "audiences": ["a"], "jwks": {"cluster": "c"}}],
        "clients": [{"name": "x", "app_id": REPORTING_BOT, "upstream_authorization_env": "NEWLINE",
                     "allow": [{"methods": ["GET"], "paths": ["/"]}]}]}))


def path_acl() -> None:
    seeds = {
        "search": (0, 0, "/rest/api/2/search?jql=project%20%3D%20OPS"),
        "issue": (0, 0, "/rest/api/2/issue/OPS-1"),
        "ci-put": (2, 1, "/rest/api/2/issue/SEC-12"),
        "ci-delete": (3, 1, "/rest/api/2/issue/OPS-1/comment/5"),
        "project-deep": (0, 0, "/rest/api/2/project/OPS/versions"),
        "encoded": (0, 0, "/rest/api/2/issue/r%C3%A9sum%C3%A9"),
        "dot-dot": (0, 0, "/rest/api/2/issue/%2e%2E/serverInfo"),
        "traversal-mix": (0, 2, "/rest/api/2/issue/..;/x%2f%5c%25%c0%ae"),
        "status": (0, 0, "/status"),
    }
    for name, (method, client, path) in seeds.items():
        write("path_acl", name, bytes([method, client]) + path.encode())


def json_strict() -> None:
    seeds = {
        "header-v1": header("key-a", x5t="key-a"),
        "claims-v1": compact_json(v1_claims()),
        "claims-v2-managed-identity": compact_json(v2_claims(
            xms_mirid="/subscriptions/s/resourcegroups/r/providers/Microsoft.ManagedIdentity/"
                      "userAssignedIdentities/u", xms_tcdt=1600000000, wids=["w"], acct=0)),
        "escapes": '{"a":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00","\\u0062":[]}'.encode(),
        "duplicate-nested": b'{"x":{"y":[{"z":1,"z":2}]}}',
        "duplicate-escaped": b'{"a":1,"\\u0061":2}',
        "unpaired-surrogate": b'{"x5u":"\\ud800"}',
        "numbers": b'{"a":[0,-0,1.5,-2.5e-3,9007199254740991,9007199254740992,1e400,1e-400]}',
        "deep": b'{"a":[[[[[[[1]]]]]]]}',
        "whitespace": b' \t\r\n{ "a" : null , "b" : true } \n',
    }
    for name, data in seeds.items():
        write("json_strict", name, data)


def jql_scope() -> None:
    seeds = {
        "equals": "project = OPS",
        "in-list": "project in (OPS, \"SEC\", 'dev') AND status = Open ORDER BY created DESC",
        "nested": "(project = OPS && (a = 1 OR b ~ \"x\")) & !c = 2",
        "or-injection": "project = OPS OR project = SEC",
        "or-after-and": "project = OPS AND status = Open OR priority = High",
        "quote-hides-or": 'project = "OPS\\" OR project = \\"SEC"',
        "escape": 'project = "\\u004fPS" AND summary !~ \'it\\\'s\'',
        "function": "project in projectsLeadByUser() AND key = OPS-1",
        "order-by-quoted": "a = 1 AND order 'x' by AND project = OPS",
        "id": "project = 10000",
        "create-body": '{"fields":{"project":{"key":"OPS"},"summary":"s"}}',
        "bulk-body": '{"issueUpdates":[{"fields":{"project":{"id":"10000"}}}]}',
        "link-body": '{"inwardIssue":{"key":"OPS-1"},"outwardIssue":{"key":"SEC-2"}}',
        "search-body": '{"jql":"project = OPS","maxResults":5}',
        "duplicate-body": '{"fields":{"project":{"key":"OPS","key":"SEC"}}}',
    }
    for name, text in seeds.items():
        write("jql_scope", name, text.encode())


if __name__ == "__main__":
    json_strict()
    token_verify()
    jwks_parse()
    config_parse()
    path_acl()
    jql_scope()
    for target in sorted(CORPUS.iterdir()):
        print(target.name, len(list(target.iterdir())))
