#!/usr/bin/env python3
"""A Jira service client that authenticates the way a real daemon does with Entra ID.

It obtains an app-only access token with MSAL (Microsoft's library, `msal` on PyPI) and the
OAuth 2.0 client-credentials grant, authenticating with a certificate (MSAL signs the client
assertion) or a client secret, then calls the Jira REST API through jira-entra-guard with
`Authorization: Bearer <token>`.

Works against the local Entra emulator (https://127.0.0.1:8090, trusting the stack's local CA
`stack/tls/ca.crt`) and against the real Entra ID (`--authority https://login.microsoftonline.com`;
TLS is verified with the system trust store).

Importable: msal_app / acquire_token (the MSAL flow), and the hand-made pieces the self-check
uses to send crafted requests: build_client_assertion, request_token, post_token_request, plus
decode_jwt_unverified, call_jira, load_certificate, load_private_key.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

HERE = os.path.dirname(os.path.abspath(__file__))
LOCAL_CA = os.path.join(HERE, "tls", "ca.crt")
DEFAULT_AUTHORITY = "https://127.0.0.1:8090"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
USER_AGENT = "jira-entra-guard-demo-client/1.0"
ASSERTION_LIFETIME = 600


class TokenRequestError(Exception):
    """The token endpoint refused the request (or answered with something unexpected)."""

    def __init__(self, status: int | None, body) -> None:
        self.status = status
        self.body = body
        if isinstance(body, dict):
            summary = f"{body.get('error')}: {body.get('error_description', '')}".strip()
        else:
            summary = str(body)[:300]
        where = f" with HTTP {status}" if status is not None else ""
        super().__init__(f"token request failed{where}: {summary}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _resolve(path: str) -> str:
    """Paths are taken relative to the working directory, falling back to this directory."""
    if os.path.exists(path) or os.path.isabs(path):
        return path
    alt = os.path.join(os.path.dirname(os.path.abspath(__file__)), path)
    return alt if os.path.exists(alt) else path


def load_certificate(path: str) -> x509.Certificate:
    with open(_resolve(path), "rb") as fh:
        return x509.load_pem_x509_certificate(fh.read())


def load_private_key(path: str):
    with open(_resolve(path), "rb") as fh:
        return serialization.load_pem_private_key(fh.read(), password=None)


def token_endpoint(authority: str, tenant: str) -> str:
    return f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token"


def build_client_assertion(
    client_id: str,
    audience: str,
    private_key,
    certificate: x509.Certificate,
    *,
    now: float | None = None,
    lifetime: int = ASSERTION_LIFETIME,
    include_x5t_s256: bool = True,
    extra_header: dict | None = None,
    extra_claims: dict | None = None,
) -> str:
    """Returns a compact RS256 client assertion for the token endpoint `audience`.

    Header: alg RS256, typ JWT, x5t (SHA-1 thumbprint of the certificate DER) and
    x5t#S256 (SHA-256 thumbprint). Claims: aud, iss = sub = client_id, jti, nbf,
    iat, exp = now + lifetime.
    """
    der = certificate.public_bytes(serialization.Encoding.DER)
    header = {"alg": "RS256", "typ": "JWT", "x5t": b64url(hashlib.sha1(der).digest())}
    if include_x5t_s256:
        header["x5t#S256"] = b64url(hashlib.sha256(der).digest())
    header.update(extra_header or {})
    issued = int(now if now is not None else time.time())
    claims = {
        "aud": audience,
        "iss": client_id,
        "sub": client_id,
        "jti": str(uuid.uuid4()),
        "nbf": issued,
        "iat": issued,
        "exp": issued + lifetime,
    }
    claims.update(extra_claims or {})
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    )
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


def post_token_request(url: str, form: dict, timeout: float = 30.0, headers: dict | None = None):
    """POSTs a form to a token endpoint; returns (status, parsed JSON or raw text)."""
    data = urllib.parse.urlencode(form).encode("ascii")
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", USER_AGENT)
    req.add_header("client-request-id", str(uuid.uuid4()))
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def request_token(
    authority: str,
    tenant: str,
    client_id: str,
    scope: str,
    *,
    cert_path: str | None = None,
    key_path: str | None = None,
    client_secret: str | None = None,
    assertion: str | None = None,
    timeout: float = 30.0,
) -> dict:
    """Runs the client-credentials grant and returns the token response.

    Authenticates with, in order of preference: a ready-made `assertion`, the
    certificate/key pair, or `client_secret`. Raises TokenRequestError on any
    non-200 answer.
    """
    url = token_endpoint(authority, tenant)
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
    if assertion is None and cert_path and key_path:
        assertion = build_client_assertion(
            client_id, url, load_private_key(key_path), load_certificate(cert_path)
        )
    if assertion is not None:
        form["client_assertion_type"] = JWT_BEARER
        form["client_assertion"] = assertion
    elif client_secret is not None:
        form["client_secret"] = client_secret
    else:
        raise ValueError("need a certificate and key, a client secret or an assertion")
    status, body = post_token_request(url, form, timeout=timeout)
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise TokenRequestError(status, body)
    return body


def is_local_authority(authority: str) -> bool:
    host = (urllib.parse.urlsplit(authority).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def trust_ca_file(path: str) -> None:
    """Makes MSAL (and Azure Identity) trust `path`. Both send through `requests`, which lets a
    REQUESTS_CA_BUNDLE in the environment win over the `verify=` given to MSAL, so setting the
    variable is the one setting that holds in every environment."""
    os.environ["REQUESTS_CA_BUNDLE"] = path


def msal_app(authority: str, tenant: str, client_id: str, *, cert_path: str | None = None,
             key_path: str | None = None, client_secret: str | None = None,
             send_x5c: bool = False, ca_file: str | None = None, timeout: float = 30.0):
    """An MSAL ConfidentialClientApplication for `{authority}/{tenant}`.

    With a certificate MSAL signs the client assertion: RS256 with the SHA-1 thumbprint (`x5t`),
    or, with `send_x5c`, PS256 with `x5t#S256` and the certificate in `x5c` (what Entra's
    subject name/issuer authentication needs). A loopback authority (the emulator) is used
    as-is: MSAL's instance discovery would ask login.microsoftonline.com about it."""
    import msal  # imported here so the hand-made helpers work without it

    if client_secret is not None:
        credential = client_secret
    elif cert_path and key_path:
        with open(_resolve(key_path), encoding="ascii") as fh:
            key_pem = fh.read()
        cert = load_certificate(cert_path)
        if send_x5c:
            credential = {"private_key": key_pem, "public_certificate":
                          cert.public_bytes(serialization.Encoding.PEM).decode("ascii")}
        else:
            credential = {"private_key": key_pem, "thumbprint": cert.fingerprint(hashes.SHA1()).hex()}
    else:
        raise ValueError("need a certificate and key, or a client secret")
    local = is_local_authority(authority)
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential,
        authority=f"{authority.rstrip('/')}/{tenant}",
        verify=ca_file or True, timeout=timeout,
        instance_discovery=False if local else None,
    )


def acquire_token(app, scope: str) -> dict:
    """The token for `scope` from MSAL (its cache first); raises TokenRequestError with MSAL's
    error answer (`error`, `error_description`, `error_codes`)."""
    result = app.acquire_token_for_client(scopes=[scope])
    if "access_token" not in result:
        raise TokenRequestError(None, result)
    return result


def decode_jwt_unverified(token: str) -> tuple[dict, dict]:
    """Decodes header and claims for display only; the signature is NOT checked."""
    header_b64, payload_b64, _sig = token.split(".")
    return json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))


def call_jira(base: str, method: str, path: str, token: str | None, data: str | None = None,
              timeout: float = 30.0, headers: dict | None = None):
    """Calls the Jira REST API; returns (status, headers, body bytes)."""
    body = data.encode("utf-8") if data is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=body, method=method.upper())
    req.add_header("Accept", "application/json")
    req.add_header("User-Agent", USER_AGENT)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Get an Entra ID app-only token (client credentials) and call Jira with it."
    )
    parser.add_argument("--tenant", required=True, help="directory (tenant) id")
    parser.add_argument("--client-id", required=True, help="application (client) id")
    parser.add_argument("--cert", help="client certificate (PEM)")
    parser.add_argument("--key", help="client private key (PEM, unencrypted)")
    parser.add_argument("--client-secret", help="client secret, instead of --cert/--key")
    parser.add_argument("--scope", required=True, help="e.g. api://jira-gateway/.default")
    parser.add_argument("--authority", default=DEFAULT_AUTHORITY,
                        help="Entra authority (default: %(default)s; real: https://login.microsoftonline.com)")
    parser.add_argument("--ca-file",
                        help="CA to trust for the authority (default: the local stack's CA for a "
                             f"loopback authority, {os.path.relpath(LOCAL_CA)}; else the system's)")
    parser.add_argument("--send-x5c", action="store_true",
                        help="send the certificate in the assertion (x5c; MSAL then signs PS256)")
    parser.add_argument("--jira", default="http://127.0.0.1:10000",
                        help="Jira base URL, i.e. the gateway (default: %(default)s)")
    parser.add_argument("--token-only", action="store_true", help="print only the raw access token")
    parser.add_argument("--show-claims", action="store_true",
                        help="print the access token's decoded header and claims (display only)")
    parser.add_argument("--data", help="JSON request body for the Jira call")
    parser.add_argument("method", nargs="?", help="HTTP method of the Jira call, e.g. GET")
    parser.add_argument("path", nargs="?", help="Jira path, e.g. /rest/api/2/myself")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    if args.method and not args.path:
        parser.error("METHOD needs a PATH")
    if not args.client_secret and not (args.cert and args.key):
        parser.error("give --cert and --key, or --client-secret")

    ca_file = args.ca_file or (LOCAL_CA if is_local_authority(args.authority) else None)
    if ca_file:
        trust_ca_file(ca_file)
    try:
        app = msal_app(args.authority, args.tenant, args.client_id,
                       cert_path=None if args.client_secret else args.cert,
                       key_path=None if args.client_secret else args.key,
                       client_secret=args.client_secret, send_x5c=args.send_x5c,
                       ca_file=ca_file, timeout=args.timeout)
        token_response = acquire_token(app, args.scope)
    except TokenRequestError as err:
        print(f"token request failed: {err.body.get('error')}", file=sys.stderr)
        print(json.dumps(err.body, indent=2), file=sys.stderr)
        return 1
    except Exception as err:  # MSAL raises ValueError, requests' errors, ... on set-up failures
        print(f"token request failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1

    token = token_response["access_token"]
    if args.token_only:
        print(token)
        return 0

    print(f"token: {token_response.get('token_type')} expires_in={token_response.get('expires_in')}")
    if args.show_claims:
        header, claims = decode_jwt_unverified(token)
        print("header: " + json.dumps(header, indent=2))
        print("claims: " + json.dumps(claims, indent=2))
    if not args.method:
        return 0

    try:
        status, _headers, body = call_jira(args.jira, args.method, args.path, token, args.data,
                                           timeout=args.timeout)
    except OSError as err:
        print(f"Jira call failed: {err}", file=sys.stderr)
        return 1
    print(f"HTTP {status}")
    if body:
        text = body.decode("utf-8", "replace")
        try:
            text = json.dumps(json.loads(text), indent=2)
        except ValueError:
            pass
        print(text)
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
