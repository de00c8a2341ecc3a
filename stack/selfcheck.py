#!/usr/bin/env python3
"""End-to-end self-check of the local stack (Entra emulator, Jira stand-in, client).

Starts entra_emulator.py (HTTPS, local CA) and jira_standin.py as subprocesses on
free loopback ports, exercises the token flows (hand-made assertions and MSAL), the
published keys, the Entra-style errors and every control endpoint, then stops both
servers. Exits non-zero on any failure.

Usage: python stack/selfcheck.py [-v]
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import jira_client  # noqa: E402
import local_ca  # noqa: E402

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
TENANT2 = "0c9e5a4d-2f7b-4c1e-9d3a-5b6f7e8d9c0a"
API_V2_GUID = "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b"
API_V1_GUID = "c4e2a9d1-7b3f-4d8e-9a6c-1f0e2d3c4b5a"
API2_GUID = "d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a"
REPORTING_BOT = "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01"
CI_PIPELINE = "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202"
LEGACY_SYNC = "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01"
INTRUDER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01"
PARTNER_SYNC = REPORTING_BOT  # same app id, other tenant

PKI = os.path.join(HERE, "pki")
VERBOSE = "-v" in sys.argv


def pki(name: str, ext: str) -> str:
    return os.path.join(PKI, f"{name}.{ext}")


# --------------------------------------------------------------------------
# Process management
# --------------------------------------------------------------------------

class Server:
    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, *args, "--port", "0"],
            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            banner = lines.get(timeout=30)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{name} did not start within 30 s")
        prefix = f"{name} listening on "
        if not banner.startswith(prefix):
            self.stop()
            raise RuntimeError(f"{name} printed unexpected banner {banner!r}: {''.join(self.stderr_lines)}")
        self.url = banner[len(prefix):].strip()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


# --------------------------------------------------------------------------
# HTTP and JWT helpers
# --------------------------------------------------------------------------

def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 15.0):
    """Returns (status, headers, raw body)."""
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def http_json(method: str, url: str, body=None, **kw):
    status, headers, raw = http(method, url, body, **kw)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_public_key(jwk: dict) -> rsa.RSAPublicKey:
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify_with_jwks(token: str, jwks: dict) -> dict:
    """Verifies an RS256 token against the key with its kid; returns that JWK."""
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    matches = [k for k in jwks["keys"] if k["kid"] == header.get("kid")]
    if len(matches) != 1:
        raise AssertionError(f"kid {header.get('kid')} not published exactly once")
    jwk_public_key(matches[0]).verify(
        b64url_decode(sig_b64), f"{header_b64}.{payload_b64}".encode("ascii"),
        padding.PKCS1v15(), hashes.SHA256(),
    )
    return matches[0]


def verifies_with_any(token: str, jwks: dict) -> bool:
    header_b64, payload_b64, sig_b64 = token.split(".")
    for jwk in jwks["keys"]:
        try:
            jwk_public_key(jwk).verify(b64url_decode(sig_b64), f"{header_b64}.{payload_b64}".encode(),
                                       padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def sign_assertion(header: dict, claims: dict, key_name: str, pss: bool = False) -> str:
    key = jira_client.load_private_key(pki(key_name, "key"))
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if pss else padding.PKCS1v15()
    return signing_input + "." + b64url(key.sign(signing_input.encode(), pad, hashes.SHA256()))


def trust_local_ca() -> str:
    """Every HTTPS request of this process (urllib, and MSAL through REQUESTS_CA_BUNDLE) trusts
    the stack's CA; returns its path."""
    ca = str(local_ca.ensure().ca_cert)
    context = ssl.create_default_context(cafile=ca)
    urllib.request.install_opener(urllib.request.build_opener(urllib.request.HTTPSHandler(context=context)))
    jira_client.trust_ca_file(ca)
    return ca


def check(cond, message: str) -> None:
    if not cond:
        raise AssertionError(message)


def expect_error(status_body, status: int, error: str, code: int) -> None:
    got_status, body = status_body
    check(got_status == status, f"expected HTTP {status}, got {got_status}: {body}")
    check(isinstance(body, dict), f"error body is not JSON: {body!r}")
    check(body.get("error") == error, f"expected error {error}, got {body.get('error')}")
    check(body.get("error_codes") == [code], f"expected error_codes [{code}], got {body.get('error_codes')}")
    check(body.get("error_description", "").startswith(f"AADSTS{code}: "), "description lacks AADSTS code")
    for field in ("timestamp", "trace_id", "correlation_id"):
        check(body.get(field), f"error body lacks {field}")


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

class SelfCheck:
    def __init__(self, emu: Server, jira: Server) -> None:
        self.emu = emu.url
        self.jira = jira.url
        self.results: list[tuple[str, bool, str]] = []

    def run(self, name: str, fn) -> None:
        try:
            fn()
            self.results.append((name, True, ""))
            print(f"PASS  {name}", flush=True)
        except Exception as exc:  # report and continue with the other checks
            detail = f"{type(exc).__name__}: {exc}"
            self.results.append((name, False, detail))
            print(f"FAIL  {name}: {detail}", flush=True)
            if VERBOSE:
                traceback.print_exc()

    # -- helpers -----------------------------------------------------------

    def token_url(self, tenant: str = TENANT, v1: bool = False) -> str:
        return f"{self.emu}/{tenant}/oauth2/{'token' if v1 else 'v2.0/token'}"

    def jwks(self, tenant: str = TENANT, v2: bool = True) -> dict:
        status, body = http_json("GET", f"{self.emu}/{tenant}/discovery/{'v2.0/' if v2 else ''}keys")
        check(status == 200, f"key set answered {status}")
        return body

    def cert_token(self, client_id: str, name: str, scope: str, tenant: str = TENANT) -> dict:
        return jira_client.request_token(self.emu, tenant, client_id, scope,
                                         cert_path=pki(name, "crt"), key_path=pki(name, "key"))

    def assertion(self, client_id: str, name: str, key_name: str | None = None, tenant: str = TENANT,
                  **kw) -> str:
        return jira_client.build_client_assertion(
            client_id, kw.pop("audience", self.token_url(tenant)),
            jira_client.load_private_key(pki(key_name or name, "key")),
            jira_client.load_certificate(pki(name, "crt")), **kw)

    def token_form(self, client_id: str, assertion: str | None = None, scope: str = "api://jira-gateway/.default",
                   **extra) -> dict:
        form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
        if assertion is not None:
            form["client_assertion_type"] = jira_client.JWT_BEARER
            form["client_assertion"] = assertion
        form.update(extra)
        return {k: v for k, v in form.items() if v is not None}

    def post_form(self, form: dict, tenant: str = TENANT, v1: bool = False):
        return jira_client.post_token_request(self.token_url(tenant, v1), form)

    def ctl(self, method: str, path: str, body=None):
        return http_json(method, f"{self.emu}/_emulator/{path}", body)

    # -- discovery and keys ------------------------------------------------

    def check_discovery(self) -> None:
        host = self.emu.split("://", 1)[1]
        status, headers, raw = http("GET", f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration")
        check(status == 200, f"v2 discovery answered {status}")
        doc = json.loads(raw)
        check(doc["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0", "v2 issuer")
        check(self.emu.startswith("https://"), f"emulator does not serve HTTPS: {self.emu}")
        check(doc["jwks_uri"] == f"https://{host}/{TENANT}/discovery/v2.0/keys", "v2 jwks_uri")
        check(doc["token_endpoint"] == f"https://{host}/{TENANT}/oauth2/v2.0/token", "v2 token_endpoint")
        check(doc["id_token_signing_alg_values_supported"] == ["RS256"], "alg values")
        check(doc["tenant_region_scope"] == "NA", "tenant_region_scope")
        for field in ("token_endpoint_auth_methods_supported", "response_types_supported",
                      "subject_types_supported"):
            check(isinstance(doc.get(field), list), f"missing {field}")
        status, doc1 = http_json("GET", f"{self.emu}/{TENANT}/.well-known/openid-configuration")
        check(status == 200, f"v1 discovery answered {status}")
        check(doc1["issuer"] == f"https://sts.windows.net/{TENANT}/", "v1 issuer")
        check(doc1["jwks_uri"] == f"https://{host}/{TENANT}/discovery/keys", "v1 jwks_uri")
        check(doc1["token_endpoint"] == f"https://{host}/{TENANT}/oauth2/token", "v1 token_endpoint")
        # Host and X-Forwarded-Proto drive the advertised URLs.
        status, doc2 = http_json("GET", f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration",
                                 headers={"Host": "login.local:1234"})
        check(doc2["jwks_uri"] == f"https://login.local:1234/{TENANT}/discovery/v2.0/keys", "Host-based jwks_uri")
        status, doc3 = http_json("GET", f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration",
                                 headers={"Host": "entra.local", "X-Forwarded-Proto": "http"})
        check(doc3["token_endpoint"] == f"http://entra.local/{TENANT}/oauth2/v2.0/token",
              "X-Forwarded-Proto-based token_endpoint")
        # A tenant is addressable by its domain name; the document names it by GUID.
        status, doc4 = http_json("GET", f"{self.emu}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        check(status == 200 and doc4["token_endpoint"] == doc["token_endpoint"], f"domain discovery {status}")

    def check_tls_certificate(self) -> None:
        """The emulator's certificate chains to the local CA, for localhost and 127.0.0.1 only;
        the CA cannot vouch for another DNS name."""
        tls = local_ca.ensure()
        port = int(self.emu.rsplit(":", 1)[1])
        for name in ("localhost", "127.0.0.1"):
            context = ssl.create_default_context(cafile=str(tls.ca_cert))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=name) as conn:
                    check(conn.version() in ("TLSv1.2", "TLSv1.3"), f"TLS version {conn.version()}")
        context = ssl.create_default_context(cafile=str(tls.ca_cert))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                context.wrap_socket(raw, server_hostname="login.microsoftonline.com").close()
            raise AssertionError("the emulator's certificate passed for login.microsoftonline.com")
        except ssl.SSLCertVerificationError:
            pass
        ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
        check(constraints.critical and constraints.value.permitted_subtrees == [x509.DNSName("localhost")],
              f"CA name constraints {constraints}")

    def check_instance_discovery(self) -> None:
        host = self.emu.split("://", 1)[1]
        hostname = host.rsplit(":", 1)[0]
        status, body = http_json("GET", f"{self.emu}/common/discovery/instance?api-version=1.1&"
                                 f"authorization_endpoint=https://{hostname}/{TENANT}/oauth2/v2.0/authorize")
        check(status == 200, f"instance discovery answered {status}: {body}")
        check(body["tenant_discovery_endpoint"] == f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration",
              f"tenant_discovery_endpoint {body['tenant_discovery_endpoint']}")
        check(body["metadata"] == [{"preferred_network": hostname, "preferred_cache": hostname,
                                    "aliases": [hostname]}], f"metadata {body['metadata']}")
        status, body = http_json("GET", f"{self.emu}/common/discovery/instance?api-version=1.1&"
                                 "authorization_endpoint=https://login.example.com/x/oauth2/v2.0/authorize")
        expect_error((status, body), 400, "invalid_instance", 50049)

    def check_key_sets(self) -> None:
        for v2 in (True, False):
            status, headers, raw = http("GET", f"{self.emu}/{TENANT}/discovery/{'v2.0/' if v2 else ''}keys")
            check(status == 200, f"key set answered {status}")
            check(headers.get("Content-Type") == "application/json; charset=utf-8",
                  f"content-type {headers.get('Content-Type')}")
            keys = json.loads(raw)["keys"]
            check(len(keys) == 2, f"expected 2 published keys, got {len(keys)}")
            for jwk in keys:
                expected = {"kty", "use", "kid", "x5t", "n", "e", "x5c"} | ({"issuer"} if v2 else set())
                check(set(jwk) == expected, f"unexpected JWK fields {sorted(jwk)}")
                check(jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["e"] == "AQAB", "kty/use/e")
                if v2:
                    check(jwk["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0", "jwk issuer")
                for field in ("n", "e", "kid", "x5t"):
                    check("=" not in jwk[field] and "+" not in jwk[field] and "/" not in jwk[field],
                          f"{field} is not unpadded base64url")
                n_bytes = b64url_decode(jwk["n"])
                check(len(n_bytes) == 256 and n_bytes[0] != 0, "n is not a minimal 2048-bit modulus")
                der = base64.b64decode(jwk["x5c"][0], validate=True)
                check(jwk["x5t"] == b64url(hashlib.sha1(der).digest()), "x5t is not the SHA-1 thumbprint")
                check(jwk["kid"] == jwk["x5t"], "kid != x5t")
                cert = x509.load_der_x509_certificate(der)
                check(cert.public_key().public_numbers() == jwk_public_key(jwk).public_numbers(),
                      "x5c certificate does not hold the JWK's key")
                cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
                check(cn == "accounts.accesscontrol.windows.net", f"certificate CN {cn}")
        t2 = self.jwks(TENANT2)
        check(not {k["kid"] for k in t2["keys"]} & {k["kid"] for k in self.jwks()["keys"]},
              "tenants share signing keys")

    def check_unknown_tenant(self) -> None:
        status, body = http_json("GET", f"{self.emu}/00000000-0000-0000-0000-000000000000/discovery/v2.0/keys")
        expect_error((status, body), 400, "invalid_tenant", 90002)
        status, body = http_json("GET", f"{self.emu}/not-a-tenant/v2.0/.well-known/openid-configuration")
        check(status == 400 and body["error_codes"] == [90002], "unknown tenant discovery")
        form = self.token_form(REPORTING_BOT, self.assertion(REPORTING_BOT, "reporting-bot"))
        expect_error(self.post_form(form, tenant="11111111-2222-3333-4444-555555555555"),
                     400, "invalid_request", 90002)

    # -- token flows -------------------------------------------------------

    def check_v2_token(self) -> None:
        resp = self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway/.default")
        check(resp["token_type"] == "Bearer", "token_type")
        check(resp["expires_in"] == 3599 and resp["ext_expires_in"] == 3599, "expires_in")
        token = resp["access_token"]
        jwk = verify_with_jwks(token, self.jwks(v2=True))
        header, claims = jira_client.decode_jwt_unverified(token)
        check(header == {"typ": "JWT", "alg": "RS256", "kid": jwk["kid"]}, f"v2 header {header}")
        active = self.ctl("GET", f"keys?tenant_id={TENANT}")[1]["active"]
        check(header["kid"] == active, "not signed by the active key")
        check(claims["aud"] == API_V2_GUID, "v2 aud must be the API's app id")
        check(claims["iss"] == f"https://login.microsoftonline.com/{TENANT}/v2.0", "v2 iss")
        check(claims["azp"] == REPORTING_BOT and claims["azpacr"] == "2", "azp/azpacr")
        check(claims["roles"] == ["Jira.Read"], f"roles {claims.get('roles')}")
        check(claims["ver"] == "2.0" and claims["idtyp"] == "app", "ver/idtyp")
        check(claims["tid"] == TENANT and claims["sub"] == claims["oid"], "tid/sub/oid")
        check("appid" not in claims and "idp" not in claims, "v1-only claims in v2 token")
        now = time.time()
        check(claims["nbf"] == claims["iat"] and abs(claims["iat"] - (now - 300)) < 30, "iat/nbf ~ now-300")
        check(claims["exp"] - claims["iat"] == 3900, "exp - iat")
        check(len(claims["uti"]) == 22 and "aio" in claims and "rh" in claims, "uti/aio/rh")
        again = self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway/.default")
        check(jira_client.decode_jwt_unverified(again["access_token"])[1]["oid"] == claims["oid"],
              "oid not stable")
        # GUID scope gives the same v2 audience.
        guid = self.cert_token(REPORTING_BOT, "reporting-bot", f"{API_V2_GUID}/.default")
        check(jira_client.decode_jwt_unverified(guid["access_token"])[1]["aud"] == API_V2_GUID, "GUID scope aud")
        # ci-pipeline gets both roles.
        ci = self.cert_token(CI_PIPELINE, "ci-pipeline", "api://jira-gateway/.default")
        check(jira_client.decode_jwt_unverified(ci["access_token"])[1]["roles"] == ["Jira.Read", "Jira.Write"],
              "ci-pipeline roles")

    def check_v1_token(self) -> None:
        resp = self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway-legacy/.default")
        token = resp["access_token"]
        jwk = verify_with_jwks(token, self.jwks(v2=False))
        header, claims = jira_client.decode_jwt_unverified(token)
        check(header == {"typ": "JWT", "alg": "RS256", "x5t": jwk["x5t"], "kid": jwk["kid"]}, f"v1 header {header}")
        check(claims["aud"] == "api://jira-gateway-legacy", f"v1 aud {claims['aud']}")
        check(claims["iss"] == f"https://sts.windows.net/{TENANT}/", "v1 iss")
        check(claims["idp"] == f"https://sts.windows.net/{TENANT}/", "v1 idp")
        check(claims["appid"] == REPORTING_BOT and claims["appidacr"] == "2", "appid/appidacr")
        check(claims["ver"] == "1.0" and claims["idtyp"] == "app" and claims["roles"] == ["Jira.Read"], "ver/roles")
        check("azp" not in claims, "v2-only claims in v1 token")
        guid = self.cert_token(REPORTING_BOT, "reporting-bot", f"{API_V1_GUID}/.default")
        check(jira_client.decode_jwt_unverified(guid["access_token"])[1]["aud"] == API_V1_GUID,
              "v1 aud must be the GUID when the scope used it")
        # The v1 endpoint with `resource`.
        form = {"grant_type": "client_credentials", "client_id": REPORTING_BOT,
                "resource": "api://jira-gateway-legacy",
                "client_assertion_type": jira_client.JWT_BEARER,
                "client_assertion": self.assertion(REPORTING_BOT, "reporting-bot",
                                                   audience=self.token_url(v1=True))}
        status, body = self.post_form(form, v1=True)
        check(status == 200 and body["expires_in"] == "3599" and body["resource"] == "api://jira-gateway-legacy",
              f"v1 endpoint: {status} {body}")

    def check_no_roles(self) -> None:
        resp = self.cert_token(INTRUDER, "intruder", "api://jira-gateway/.default")
        claims = jira_client.decode_jwt_unverified(resp["access_token"])[1]
        check("roles" not in claims, "roles must be omitted when the client has none")
        verify_with_jwks(resp["access_token"], self.jwks())

    def check_secret_flow(self) -> None:
        resp = jira_client.request_token(self.emu, TENANT, LEGACY_SYNC, "api://jira-gateway/.default",
                                         client_secret="legacy-sync-demo-secret")
        claims = jira_client.decode_jwt_unverified(resp["access_token"])[1]
        check(claims["azpacr"] == "1" and claims["azp"] == LEGACY_SYNC, "secret flow must give azpacr 1")
        verify_with_jwks(resp["access_token"], self.jwks())
        # Client_secret_basic is accepted too.
        basic = base64.b64encode(f"{LEGACY_SYNC}:legacy-sync-demo-secret".encode()).decode()
        status, body = jira_client.post_token_request(
            self.token_url(), {"grant_type": "client_credentials", "scope": "api://jira-gateway/.default"},
            headers={"Authorization": f"Basic {basic}"})
        check(status == 200, f"client_secret_basic: {status} {body}")
        # v1 flavour of acr (legacy API is v1; legacy-sync has no roles there).
        resp = jira_client.request_token(self.emu, TENANT, LEGACY_SYNC, "api://jira-gateway-legacy/.default",
                                         client_secret="legacy-sync-demo-secret")
        claims = jira_client.decode_jwt_unverified(resp["access_token"])[1]
        check(claims["appidacr"] == "1" and "roles" not in claims, "v1 appidacr 1")
        expect_error(self.post_form(self.token_form(LEGACY_SYNC, client_secret="wrong")),
                     401, "invalid_client", 7000215)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, client_secret="legacy-sync-demo-secret")),
                     401, "invalid_client", 7000215)

    def check_wrong_certificate(self) -> None:
        try:
            jira_client.request_token(self.emu, TENANT, REPORTING_BOT, "api://jira-gateway/.default",
                                      cert_path=pki("intruder", "crt"), key_path=pki("intruder", "key"))
            raise AssertionError("intruder certificate was accepted for reporting-bot")
        except jira_client.TokenRequestError as err:
            expect_error((err.status, err.body), 401, "invalid_client", 700027)
        # Right thumbprint, wrong key: signature check fails.
        form = self.token_form(REPORTING_BOT, self.assertion(REPORTING_BOT, "reporting-bot", key_name="intruder"))
        expect_error(self.post_form(form), 401, "invalid_client", 700027)
        # No thumbprint header at all.
        claims = {"aud": self.token_url(), "iss": REPORTING_BOT, "sub": REPORTING_BOT,
                  "jti": "7d9f0c1e", "exp": int(time.time()) + 600}
        no_thumb = sign_assertion({"alg": "RS256", "typ": "JWT"}, claims, "reporting-bot")
        expect_error(self.post_form(self.token_form(REPORTING_BOT, no_thumb)), 401, "invalid_client", 700027)
        # The SHA-256 thumbprint alone identifies the certificate as well.
        der = jira_client.load_certificate(pki("reporting-bot", "crt")).public_bytes(serialization.Encoding.DER)
        s256_only = sign_assertion({"alg": "RS256", "typ": "JWT", "x5t#S256": b64url(hashlib.sha256(der).digest())},
                                   claims, "reporting-bot")
        status, body = self.post_form(self.token_form(REPORTING_BOT, s256_only))
        check(status == 200, f"x5t#S256-only assertion refused: {body}")
        header = json.loads(b64url_decode(self.assertion(REPORTING_BOT, "reporting-bot").split(".")[0]))
        check(header.get("x5t") and header.get("x5t#S256") and header.get("typ") == "JWT",
              "client assertion lacks thumbprints")

    def check_assertion_forms_entra_accepts(self) -> None:
        """Padded thumbprints, PS256, x5c, float times, the v1 endpoint, domain-named tenants."""
        cert = jira_client.load_certificate(pki("reporting-bot", "crt"))
        der = cert.public_bytes(serialization.Encoding.DER)
        x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode()
        s256 = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode()
        check(x5t.endswith("=") and s256.endswith("="), "padded thumbprints expected")
        x5c = [base64.b64encode(der).decode()]
        now = time.time()

        def claims(aud=None):
            return {"aud": aud or self.token_url(), "iss": REPORTING_BOT, "sub": REPORTING_BOT,
                    "jti": "4f0c2d1e", "iat": now, "nbf": now, "exp": now + 600.5}

        accepted = {
            "padded x5t, RS256": sign_assertion({"alg": "RS256", "x5t": x5t}, claims(), "reporting-bot"),
            "padded x5t#S256, PS256, x5c": sign_assertion(
                {"alg": "PS256", "x5t#S256": s256, "x5c": x5c}, claims(), "reporting-bot", pss=True),
            "x5t and x5c": sign_assertion({"alg": "RS256", "x5t": x5t, "x5c": x5c}, claims(), "reporting-bot"),
            "v1 endpoint aud": sign_assertion({"alg": "RS256", "x5t": x5t},
                                              claims(self.token_url(v1=True)), "reporting-bot"),
            "domain aud": sign_assertion({"alg": "RS256", "x5t": x5t}, claims(
                f"{self.emu}/contoso.onmicrosoft.com/oauth2/v2.0/token"), "reporting-bot"),
        }
        for what, assertion in accepted.items():
            status, body = self.post_form(self.token_form(REPORTING_BOT, assertion))
            check(status == 200, f"{what} refused: {body}")
        status, body = jira_client.post_token_request(
            f"{self.emu}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            self.token_form(REPORTING_BOT, accepted["padded x5t, RS256"]))
        check(status == 200, f"token endpoint by domain name refused: {body}")

        refused = [
            # PS256 header, PKCS#1 v1.5 signature.
            (sign_assertion({"alg": "PS256", "x5t#S256": s256}, claims(), "reporting-bot"), 700027),
            # x5c naming another certificate than the thumbprint.
            (sign_assertion({"alg": "RS256", "x5t": x5t, "x5c": [base64.b64encode(
                jira_client.load_certificate(pki("intruder", "crt")).public_bytes(serialization.Encoding.DER)
            ).decode()]}, claims(), "reporting-bot"), 700027),
            # x5c alone identifies nothing.
            (sign_assertion({"alg": "RS256", "x5c": x5c}, claims(), "reporting-bot"), 700027),
            (sign_assertion({"alg": "RS256", "x5t": x5t, "x5c": ["not base64!"]}, claims(), "reporting-bot"), 50027),
            (sign_assertion({"alg": "RS384", "x5t": x5t}, claims(), "reporting-bot"), 5002738),
            # The scheme matters: the emulator serves HTTPS, so an http:// audience is not its endpoint.
            (sign_assertion({"alg": "RS256", "x5t": x5t},
                            claims(self.token_url().replace("https://", "http://")), "reporting-bot"), 700021),
            (sign_assertion({"alg": "RS256", "x5t": x5t}, claims(
                f"{self.emu}/fabrikam.onmicrosoft.com/oauth2/v2.0/token"), "reporting-bot"), 700021),
            (sign_assertion({"alg": "RS256", "x5t": x5t}, {**claims(), "exp": now - 1.5}, "reporting-bot"), 700024),
        ]
        for assertion, code in refused:
            status, body = self.post_form(self.token_form(REPORTING_BOT, assertion))
            expect_error((status, body), 401, "invalid_client", code)

    def check_msal_and_azure_identity(self) -> None:
        """Microsoft's libraries, unmodified, get tokens from the emulator over HTTPS."""
        from azure.identity import CertificateCredential

        for send_x5c in (False, True):
            app = jira_client.msal_app(self.emu, "contoso.onmicrosoft.com", REPORTING_BOT,
                                       cert_path=pki("reporting-bot", "crt"),
                                       key_path=pki("reporting-bot", "key"), send_x5c=send_x5c)
            first = jira_client.acquire_token(app, "api://jira-gateway/.default")
            again = jira_client.acquire_token(app, "api://jira-gateway/.default")
            check(first["token_source"] == "identity_provider" and again["token_source"] == "cache",
                  f"MSAL cache: {first.get('token_source')}, {again.get('token_source')}")
            verify_with_jwks(first["access_token"], self.jwks())
        with open(pki("reporting-bot", "key"), "rb") as k, open(pki("reporting-bot", "crt"), "rb") as c:
            pem = k.read() + c.read()
        credential = CertificateCredential(TENANT, REPORTING_BOT, certificate_data=pem, authority=self.emu,
                                           disable_instance_discovery=True, send_certificate_chain=True)
        token = credential.get_token("api://jira-gateway-legacy/.default")
        claims = jira_client.decode_jwt_unverified(token.token)[1]
        check(claims["ver"] == "1.0" and claims["appidacr"] == "2", f"Azure Identity v1 token {claims}")
        # Errors reach the caller as Entra's AADSTS answer.
        bad = jira_client.msal_app(self.emu, TENANT, REPORTING_BOT, cert_path=pki("reporting-bot", "crt"),
                                   key_path=pki("intruder", "key"))
        try:
            jira_client.acquire_token(bad, "api://jira-gateway/.default")
            raise AssertionError("MSAL got a token with the wrong key")
        except jira_client.TokenRequestError as err:
            check(err.body.get("error_codes") == [700027], f"MSAL error {err.body}")

    def check_tenant_isolation(self) -> None:
        # partner-sync shares reporting-bot's app id but lives in tenant 2.
        resp = self.cert_token(PARTNER_SYNC, "partner-sync", "api://jira-gateway/.default", tenant=TENANT2)
        claims = jira_client.decode_jwt_unverified(resp["access_token"])[1]
        check(claims["tid"] == TENANT2 and claims["aud"] == API2_GUID, "tenant 2 token")
        check(claims["iss"] == f"https://login.microsoftonline.com/{TENANT2}/v2.0", "tenant 2 iss")
        verify_with_jwks(resp["access_token"], self.jwks(TENANT2))
        check(not verifies_with_any(resp["access_token"], self.jwks(TENANT)), "tenant 2 token verifies in tenant 1")
        for tenant, name in ((TENANT, "partner-sync"), (TENANT2, "reporting-bot")):
            form = self.token_form(REPORTING_BOT, self.assertion(REPORTING_BOT, name, tenant=tenant))
            expect_error(self.post_form(form, tenant=tenant), 401, "invalid_client", 700027)
        # Legacy API does not exist in tenant 2.
        form = self.token_form(PARTNER_SYNC, self.assertion(PARTNER_SYNC, "partner-sync", tenant=TENANT2),
                               scope="api://jira-gateway-legacy/.default")
        expect_error(self.post_form(form, tenant=TENANT2), 400, "invalid_scope", 500011)

    def check_token_errors(self) -> None:
        good = self.assertion(REPORTING_BOT, "reporting-bot")
        expect_error(self.post_form({}), 400, "invalid_request", 900144)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, good, grant_type="password")),
                     400, "unsupported_grant_type", 70003)
        expect_error(self.post_form(self.token_form(None, good)), 400, "invalid_request", 900144)
        unknown = "00000000-1111-2222-3333-444444444444"
        expect_error(self.post_form(self.token_form(unknown, good)), 400, "unauthorized_client", 700016)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, good, scope=None)), 400, "invalid_request", 900144)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, good, scope="api://jira-gateway")),
                     400, "invalid_scope", 70011)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, good, scope="api://nothing/.default")),
                     400, "invalid_scope", 500011)
        expect_error(self.post_form(self.token_form(REPORTING_BOT)), 401, "invalid_client", 7000216)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, good, client_assertion_type="urn:other")),
                     400, "invalid_request", 9002313)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, "not.a-jwt")), 401, "invalid_client", 50027)
        expired = self.assertion(REPORTING_BOT, "reporting-bot", now=time.time() - 3600)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, expired)), 401, "invalid_client", 700024)
        future = self.assertion(REPORTING_BOT, "reporting-bot", now=time.time() + 3600)
        expect_error(self.post_form(self.token_form(REPORTING_BOT, future)), 401, "invalid_client", 700024)
        wrong_aud = self.assertion(REPORTING_BOT, "reporting-bot", audience="https://example.com/token")
        expect_error(self.post_form(self.token_form(REPORTING_BOT, wrong_aud)), 401, "invalid_client", 700021)
        public_aud = self.assertion(
            REPORTING_BOT, "reporting-bot",
            audience=f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
        status, _ = self.post_form(self.token_form(REPORTING_BOT, public_aud))
        check(status == 200, "public token endpoint URL must be accepted as assertion aud")
        wrong_iss = self.assertion(REPORTING_BOT, "reporting-bot", extra_claims={"iss": CI_PIPELINE})
        expect_error(self.post_form(self.token_form(REPORTING_BOT, wrong_iss)), 401, "invalid_client", 700021)
        no_jti = self.assertion(REPORTING_BOT, "reporting-bot", extra_claims={"jti": None})
        expect_error(self.post_form(self.token_form(REPORTING_BOT, no_jti)), 401, "invalid_client", 50027)
        hs = self.assertion(REPORTING_BOT, "reporting-bot", extra_header={"alg": "HS256"})
        expect_error(self.post_form(self.token_form(REPORTING_BOT, hs)), 401, "invalid_client", 5002738)
        status, body = http_json("GET", self.token_url())
        expect_error((status, body), 400, "invalid_request", 900561)

    # -- client CLI against the stand-in -----------------------------------

    def check_client_cli(self) -> None:
        base = [sys.executable, os.path.join(HERE, "jira_client.py"), "--tenant", TENANT,
                "--client-id", REPORTING_BOT, "--cert", pki("reporting-bot", "crt"),
                "--key", pki("reporting-bot", "key"), "--authority", self.emu, "--jira", self.jira]
        http("POST", f"{self.jira}/_standin/reset")
        for scope in ("api://jira-gateway/.default", "api://jira-gateway-legacy/.default"):
            run = subprocess.run(base + ["--scope", scope, "--show-claims", "GET", "/rest/api/2/myself"],
                                 capture_output=True, text=True, timeout=60)
            check(run.returncode == 0, f"client exit {run.returncode}: {run.stdout} {run.stderr}")
            check("HTTP 200" in run.stdout, f"client output: {run.stdout}")
            expected_ver = '"ver": "1.0"' if "legacy" in scope else '"ver": "2.0"'
            check(expected_ver in run.stdout, "--show-claims output")
        run = subprocess.run(base + ["--scope", "api://jira-gateway/.default", "--token-only"],
                             capture_output=True, text=True, timeout=60)
        token = run.stdout.strip()
        check(run.returncode == 0 and token.count(".") == 2 and "\n" not in token, "--token-only")
        verify_with_jwks(token, self.jwks())
        run = subprocess.run(base + ["--scope", "api://jira-gateway/.default", "GET", "/rest/api/2/issue/XYZ-1"],
                             capture_output=True, text=True, timeout=60)
        check(run.returncode == 1 and "HTTP 404" in run.stdout, "non-2xx must exit 1")
        run = subprocess.run(base + ["--scope", "api://jira-gateway/.default", "POST", "/rest/api/2/issue",
                                     "--data", '{"fields":{"project":{"key":"OPS"},"summary":"x"}}'],
                             capture_output=True, text=True, timeout=60)
        check(run.returncode == 0 and "HTTP 201" in run.stdout, f"POST issue via client: {run.stdout}")
        bad = list(base)
        bad[bad.index("--key") + 1] = pki("intruder", "key")
        run = subprocess.run(bad + ["--scope", "api://jira-gateway/.default", "GET", "/status"],
                             capture_output=True, text=True, timeout=60)
        check(run.returncode == 1 and "invalid_client" in run.stderr, "wrong key must fail in the CLI")
        recorded = http_json("GET", f"{self.jira}/_standin/requests")[1]["requests"]
        auth = [v for r in recorded for k, v in r["headers"] if k == "authorization"]
        check(len(recorded) == 4 and all(a.startswith("Bearer ey") for a in auth), "stand-in saw bearer tokens")

    # -- control endpoints -------------------------------------------------

    def check_ctl_sign(self) -> None:
        jwks = self.jwks()
        keys = self.ctl("GET", f"keys?tenant_id={TENANT}")[1]
        status, body = self.ctl("POST", "sign", {"tenant_id": TENANT, "header": {"typ": "JWT"},
                                                 "claims": {"sub": "x"}})
        check(status == 200, f"sign: {status} {body}")
        header, claims = jira_client.decode_jwt_unverified(body["token"])
        check(header == {"typ": "JWT", "alg": "RS256", "kid": keys["active"]}, f"sign header {header}")
        check(claims == {"sub": "x"}, "sign claims")
        verify_with_jwks(body["token"], jwks)
        other = [k for k in keys["published"] if k != keys["active"]][0]
        token = self.ctl("POST", "sign", {"tenant_id": TENANT, "claims": {}, "key": other})[1]["token"]
        check(verify_with_jwks(token, jwks)["kid"] == other, "sign with kid")
        # raw header, unsigned.
        token = self.ctl("POST", "sign", {"tenant_id": TENANT, "header": {"alg": "none"}, "raw_header": True,
                                          "claims": {"a": 1}, "signature": "none"})[1]["token"]
        check(token.endswith(".") and jira_client.decode_jwt_unverified(token)[0] == {"alg": "none"}, "alg none")
        # exact payload bytes.
        raw = '{"aud":"a","aud":"b"}'
        token = self.ctl("POST", "sign", {"tenant_id": TENANT, "raw_claims_json": raw})[1]["token"]
        check(b64url_decode(token.split(".")[1]).decode() == raw, "raw_claims_json")
        verify_with_jwks(token, jwks)
        # attacker key: never published, never verifies.
        status, body = self.ctl("POST", "sign", {"key": "attacker", "header": {"kid": keys["active"]},
                                                 "claims": {"sub": "x"}})
        check(status == 200 and body["kid"] == keys["attacker"], f"attacker sign {status} {body}")
        check(not verifies_with_any(body["token"], jwks), "attacker token verifies")
        check(keys["attacker"] not in {k["kid"] for k in jwks["keys"]}, "attacker key published")
        # hs256 with a chosen secret.
        import hmac as _hmac
        token = self.ctl("POST", "sign", {"tenant_id": TENANT, "header": {"alg": "HS256"}, "claims": {},
                                          "signature": "hs256", "hmac_secret": "s3cret"})[1]["token"]
        h, p, s = token.split(".")
        check(_hmac.compare_digest(b64url_decode(s),
                                   _hmac.new(b"s3cret", f"{h}.{p}".encode(), hashlib.sha256).digest()), "hs256")
        check(self.ctl("POST", "sign", {"tenant_id": TENANT, "key": "nope"})[0] == 404, "unknown kid")
        check(self.ctl("POST", "sign", {"tenant_id": "nope"})[0] == 404, "unknown tenant")

    def check_ctl_token(self) -> None:
        status, body = self.ctl("POST", "token", {"tenant_id": TENANT, "client_id": REPORTING_BOT,
                                                  "api": "api://jira-gateway"})
        check(status == 200, f"token: {status} {body}")
        claims = jira_client.decode_jwt_unverified(body["token"])[1]
        check(claims["aud"] == API_V2_GUID and claims["roles"] == ["Jira.Read"] and claims["ver"] == "2.0",
              "control token claims")
        verify_with_jwks(body["token"], self.jwks())
        past = int(time.time()) - 100
        body = self.ctl("POST", "token", {"tenant_id": TENANT, "client_id": CI_PIPELINE, "api": "api://jira-gateway",
                                          "overrides": {"exp": past, "aud": "api://other"}, "remove": ["roles"],
                                          "version": 1})[1]
        header, claims = jira_client.decode_jwt_unverified(body["token"])
        check(claims["exp"] == past and claims["aud"] == "api://other" and "roles" not in claims, "overrides/remove")
        check(claims["ver"] == "1.0" and claims["appid"] == CI_PIPELINE and "x5t" in header, "version override")
        verify_with_jwks(body["token"], self.jwks(v2=False))
        check(self.ctl("POST", "token", {"tenant_id": TENANT, "client_id": "nope", "api": "api://jira-gateway"})[0]
              == 404, "unknown client")

    def check_ctl_stats(self) -> None:
        status, body = self.ctl("POST", "stats/reset")
        check(status == 200, "stats reset")
        check(all(v == 0 for t in body["tenants"].values() for v in t.values()), "reset did not zero counters")
        self.jwks()
        self.jwks(v2=False)
        http("GET", f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration")
        self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway/.default")
        self.jwks(TENANT2)
        stats = self.ctl("GET", "stats")[1]["tenants"]
        check(stats[TENANT] == {"jwks_requests": 2, "discovery_requests": 1, "token_requests": 1},
              f"tenant 1 stats {stats[TENANT]}")
        check(stats[TENANT2] == {"jwks_requests": 1, "discovery_requests": 0, "token_requests": 0},
              f"tenant 2 stats {stats[TENANT2]}")

    def check_ctl_keys(self) -> None:
        before = self.ctl("GET", f"keys?tenant_id={TENANT}")[1]
        check(before["active"] in before["published"] and len(before["published"]) >= 2, "key listing")
        status, added = self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "add"})
        check(status == 200 and added["kid"] in added["published"] and added["active"] == before["active"],
              "add key")
        check(added["kid"] in {k["kid"] for k in self.jwks()["keys"]}, "added key not published")
        status, rotated = self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "rotate"})
        check(status == 200 and rotated["active"] == rotated["kid"] and before["active"] in rotated["published"],
              "rotate")
        token = self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway/.default")["access_token"]
        check(jira_client.decode_jwt_unverified(token)[0]["kid"] == rotated["kid"], "rotation not used for signing")
        verify_with_jwks(token, self.jwks())
        status, removed = self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "remove", "kid": before["active"]})
        check(status == 200 and before["active"] not in removed["published"], "remove")
        check(before["active"] not in {k["kid"] for k in self.jwks()["keys"]}, "removed key still published")
        signed = self.ctl("POST", "sign", {"tenant_id": TENANT, "key": before["active"], "claims": {}})[1]["token"]
        check(jira_client.decode_jwt_unverified(signed)[0]["kid"] == before["active"], "sign with removed key")
        check(not verifies_with_any(signed, self.jwks()), "removed key still verifies")
        # Restore the original arrangement for later checks.
        self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "publish", "kid": before["active"]})
        status, restored = self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "activate",
                                                     "kid": before["active"]})
        check(status == 200 and restored["active"] == before["active"], "activate")
        for kid in (added["kid"], rotated["kid"]):
            self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "remove", "kid": kid})
        check(self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "remove", "kid": "nope"})[0] == 404,
              "remove unknown kid")
        check(self.ctl("POST", "keys", {"tenant_id": TENANT, "action": "explode"})[0] == 400, "bad action")

    def check_ctl_faults(self) -> None:
        keys_url = f"{self.emu}/{TENANT}/discovery/v2.0/keys"
        disc_url = f"{self.emu}/{TENANT}/v2.0/.well-known/openid-configuration"
        try:
            check(self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "status:503"})[0] == 200, "set fault")
            check(http("GET", keys_url)[0] == 503 and http("GET", disc_url)[0] == 503, "status:503")
            check(http("GET", f"{self.emu}/{TENANT2}/discovery/v2.0/keys")[0] == 200, "fault leaked to tenant 2")
            self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "garbage"})
            status, _, raw = http("GET", keys_url)
            try:
                json.loads(raw)
                parsed = True
            except ValueError:
                parsed = False
            check(status == 200 and not parsed, "garbage")
            self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "empty"})
            check(http_json("GET", keys_url) == (200, {"keys": []}), "empty")
            self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "hang:1"})
            started = time.monotonic()
            status = http("GET", keys_url)[0]
            check(status == 200 and time.monotonic() - started >= 0.9, "hang:1")
            # A 60 s hang is released as soon as the fault is cleared.
            self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "hang"})
            try:
                http("GET", keys_url, timeout=1.0)
                raise AssertionError("hang did not hang")
            except TimeoutError:
                pass
            except urllib.error.URLError as err:
                check(isinstance(err.reason, TimeoutError), f"unexpected error {err}")
            self.ctl("POST", "faults", {"tenant_id": "*", "jwks": "status:500"})
            check(http("GET", f"{self.emu}/{TENANT2}/discovery/keys")[0] == 500, "wildcard fault")
            faults = self.ctl("GET", "faults")[1]["faults"]
            check(faults.get(TENANT) == faults.get(TENANT2) == "status:500"
                  and set(faults.values()) == {"status:500"}, f"fault listing {faults}")
            check(self.ctl("POST", "faults", {"tenant_id": TENANT, "jwks": "bogus"})[0] == 400, "bad fault")
            # The token endpoint is not affected by key-set faults.
            self.cert_token(REPORTING_BOT, "reporting-bot", "api://jira-gateway/.default")
        finally:
            self.ctl("POST", "faults", {"tenant_id": "*", "jwks": "none"})
        check(http("GET", keys_url)[0] == 200 and http("GET", disc_url)[0] == 200, "fault cleared")

    # -- Jira stand-in -----------------------------------------------------

    def check_standin(self) -> None:
        j = self.jira
        check(http_json("POST", f"{j}/_standin/reset") == (200, {"requests": []}), "reset")
        status, headers, raw = http("GET", f"{j}/rest/api/2/myself", headers={"x-jira-client": "reporting-bot"})
        me = json.loads(raw)
        check(status == 200 and me["name"] == "reporting-bot" and me["displayName"] == "reporting-bot", "myself")
        check(headers.get("Content-Type") == "application/json;charset=UTF-8", "Jira content type")
        check(http_json("GET", f"{j}/rest/api/latest/myself")[1]["name"] == "anonymous", "latest/myself anonymous")
        status, found = http_json("GET", f"{j}/rest/api/2/search?jql=project%3DOPS&maxResults=10")
        check(status == 200 and found["total"] == 2 and found["maxResults"] == 10 and found["startAt"] == 0, "search")
        check({i["fields"]["project"]["key"] for i in found["issues"]} == {"OPS", "SEC"}, "search projects")
        status, issue = http_json("GET", f"{j}/rest/api/2/issue/OPS-7")
        check(status == 200 and issue["key"] == "OPS-7" and issue["fields"]["project"]["key"] == "OPS", "issue GET")
        check({"summary", "status"} <= set(issue["fields"]), "issue fields")
        check(http("PUT", f"{j}/rest/api/2/issue/SEC-3", {"fields": {"summary": "x"}})[0] == 204, "issue PUT")
        check(http("DELETE", f"{j}/rest/api/2/issue/DEV-99")[0] == 204, "issue DELETE")
        status, err = http_json("GET", f"{j}/rest/api/2/issue/OPS-100")
        check(status == 404 and err == {"errorMessages": [
            "Issue does not exist or you do not have permission to see it."], "errors": {}}, "unknown issue")
        check(http("DELETE", f"{j}/rest/api/2/issue/ABC-1")[0] == 404, "unknown issue DELETE")
        status, created = http_json("POST", f"{j}/rest/api/2/issue",
                                    {"fields": {"project": {"key": "OPS"}, "summary": "new"}})
        check(status == 201 and created["id"] == "10001" and created["key"] == "OPS-101" and created["self"],
              f"create issue {created}")
        status, project = http_json("GET", f"{j}/rest/api/2/project/SEC")
        check(status == 200 and project["key"] == "SEC", "project")
        check(http("GET", f"{j}/rest/api/2/project/OPS/statuses")[0] == 200, "project subresource")
        check(http("GET", f"{j}/rest/api/2/project/NOPE")[0] == 404, "unknown project")
        check(http_json("GET", f"{j}/status") == (200, {"state": "RUNNING"}), "status")
        status, err = http_json("GET", f"{j}/rest/api/2/unknown")
        check(status == 404 and "errorMessages" in err, "unknown path")
        check(http("BREW", f"{j}/rest/api/2/myself")[0] == 404, "odd method")
        raw_path = "//rest/api/2/../myself?jql=a%2Fb&x=%zz"
        http("GET", f"{j}{raw_path}", headers={"X-Dup": "1"})
        status, rec = http_json("GET", f"{j}/_standin/requests")
        reqs = rec["requests"]
        check(status == 200 and len(reqs) == 16, f"expected 16 recorded requests, got {len(reqs)}")
        check(reqs[0]["method"] == "GET" and reqs[0]["path"] == "/rest/api/2/myself", "recorded method/path")
        check(["x-jira-client", "reporting-bot"] in reqs[0]["headers"], "recorded headers")
        check(all(name == name.lower() for r in reqs for name, _ in r["headers"]), "header names lowercase")
        check(reqs[4]["method"] == "PUT" and reqs[4]["body_length"] == len(b'{"fields": {"summary": "x"}}'),
              "recorded body length")
        check(reqs[-1]["path"] == raw_path, f"raw path altered: {reqs[-1]['path']}")
        check(reqs[-2]["method"] == "BREW", "odd method recorded")
        http("POST", f"{j}/_standin/reset")
        check(http_json("GET", f"{j}/_standin/requests")[1] == {"requests": []}, "reset clears")

    def check_health(self) -> None:
        check(self.ctl("GET", "health") == (200, {"status": "ok"}), "emulator health")
        check(self.ctl("GET", "nothing")[0] == 404, "unknown control endpoint")


def main() -> int:
    servers: list[Server] = []
    failures = 0
    try:
        emu = Server("entra-emulator", [os.path.join(HERE, "entra_emulator.py"),
                                        "--config", os.path.join(HERE, "entra-emulator.json")])
        servers.append(emu)
        jira = Server("jira-standin", [os.path.join(HERE, "jira_standin.py")])
        servers.append(jira)
        trust_local_ca()
        print(f"entra emulator at {emu.url}, jira stand-in at {jira.url}", flush=True)
        sc = SelfCheck(emu, jira)
        for name in [n for n in dir(sc) if n.startswith("check_")]:
            sc.run(name[len("check_"):], getattr(sc, name))
        failures = sum(1 for _, ok, _ in sc.results if not ok)
        print(f"{len(sc.results) - failures}/{len(sc.results)} checks passed", flush=True)
    except Exception as exc:
        print(f"FAIL  setup: {exc}", flush=True)
        failures += 1
    finally:
        for server in servers:
            rc = server.stop()
            if rc != 0:
                print(f"FAIL  {server.name} exited with {rc} on SIGTERM", flush=True)
                failures += 1
            if VERBOSE or failures:
                sys.stdout.write("".join(f"  [{server.name}] {line}" for line in server.stderr_lines[-40:]))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
