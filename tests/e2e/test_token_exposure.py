"""What reaches Jira and what never does, end to end: the caller's token never reaches Jira (not
on a public path, not in dry-run mode, not when a forged token is let through), a client with
`upstream_authorization_env` sends exactly one `Authorization` header, its own; the default
signature backend refuses a malformed PKCS#1 v1.5 encoding; and an OIDC discovery document that
points `jwks_uri` at another host gets no request to that host."""

from __future__ import annotations

import copy
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import stack as s
from cases import active_kid, valid_claims

PAT = "Bearer demo-pat-legacy-sync"  # JIRA_PAT_LEGACY_SYNC in envoy.yaml


def forged(emulator, tokens) -> str:
    """A token under the tenant's real kid, signed by a key the tenant never published."""
    return emulator.sign({"alg": "RS256", "kid": active_kid(emulator)},
                         valid_claims(tokens, emulator), key="attacker", raw_header=True)


def authorization_at_jira(jira, method, path) -> list[str]:
    seen = jira.requests()
    assert len(seen) == 1, seen
    assert (seen[0]["method"], seen[0]["path"]) == (method, path)
    return [v for n, v in seen[0]["headers"] if n.lower() == "authorization"]


def call(envoy, jira, path, token, method="GET"):
    jira.reset()
    return s.raw_request(envoy.port, method, path, [("authorization", f"Bearer {token}")])


def test_public_path_never_forwards_the_token(envoy, jira, emulator, tokens):
    for token in (forged(emulator, tokens), tokens.flow("reporting-bot")):
        status, _, body = call(envoy, jira, "/status", token)
        assert status == 200, body
        assert authorization_at_jira(jira, "GET", "/status") == [], "no token reaches Jira"


def test_upstream_credential_is_the_only_authorization_jira_sees(envoy, jira, tokens):
    token = tokens.flow("legacy-sync", secret="legacy-sync-demo-secret")
    status, _, body = call(envoy, jira, "/rest/api/2/search", token)
    assert status == 200, body
    assert authorization_at_jira(jira, "GET", "/rest/api/2/search") == [PAT]


@pytest.fixture(scope="module")
def dry_run_envoy(workdir, emulator, jira):
    config = copy.deepcopy(s.shipped_plugin_config())
    config["mode"] = "audit"
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=config)
    yield envoy
    envoy.process.stop()


def test_dry_run_forwards_denials_without_the_token(dry_run_envoy, jira, emulator, tokens):
    envoy = dry_run_envoy
    # A forged token: denied (bad signature) but let through by the dry run, token stripped.
    status, _, body = call(envoy, jira, "/rest/api/2/myself", forged(emulator, tokens))
    assert status == 200, body
    assert authorization_at_jira(jira, "GET", "/rest/api/2/myself") == []
    # A genuine token on a path its ACL refuses: the same.
    status, _, body = call(envoy, jira, "/rest/api/2/serverInfo", tokens.flow("reporting-bot"))
    assert status not in (401, 403), body  # Jira's own answer
    assert authorization_at_jira(jira, "GET", "/rest/api/2/serverInfo") == []
    # A client with its own Jira credential, refused by its ACL: its credential, once.
    token = tokens.flow("legacy-sync", secret="legacy-sync-demo-secret")
    status, _, body = call(envoy, jira, "/rest/api/2/myself", token)
    assert status not in (401, 403), body
    assert authorization_at_jira(jira, "GET", "/rest/api/2/myself") == [PAT]


def test_default_backend_refuses_a_digestinfo_without_null(envoy, jira, emulator, tokens):
    """Envoy's verify_signature (the `auto` default) must refuse a signature made with the
    tenant's real key whose PKCS#1 v1.5 DigestInfo omits the NULL parameter."""
    claims = valid_claims(tokens, emulator)
    malformed = emulator.sign({"alg": "RS256"}, claims, signature="rs256-digestinfo-without-null")
    genuine = emulator.sign({"alg": "RS256"}, claims)
    assert malformed.split(".")[:2] == genuine.split(".")[:2]
    assert "RS256 signatures checked by Envoy's verify_signature" in envoy.process.log()
    status, _, body = call(envoy, jira, "/rest/api/2/myself", malformed)
    assert status == 401 and b"token signature is invalid" in body, body
    assert jira.requests() == []
    status, _, body = call(envoy, jira, "/rest/api/2/myself", genuine)
    assert status == 200, body


class Recorder:
    """A loopback HTTP server that records request paths and answers with `answer(path)`; with
    `tls`, HTTPS with the local CA's server certificate (what the shipped key-set cluster
    trusts)."""

    def __init__(self, answer, tls: bool = False):
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                recorder.paths.append(self.path)
                status, body = answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            files = s.local_tls()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(files.server_cert), str(files.server_key))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_discovery_naming_another_host_gets_no_request_to_it(workdir, jira, emulator):
    elsewhere = Recorder(lambda path: (200, {"keys": []}))
    discovery = Recorder(lambda path: (200, {
        "issuer": f"https://login.microsoftonline.com/{s.TENANT}/v2.0",
        "jwks_uri": f"https://127.0.0.1:{elsewhere.port}/{s.TENANT}/discovery/v2.0/keys",
    }) if "openid-configuration" in path else (404, {}), tls=True)
    config = copy.deepcopy(s.shipped_plugin_config())
    for tenant in config["tenants"]:
        tenant["jwks"]["discovery"] = True
        tenant["jwks"]["fetch_timeout_ms"] = 500
    config["key_wait_ms"] = 1000
    # The key-set cluster leads to the recorder that serves the discovery document.
    envoy = s.start_envoy(workdir, discovery.port, jira.port, plugin_config=config)
    try:
        status, _, body = call(envoy, jira, "/rest/api/2/myself", emulator.token("reporting-bot"))
        assert status == 503, body
        assert jira.requests() == []
        expected = f'jwks_uri host "127.0.0.1:{elsewhere.port}" is not the configured authority'
        deadline = time.monotonic() + 10
        while expected not in envoy.process.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert expected in envoy.process.log()
        assert discovery.paths and all("openid-configuration" in p for p in discovery.paths), \
            discovery.paths
        assert elsewhere.paths == [], "no request to the host discovery named"
    finally:
        envoy.process.stop()
        discovery.stop()
        elsewhere.stop()
