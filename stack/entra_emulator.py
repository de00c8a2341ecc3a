#!/usr/bin/env python3
"""Local Microsoft Entra ID emulator for the jira-entra-guard stack.

Serves, per configured tenant, the pieces of Entra ID that a client-credentials
service client and a token-verifying gateway talk to:

  GET  /{tenant}/v2.0/.well-known/openid-configuration   (v2 discovery)
  GET  /{tenant}/.well-known/openid-configuration        (v1 discovery)
  GET  /{tenant}/discovery/v2.0/keys                     (v2 signing-key set)
  GET  /{tenant}/discovery/keys                          (v1 signing-key set)
  POST /{tenant}/oauth2/v2.0/token                       (client credentials)
  POST /{tenant}/oauth2/token                            (v1 endpoint, `resource`)
  GET  /common/discovery/instance                        (instance discovery, this host only)

over HTTPS with a certificate from the stack's local CA (stack/local_ca.py; `--http` serves
plain HTTP for debugging). `{tenant}` is a tenant GUID or one of its configured domain names.
Client assertions are checked as Entra checks them (RS256 or PS256, `x5t`/`x5t#S256` with or
without padding, optional `x5c`, `aud` = the token endpoint the client used), so Microsoft's
libraries (MSAL, Azure Identity) get tokens from it unmodified. Plus loopback-only control
endpoints under /_emulator/ that the tests use to mint crafted tokens, rotate keys, inject
key-set faults and read counters.
See stack/README.md for the full description.

Only the Python standard library and `cryptography` are used.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

import local_ca
from loopback_server import is_loopback, serve

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"

# The Microsoft clouds a tenant can live in (a tenant's `cloud` in the configuration): the host
# Entra ID answers on, and the issuer of v1 and v2 access tokens ({tid}: the tenant GUID).
# Entra External ID issues no v1 tokens.
CLOUDS = {
    "public": ("login.microsoftonline.com", "https://sts.windows.net/{tid}/",
               "https://login.microsoftonline.com/{tid}/v2.0"),
    "usgov": ("login.microsoftonline.us", "https://sts.windows.net/{tid}/",
              "https://login.microsoftonline.us/{tid}/v2.0"),
    "china": ("login.partner.microsoftonline.cn", "https://sts.chinacloudapi.cn/{tid}/",
              "https://login.partner.microsoftonline.cn/{tid}/v2.0"),
    "external_id": ("{tid}.ciamlogin.com", None, "https://{tid}.ciamlogin.com/{tid}/v2.0"),
}
SIGNING_CERT_CN = "accounts.accesscontrol.windows.net"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Entra issues app-only tokens back-dated by five minutes (nbf/iat) and valid
# for roughly an hour from the moment of issue.
BACKDATE_SECONDS = 300
EXPIRES_IN = 3599
TOKEN_LIFETIME = BACKDATE_SECONDS + EXPIRES_IN + 1  # exp - iat = 3900

# How far in the future a client assertion's nbf may lie.
ASSERTION_NBF_SKEW = 300

MAX_BODY = 1024 * 1024
DEFAULT_HANG_SECONDS = 60.0

JSON_CT = "application/json; charset=utf-8"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


# --------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not B64URL_RE.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def int_to_b64url(value: int) -> str:
    length = max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def thumbprint_sha1(der: bytes) -> str:
    return b64url(hashlib.sha1(der).digest())


def thumbprint_sha256(der: bytes) -> str:
    return b64url(hashlib.sha256(der).digest())


def rs256_sign(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


# SHA-256's DigestInfo prefix with the AlgorithmIdentifier's NULL parameter left out: a
# malformed PKCS#1 v1.5 encoding that a strict verifier must refuse (RFC 8017 §9.2 note 1 allows
# only the form with NULL for SHA-2).
DIGEST_INFO_SHA256_WITHOUT_NULL = bytes.fromhex("302f300b0609608648016503040201" "0420")


def rs256_sign_without_null(private_key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """An RSASSA-PKCS1-v1_5 signature whose DigestInfo lacks the NULL parameter."""
    numbers = private_key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8
    t = DIGEST_INFO_SHA256_WITHOUT_NULL + hashlib.sha256(data).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


def compact_jws(header_bytes: bytes, payload_bytes: bytes, sign) -> str:
    """Builds header.payload.signature; `sign` maps the signing input to bytes."""
    signing_input = (b64url(header_bytes) + "." + b64url(payload_bytes)).encode("ascii")
    return signing_input.decode("ascii") + "." + b64url(sign(signing_input))


def utc_timestamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# --------------------------------------------------------------------------
# Keys, registrations, tenants
# --------------------------------------------------------------------------

class SigningKey:
    """An RSA-2048 token-signing key with its self-signed certificate."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNING_CERT_CN)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=5 * 365))
            .sign(self.private_key, hashes.SHA256())
        )
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.x5t = thumbprint_sha1(self.cert_der)
        self.kid = self.x5t
        numbers = self.private_key.public_key().public_numbers()
        self.n = int_to_b64url(numbers.n)
        self.e = int_to_b64url(numbers.e)

    def sign(self, data: bytes) -> bytes:
        return rs256_sign(self.private_key, data)

    def jwk(self, issuer: str | None) -> dict:
        key = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": self.n,
            "e": self.e,
            "x5c": [base64.b64encode(self.cert_der).decode("ascii")],
        }
        if issuer is not None:
            key["issuer"] = issuer
        return key


class Api:
    def __init__(self, raw: dict) -> None:
        self.name = raw.get("name") or raw["app_id_uri"]
        self.app_id = str(uuid.UUID(raw["app_id"]))
        self.app_id_uri = raw.get("app_id_uri")
        version = int(raw.get("access_token_version", 1))
        if version not in (1, 2):
            raise ValueError(f"api {self.name}: access_token_version must be 1 or 2")
        self.version = version

    def matches(self, resource: str) -> bool:
        if GUID_RE.match(resource):
            return resource.lower() == self.app_id
        return self.app_id_uri is not None and resource == self.app_id_uri


class ClientCert:
    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            cert = x509.load_pem_x509_certificate(fh.read())
        der = cert.public_bytes(serialization.Encoding.DER)
        self.path = path
        self.public_key = cert.public_key()
        self.x5t = thumbprint_sha1(der)
        self.x5t_s256 = thumbprint_sha256(der)


class Client:
    def __init__(self, raw: dict, tenant_id: str, base_dir: str) -> None:
        self.name = raw.get("name") or raw["app_id"]
        self.app_id = str(uuid.UUID(raw["app_id"]))
        self.object_id = str(uuid.UUID(raw["object_id"])) if raw.get("object_id") else str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"entra-emulator:{tenant_id}:{self.app_id}")
        )
        paths = list(raw.get("certificates") or [])
        if raw.get("certificate"):
            paths.insert(0, raw["certificate"])
        self.certs = [ClientCert(os.path.join(base_dir, p)) for p in paths]
        self.client_secret = raw.get("client_secret")
        self.roles = {k: list(v) for k, v in (raw.get("roles") or {}).items()}

    def roles_for(self, api: Api) -> list[str]:
        for key in (api.app_id_uri, api.app_id, api.name):
            if key is not None and key in self.roles:
                return list(self.roles[key])
        for key, value in self.roles.items():
            if GUID_RE.match(key) and key.lower() == api.app_id:
                return list(value)
        return []


class Tenant:
    def __init__(self, raw: dict, base_dir: str) -> None:
        self.tenant_id = str(uuid.UUID(raw["tenant_id"]))
        # Verified domain names (e.g. contoso.onmicrosoft.com): Entra accepts them in the
        # authority path in place of the GUID.
        self.domains = [str(d).lower() for d in raw.get("domains", [])]
        self.cloud = raw.get("cloud", "public")
        if self.cloud not in CLOUDS:
            raise ValueError(f"tenant {self.tenant_id}: cloud {self.cloud!r} is not one of {sorted(CLOUDS)}")
        self.apis = [Api(a) for a in raw.get("apis", [])]
        if self.v1_issuer is None and any(api.version == 1 for api in self.apis):
            raise ValueError(f"tenant {self.tenant_id}: the {self.cloud} cloud issues no v1 tokens")
        self.clients: dict[str, Client] = {}
        for c in raw.get("clients", []):
            client = Client(c, self.tenant_id, base_dir)
            self.clients[client.app_id] = client
        self.keys: dict[str, SigningKey] = {}
        self.published: list[str] = []
        self.active: str | None = None
        for _ in range(2):
            self.add_key()
        self.active = self.published[0]
        self.stats = {"jwks_requests": 0, "discovery_requests": 0, "token_requests": 0}
        self.fault = "none"
        self.fault_changed = threading.Event()

    @property
    def authority(self) -> str:
        """The URL of the tenant's cloud, as clients outside this emulator would reach it."""
        return "https://" + CLOUDS[self.cloud][0].format(tid=self.tenant_id)

    @property
    def v1_issuer(self) -> str | None:
        form = CLOUDS[self.cloud][1]
        return None if form is None else form.format(tid=self.tenant_id)

    @property
    def v2_issuer(self) -> str:
        return CLOUDS[self.cloud][2].format(tid=self.tenant_id)

    def add_key(self) -> str:
        key = SigningKey()
        self.keys[key.kid] = key
        self.published.append(key.kid)
        return key.kid

    def find_api(self, resource: str) -> Api | None:
        for api in self.apis:
            if api.matches(resource):
                return api
        return None

    def find_client(self, client_id: str) -> Client | None:
        try:
            return self.clients.get(str(uuid.UUID(client_id)))
        except ValueError:
            return None

    def key_set(self, v2: bool) -> dict:
        issuer = self.v2_issuer if v2 else None
        return {"keys": [self.keys[kid].jwk(issuer) for kid in self.published]}

    def set_fault(self, fault: str) -> None:
        self.fault = fault
        # Wake up requests that are hanging on the previous fault.
        self.fault_changed.set()
        self.fault_changed = threading.Event()


class OAuthError(Exception):
    """An Entra-style OAuth error response."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def body(self, correlation_id: str | None = None) -> dict:
        trace_id = str(uuid.uuid4())
        correlation_id = correlation_id or str(uuid.uuid4())
        ts = utc_timestamp()
        description = (
            f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {ts}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{PUBLIC_AUTHORITY}/error?code={self.code}",
        }


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def tenant_not_found(tenant: str, error: str) -> OAuthError:
    return OAuthError(
        400, error, 90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, "
        "this may happen if there are no active subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> OAuthError:
    return OAuthError(
        400, "invalid_request", 900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


# --------------------------------------------------------------------------
# Emulator state and token logic
# --------------------------------------------------------------------------

class Emulator:
    def __init__(self, config_path: str) -> None:
        with open(config_path, "r", encoding="utf-8") as fh:
            config = json.load(fh)
        base_dir = os.path.dirname(os.path.abspath(config_path))
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        for raw in config.get("tenants", []):
            tenant = Tenant(raw, base_dir)
            self.tenants[tenant.tenant_id] = tenant
        # Never published anywhere: tokens signed with it must always be rejected.
        self.attacker_key = SigningKey()

    def tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant named by GUID or by one of its domain names."""
        try:
            return self.tenants.get(str(uuid.UUID(tenant_id)))
        except (ValueError, TypeError, AttributeError):
            pass
        if not isinstance(tenant_id, str):
            return None
        name = tenant_id.lower()
        return next((t for t in self.tenants.values() if name in t.domains), None)

    def signing_key(self, tenant: Tenant | None, selector: str | None) -> SigningKey:
        selector = selector or "active"
        if selector == "attacker":
            return self.attacker_key
        if tenant is None:
            raise ControlError(400, "tenant_id is required unless key is 'attacker'")
        if selector == "active":
            return tenant.keys[tenant.active]
        key = tenant.keys.get(selector)
        if key is None:
            raise ControlError(404, f"unknown kid '{selector}' in tenant {tenant.tenant_id}")
        return key

    # -- access tokens -----------------------------------------------------

    def build_access_token(
        self,
        tenant: Tenant,
        client: Client,
        api: Api,
        requested_resource: str,
        acr: str,
        version: int | None = None,
        overrides: dict | None = None,
        remove: list | None = None,
        key: SigningKey | None = None,
        header_overrides: dict | None = None,
    ) -> tuple[str, dict, dict]:
        version = version or api.version
        key = key or tenant.keys[tenant.active]
        now = int(time.time())
        iat = now - BACKDATE_SECONDS
        rh_bytes = uuid.UUID(tenant.tenant_id).bytes_le + uuid.UUID(api.app_id).bytes_le
        common_tail = {
            "idtyp": "app",
            "oid": client.object_id,
            "rh": "0.A" + b64url(rh_bytes) + "AAA.",
        }
        roles = client.roles_for(api)
        if version == 1:
            aud = api.app_id if GUID_RE.match(requested_resource) else requested_resource
            header = {"typ": "JWT", "alg": "RS256", "x5t": key.x5t, "kid": key.kid}
            claims = {
                "aud": aud,
                "iss": tenant.v1_issuer,
                "iat": iat,
                "nbf": iat,
                "exp": iat + TOKEN_LIFETIME,
                "aio": base64.b64encode(secrets.token_bytes(40)).decode("ascii"),
                "appid": client.app_id,
                "appidacr": acr,
                "idp": tenant.v1_issuer,
                **common_tail,
            }
        else:
            header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
            claims = {
                "aud": api.app_id,
                "iss": tenant.v2_issuer,
                "iat": iat,
                "nbf": iat,
                "exp": iat + TOKEN_LIFETIME,
                "aio": base64.b64encode(secrets.token_bytes(40)).decode("ascii"),
                "azp": client.app_id,
                "azpacr": acr,
                **common_tail,
            }
        if roles:
            claims["roles"] = roles
        claims["sub"] = client.object_id
        claims["tid"] = tenant.tenant_id
        claims["uti"] = b64url(secrets.token_bytes(16))
        claims["ver"] = "1.0" if version == 1 else "2.0"
        if overrides:
            claims.update(overrides)
        for name in remove or []:
            claims.pop(name, None)
        if header_overrides:
            header.update(header_overrides)
        token = compact_jws(json_compact(header), json_compact(claims), key.sign)
        return token, header, claims

    # -- token endpoint ----------------------------------------------------

    def token_endpoint(self, tenant: Tenant, form: dict, basic: tuple | None, base_url: str, v1: bool) -> dict:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant_type}'.")

        client_id = form.get("client_id")
        if not client_id and basic:
            client_id = basic[0]
        if not client_id:
            raise missing_parameter("client_id")
        client = tenant.find_client(client_id)
        if client is None:
            raise OAuthError(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant or consented to by any user in the tenant. "
                "You may have sent your authentication request to the wrong tenant.",
            )

        resource = self._requested_resource(form, v1)
        api = tenant.find_api(resource)
        if api is None:
            raise OAuthError(
                400, "invalid_scope", 500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{tenant.tenant_id}. This can happen if the application has not been installed by "
                "the administrator of the tenant or consented to by any user in the tenant. You might "
                "have sent your authentication request to the wrong tenant.",
            )

        acr = self._authenticate_client(tenant, client, form, basic, base_url)
        token, _header, claims = self.build_access_token(tenant, client, api, resource, acr)
        if v1:
            return {
                "token_type": "Bearer",
                "expires_in": str(EXPIRES_IN),
                "ext_expires_in": str(EXPIRES_IN),
                "expires_on": str(claims["exp"]),
                "not_before": str(claims["nbf"]),
                "resource": resource,
                "access_token": token,
            }
        return {
            "token_type": "Bearer",
            "expires_in": EXPIRES_IN,
            "ext_expires_in": EXPIRES_IN,
            "access_token": token,
        }

    @staticmethod
    def _requested_resource(form: dict, v1: bool) -> str:
        if v1 and "scope" not in form:
            resource = form.get("resource")
            if not resource:
                raise missing_parameter("resource")
            return resource
        scope = form.get("scope")
        if not scope:
            raise missing_parameter("scope")
        scopes = scope.split()
        suffix = "/.default"
        if len(scopes) != 1 or not scopes[0].endswith(suffix) or len(scopes[0]) == len(suffix):
            raise OAuthError(
                400, "invalid_scope", 70011,
                "The provided request must include a 'scope' input parameter. The provided value "
                f"for the input parameter 'scope' is not valid. The scope {scope} is not valid. "
                "Client credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        return scopes[0][: -len(suffix)]

    def _authenticate_client(self, tenant: Tenant, client: Client, form: dict, basic, base_url: str) -> str:
        assertion = form.get("client_assertion")
        assertion_type = form.get("client_assertion_type")
        secret = form.get("client_secret")
        if secret is None and basic:
            secret = basic[1]
        if assertion is not None and secret is not None:
            raise OAuthError(400, "invalid_request", 9002313,
                             "Invalid request. Request is malformed or invalid: only one client "
                             "credential ('client_assertion' or 'client_secret') may be presented.")
        if assertion is not None or assertion_type is not None:
            if not assertion_type:
                raise missing_parameter("client_assertion_type")
            if assertion_type != JWT_BEARER:
                raise OAuthError(400, "invalid_request", 9002313,
                                 f"Invalid request. The client_assertion_type '{assertion_type}' "
                                 f"is not supported; expected '{JWT_BEARER}'.")
            if not assertion:
                raise missing_parameter("client_assertion")
            self._verify_assertion(tenant, client, assertion, base_url)
            return "2"
        if secret is not None:
            if client.client_secret is None or not hmac.compare_digest(
                secret.encode("utf-8"), client.client_secret.encode("utf-8")
            ):
                raise OAuthError(
                    401, "invalid_client", 7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is "
                    "the client secret value, not the client secret ID, for a secret added to app "
                    f"'{client.app_id}'.",
                )
            return "1"
        raise OAuthError(401, "invalid_client", 7000216,
                         "'client_assertion', 'client_secret' or 'request' is required for the "
                         "'client_credentials' grant type.")

    def _verify_assertion(self, tenant: Tenant, client: Client, assertion: str, base_url: str) -> None:
        header, claims, signing_input, signature = parse_assertion(assertion)
        verify_signature = assertion_verifier(header.get("alg"))
        cert = find_assertion_certificate(client, header)
        try:
            verify_signature(cert.public_key, signature, signing_input)
        except InvalidSignature:
            raise OAuthError(
                401, "invalid_client", 700027,
                "Client assertion failed signature validation. [Reason - The provided signature "
                f"value did not match the expected signature value., Thumbprint of key used by "
                f"client: '{cert.x5t}']",
            ) from None
        check_assertion_audience(claims.get("aud"), tenant, base_url)
        check_assertion_subject(claims, client)
        check_assertion_times(claims)


ASSERTION_MALFORMED = (401, "invalid_client", 50027, "JWT token is invalid or malformed (client assertion).")


def parse_assertion(assertion: str) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS, or AADSTS50027."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError(*ASSERTION_MALFORMED)
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise OAuthError(*ASSERTION_MALFORMED) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise OAuthError(*ASSERTION_MALFORMED)
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


def _verify_rs256(public_key, signature: bytes, data: bytes) -> None:
    public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _verify_ps256(public_key, signature: bytes, data: bytes) -> None:
    # RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash.
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    public_key.verify(signature, data, pss, hashes.SHA256())


ASSERTION_ALGORITHMS = {"RS256": _verify_rs256, "PS256": _verify_ps256}


def assertion_verifier(alg):
    verifier = ASSERTION_ALGORITHMS.get(alg) if isinstance(alg, str) else None
    if verifier is None:
        raise OAuthError(401, "invalid_client", 5002738,
                         f"Invalid JWT token. '{alg}' is not a supported signature algorithm. "
                         "Supported signing algorithms are: 'RS256, PS256'.")
    return verifier


def _unpadded(thumbprint) -> str | None:
    """MSAL sends thumbprints base64url-encoded *with* `=` padding, others without; Entra takes
    both."""
    return thumbprint.rstrip("=") if isinstance(thumbprint, str) else None


def _key_not_found(presented, client: Client) -> OAuthError:
    configured = ", ".join(f"'{c.x5t}'" for c in client.certs) or "none"
    return OAuthError(
        401, "invalid_client", 700027,
        "Client assertion failed signature validation. [Reason - The key was not found., "
        f"Thumbprint of key used by client: '{presented or ''}', Configured keys for this "
        f"application: [{configured}]]",
    )


def _x5c_leaf_thumbprints(x5c) -> tuple[str, str]:
    """SHA-1 and SHA-256 thumbprints of the first (leaf) certificate of an `x5c` header."""
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise OAuthError(*ASSERTION_MALFORMED)
    try:
        # MSAL copies the PEM body, line breaks included.
        der = base64.b64decode("".join(x5c[0].split()), validate=True)
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise OAuthError(*ASSERTION_MALFORMED) from None
    return thumbprint_sha1(der), thumbprint_sha256(der)


def find_assertion_certificate(client: Client, header: dict) -> ClientCert:
    """The registered certificate the assertion's header names by `x5t` and/or `x5t#S256`
    (every thumbprint given must match it). An `x5c` chain is accepted when its leaf is that
    same certificate; it never stands in for a thumbprint or a registration."""
    x5t, x5t_s256 = _unpadded(header.get("x5t")), _unpadded(header.get("x5t#S256"))
    presented = header.get("x5t") if x5t is not None else header.get("x5t#S256")
    if x5t is None and x5t_s256 is None:
        raise _key_not_found(presented, client)
    cert = next((c for c in client.certs
                 if (x5t is None or x5t == c.x5t) and (x5t_s256 is None or x5t_s256 == c.x5t_s256)),
                None)
    if cert is None:
        raise _key_not_found(presented, client)
    if "x5c" in header and _x5c_leaf_thumbprints(header["x5c"]) != (cert.x5t, cert.x5t_s256):
        raise _key_not_found(presented, client)
    return cert


def assertion_audiences(tenant: Tenant, base_url: str) -> set[str]:
    """The token endpoints an assertion may name: v2 and v1, on the host the client used or on
    the tenant's cloud's authority, with the tenant as GUID or domain name."""
    return {
        f"{base}/{name}/{path}".lower()
        for base in (base_url, tenant.authority)
        for name in (tenant.tenant_id, *tenant.domains)
        for path in ("oauth2/v2.0/token", "oauth2/token")
    }


def check_assertion_audience(aud, tenant: Tenant, base_url: str) -> None:
    if not isinstance(aud, str) or aud.lower() not in assertion_audiences(tenant, base_url):
        raise OAuthError(
            401, "invalid_client", 700021,
            f"Client assertion audience claim does not match the token endpoint. Audience in "
            f"the assertion: '{aud}'. Expected: '{base_url}/{tenant.tenant_id}/oauth2/v2.0/token'.",
        )


def check_assertion_subject(claims: dict, client: Client) -> None:
    for value in (claims.get("iss"), claims.get("sub")):
        if not isinstance(value, str) or value.lower() != client.app_id:
            raise OAuthError(
                401, "invalid_client", 700021,
                "Client assertion application identifier doesn't match 'client_id' parameter. "
                "The 'iss' and 'sub' claims of the assertion must both be the client id.",
            )


def check_assertion_times(claims: dict) -> None:
    """`exp` in the future, `nbf` (if any) at most five minutes ahead; numbers may be floats
    (MSAL sends `time.time()`). A `jti` is required; its reuse is not refused, as MSAL reuses
    one assertion for several requests within its lifetime."""
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not _is_number(exp) or (nbf is not None and not _is_number(nbf)) \
            or ("iat" in claims and not _is_number(claims["iat"])):
        raise OAuthError(*ASSERTION_MALFORMED)
    if exp <= now or (nbf is not None and nbf > now + ASSERTION_NBF_SKEW):
        raise OAuthError(
            401, "invalid_client", 700024,
            f"Client assertion is not within its valid time range. Current time: "
            f"{_iso(now)}, assertion valid from {_iso(nbf) if nbf is not None else 'unspecified'}, "
            f"expiry time of assertion {_iso(exp)}.",
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise OAuthError(401, "invalid_client", 50027,
                         "JWT token is invalid or malformed: the client assertion has no 'jti' claim.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _iso(ts) -> str:
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

METADATA_ROUTES = {
    "v2.0/.well-known/openid-configuration": ("discovery", True),
    ".well-known/openid-configuration": ("discovery", False),
    "discovery/v2.0/keys": ("keys", True),
    "discovery/keys": ("keys", False),
}
TOKEN_ROUTES = {"oauth2/v2.0/token": False, "oauth2/token": True}

VALID_FAULT_RE = re.compile(r"^(none|garbage|empty|duplicate-kid|hang(:\d+(\.\d+)?)?|status:\d{3})$")


class Handler(BaseHTTPRequestHandler):
    server_version = "entra-emulator"

    def version_string(self) -> str:
        return self.server_version

    protocol_version = "HTTP/1.1"
    emulator: Emulator  # set on the subclass in main()
    scheme = "https"  # "http" when serving plain HTTP (set in main())

    # -- plumbing ----------------------------------------------------------

    def log_request(self, code="-", size="-") -> None:
        code = getattr(code, "value", code)
        sys.stderr.write(f"entra-emulator {self.command} {self.path} {code}\n")
        sys.stderr.flush()

    def log_message(self, fmt, *args) -> None:
        sys.stderr.write("entra-emulator " + (fmt % args) + "\n")
        sys.stderr.flush()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ControlError(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ControlError(413, "request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str = JSON_CT, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj, extra: dict | None = None) -> None:
        self._send(status, json_compact(obj), JSON_CT, extra)

    def _send_oauth_error(self, err: OAuthError) -> None:
        correlation = self.headers.get("client-request-id")
        body = err.body(correlation)
        self._send_json(err.status, body, {
            "Cache-Control": "no-store, no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": body["trace_id"],
        })

    def _host(self) -> str:
        host = self.headers.get("Host")
        if host:
            return host.strip()
        addr, port = self.server.server_address[:2]
        return f"{addr}:{port}"

    def _scheme(self) -> str:
        """The scheme the client used: a proxy in front says so in X-Forwarded-Proto."""
        forwarded = self.headers.get("X-Forwarded-Proto", "").split(",", 1)[0].strip().lower()
        return forwarded if forwarded in ("http", "https") else self.scheme

    def _base_url(self) -> str:
        return f"{self._scheme()}://{self._host()}"

    # -- dispatch ----------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, ControlError):
            self.close_connection = True
            self._send_json(400, {"error": "invalid request body"})
            return
        url = urlsplit(self.path)
        path = url.path
        try:
            if path == "/_emulator" or path.startswith("/_emulator/"):
                self._control(path, parse_qs(url.query), body)
            else:
                self._entra(path, body)
        except OAuthError as err:
            self._send_oauth_error(err)
        except ControlError as err:
            self._send_json(err.status, {"error": err.message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (e.g. gave up on a hang)
        except Exception as exc:  # keep serving; report the failure
            self.log_message("internal error: %r", exc)
            self._send_json(500, {"error": "internal_server_error", "error_description": str(exc)})

    # -- Entra endpoints ---------------------------------------------------

    def _entra(self, path: str, body: bytes) -> None:
        segments = path.lstrip("/").split("/", 1)
        tenant_part = unquote(segments[0])
        rest = segments[1] if len(segments) > 1 else ""
        emu = self.emulator

        if tenant_part.lower() == "common" and rest == "discovery/instance":
            self._send_json(200, self._instance_discovery(parse_qs(urlsplit(self.path).query)))
            return

        if rest in METADATA_ROUTES:
            kind, v2 = METADATA_ROUTES[rest]
            with emu.lock:
                tenant = emu.tenant(tenant_part)
                if tenant is None:
                    raise tenant_not_found(tenant_part, "invalid_tenant")
                tenant.stats["jwks_requests" if kind == "keys" else "discovery_requests"] += 1
                fault, fault_changed = tenant.fault, tenant.fault_changed
            if self.command not in ("GET", "HEAD"):
                self._send_json(405, {"error": "method_not_allowed"}, {"Allow": "GET"})
                return
            if fault.startswith("hang"):
                seconds = float(fault.split(":", 1)[1]) if ":" in fault else DEFAULT_HANG_SECONDS
                fault_changed.wait(seconds)
                with emu.lock:
                    fault = tenant.fault
                if fault.startswith("hang"):
                    fault = "none"
            if fault.startswith("status:"):
                status = int(fault.split(":", 1)[1])
                self._send_json(status, {"error": "temporarily_unavailable",
                                         "error_description": f"Injected fault: HTTP {status}."})
                return
            if fault == "garbage":
                self._send(200, b'{"keys":[{"kty":"RSA","use":"sig","kid":"', JSON_CT)
                return
            cache = {"Cache-Control": "max-age=86400, private", "Access-Control-Allow-Origin": "*"}
            if kind == "keys":
                with emu.lock:
                    doc = {"keys": []} if fault == "empty" else tenant.key_set(v2)
                    if fault == "duplicate-kid":
                        # The active key's entry twice: a kid that names two entries.
                        doc["keys"] += [k for k in doc["keys"] if k["kid"] == tenant.active]
                self._send_json(200, doc, cache)
            else:
                self._send_json(200, self._discovery_document(tenant, v2), cache)
            return

        if rest in TOKEN_ROUTES:
            v1 = TOKEN_ROUTES[rest]
            with emu.lock:
                tenant = emu.tenant(tenant_part)
                if tenant is None:
                    raise tenant_not_found(tenant_part, "invalid_request")
                tenant.stats["token_requests"] += 1
            if self.command != "POST":
                raise OAuthError(400, "invalid_request", 900561,
                                 f"The endpoint only accepts POST, OPTIONS requests. "
                                 f"Received a {self.command} request.")
            form = {}
            ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if ctype == "application/x-www-form-urlencoded":
                try:
                    parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    parsed = {}
                form = {k: v[0] for k, v in parsed.items()}
            with emu.lock:
                result = emu.token_endpoint(tenant, form, self._basic_credentials(),
                                            self._base_url(), v1)
            self._send_json(200, result, {
                "Cache-Control": "no-store, no-cache",
                "Pragma": "no-cache",
                "x-ms-request-id": str(uuid.uuid4()),
            })
            return

        self._send_json(404, {"error": "not_found", "error_description": f"No such endpoint: {path}"})

    def _basic_credentials(self):
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        if ":" not in decoded:
            return None
        user, password = decoded.split(":", 1)
        return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))

    def _instance_discovery(self, query: dict) -> dict:
        """Entra's instance discovery, answering for this emulator's own host only: MSAL asks it
        whether an authority is a known cloud and where the tenant's discovery document is."""
        base = self._base_url()
        host = urlsplit(base).hostname or ""
        endpoint = (query.get("authorization_endpoint") or [f"{base}/common/oauth2/authorize"])[0]
        asked = urlsplit(endpoint)
        if (asked.hostname or "").lower() != host.lower():
            raise OAuthError(400, "invalid_instance", 50049, "Unknown or invalid instance.")
        tenant = asked.path.lstrip("/").split("/", 1)[0] or "common"
        return {
            "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def _discovery_document(self, tenant: Tenant, v2: bool) -> dict:
        base = f"{self._base_url()}/{tenant.tenant_id}"
        common = {
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        if v2:
            return {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "issuer": tenant.v2_issuer,
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                **common,
            }
        return {
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/discovery/keys",
            "issuer": tenant.v1_issuer,
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "microsoft_multi_refresh_token": True,
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/devicecode",
            "end_session_endpoint": f"{base}/oauth2/logout",
            **common,
        }

    # -- control endpoints -------------------------------------------------

    def _control(self, path: str, query: dict, body: bytes) -> None:
        if not is_loopback(self.client_address[0]):
            raise ControlError(403, "control endpoints are only served to loopback clients")
        route = (self.command, path.rstrip("/") or "/")
        handlers = {
            ("GET", "/_emulator/health"): lambda: {"status": "ok"},
            ("POST", "/_emulator/sign"): lambda: self._ctl_sign(self._json(body)),
            ("POST", "/_emulator/token"): lambda: self._ctl_token(self._json(body)),
            ("GET", "/_emulator/stats"): self._ctl_stats,
            ("POST", "/_emulator/stats/reset"): self._ctl_stats_reset,
            ("GET", "/_emulator/keys"): lambda: self._ctl_keys_list(query),
            ("POST", "/_emulator/keys"): lambda: self._ctl_keys(self._json(body)),
            ("GET", "/_emulator/faults"): self._ctl_faults_list,
            ("POST", "/_emulator/faults"): lambda: self._ctl_faults(self._json(body)),
        }
        handler = handlers.get(route)
        if handler is None:
            known = {p for _, p in handlers}
            if route[1] in known:
                raise ControlError(405, f"method {self.command} not allowed on {route[1]}")
            raise ControlError(404, f"unknown control endpoint {path}")
        self._send_json(200, handler())

    @staticmethod
    def _json(body: bytes) -> dict:
        try:
            obj = json.loads(body or b"{}")
        except ValueError as exc:
            raise ControlError(400, f"request body is not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ControlError(400, "request body must be a JSON object")
        return obj

    def _require_tenant(self, req: dict, optional: bool = False) -> Tenant | None:
        tid = req.get("tenant_id")
        if tid is None and optional:
            return None
        if not isinstance(tid, str):
            raise ControlError(400, "tenant_id is required")
        tenant = self.emulator.tenant(tid)
        if tenant is None:
            raise ControlError(404, f"unknown tenant {tid}")
        return tenant

    def _ctl_sign(self, req: dict) -> dict:
        emu = self.emulator
        with emu.lock:
            key_sel = req.get("key", "active")
            tenant = self._require_tenant(req, optional=(key_sel == "attacker"))
            key = emu.signing_key(tenant, key_sel)

            if "raw_header_json" in req:
                if not isinstance(req["raw_header_json"], str):
                    raise ControlError(400, "raw_header_json must be a string")
                header_bytes = req["raw_header_json"].encode("utf-8")
            else:
                header = req.get("header", {})
                if not isinstance(header, dict):
                    raise ControlError(400, "header must be a JSON object")
                header = dict(header)
                if not req.get("raw_header"):
                    header.setdefault("alg", "RS256")
                    header.setdefault("kid", key.kid)
                header_bytes = json_compact(header)

            if "raw_claims_json" in req:
                if not isinstance(req["raw_claims_json"], str):
                    raise ControlError(400, "raw_claims_json must be a string")
                payload_bytes = req["raw_claims_json"].encode("utf-8")
            else:
                claims = req.get("claims", {})
                payload_bytes = json_compact(claims)

            mode = req.get("signature", "rs256")
            if mode == "rs256":
                sign = key.sign
            elif mode == "rs256-digestinfo-without-null":
                sign = lambda data: rs256_sign_without_null(key.private_key, data)  # noqa: E731
            elif mode == "none":
                sign = lambda _data: b""  # noqa: E731
            elif mode == "hs256":
                secret = req.get("hmac_secret")
                if not isinstance(secret, str):
                    raise ControlError(400, "signature 'hs256' needs an 'hmac_secret' string")
                secret_bytes = secret.encode("utf-8")
                sign = lambda data: hmac.new(secret_bytes, data, hashlib.sha256).digest()  # noqa: E731
            else:
                raise ControlError(400, "signature must be 'rs256', "
                                        "'rs256-digestinfo-without-null', 'none' or 'hs256'")
            token = compact_jws(header_bytes, payload_bytes, sign)
        return {"token": token, "kid": key.kid}

    def _ctl_token(self, req: dict) -> dict:
        emu = self.emulator
        with emu.lock:
            tenant = self._require_tenant(req)
            client_id = req.get("client_id")
            client = tenant.find_client(client_id) if isinstance(client_id, str) else None
            if client is None:
                raise ControlError(404, f"client {client_id!r} is not registered in tenant {tenant.tenant_id}")
            resource = req.get("api")
            api = tenant.find_api(resource) if isinstance(resource, str) else None
            if api is None:
                raise ControlError(404, f"api {resource!r} is not registered in tenant {tenant.tenant_id}")
            version = req.get("version")
            if version is not None and version not in (1, 2):
                raise ControlError(400, "version must be 1 or 2")
            if (version or api.version) == 1 and tenant.v1_issuer is None:
                raise ControlError(400, f"the {tenant.cloud} cloud issues no v1 tokens")
            overrides = req.get("overrides") or {}
            remove = req.get("remove") or []
            header_overrides = req.get("header_overrides") or {}
            if not isinstance(overrides, dict) or not isinstance(remove, list) \
                    or not isinstance(header_overrides, dict):
                raise ControlError(400, "overrides/header_overrides must be objects, remove a list")
            acr = req.get("acr", "1" if client.client_secret and not client.certs else "2")
            key = emu.signing_key(tenant, req.get("key", "active"))
            token, header, claims = emu.build_access_token(
                tenant, client, api, resource, str(acr), version, overrides, remove, key,
                header_overrides,
            )
        return {"token": token, "header": header, "claims": claims}

    def _ctl_stats(self) -> dict:
        with self.emulator.lock:
            return {"tenants": {tid: dict(t.stats) for tid, t in self.emulator.tenants.items()}}

    def _ctl_stats_reset(self) -> dict:
        with self.emulator.lock:
            for tenant in self.emulator.tenants.values():
                for name in tenant.stats:
                    tenant.stats[name] = 0
        return self._ctl_stats()

    def _keys_state(self, tenant: Tenant) -> dict:
        return {
            "tenant_id": tenant.tenant_id,
            "active": tenant.active,
            "published": list(tenant.published),
            "kids": list(tenant.keys),
            "attacker": self.emulator.attacker_key.kid,
        }

    def _ctl_keys_list(self, query: dict) -> dict:
        tid = (query.get("tenant_id") or [None])[0]
        with self.emulator.lock:
            return self._keys_state(self._require_tenant({"tenant_id": tid}))

    def _ctl_keys(self, req: dict) -> dict:
        action = req.get("action")
        if action not in ("add", "rotate", "remove", "publish", "activate", "replace_material"):
            raise ControlError(400, "action must be one of add, rotate, remove, publish, activate, "
                                    "replace_material")
        with self.emulator.lock:
            tenant = self._require_tenant(req)
        if action in ("add", "rotate"):
            new_key = SigningKey()  # generated outside the lock: it takes a while
            with self.emulator.lock:
                tenant.keys[new_key.kid] = new_key
                tenant.published.append(new_key.kid)
                if action == "rotate":
                    tenant.active = new_key.kid
                return {"kid": new_key.kid, **self._keys_state(tenant)}
        kid = req.get("kid")
        with self.emulator.lock:
            if kid not in tenant.keys:
                raise ControlError(404, f"unknown kid {kid!r} in tenant {tenant.tenant_id}")
            if action == "remove":
                if kid in tenant.published:
                    tenant.published.remove(kid)
            elif action == "publish":
                if kid not in tenant.published:
                    tenant.published.append(kid)
            elif action == "replace_material":
                # The entry keeps its kid but carries another key's material (and certificate):
                # a key set repaired after a wrong key was published under that kid.
                source = tenant.keys.get(req.get("with"))
                if source is None:
                    raise ControlError(404, f"unknown kid {req.get('with')!r} in tenant {tenant.tenant_id}")
                replacement = copy.copy(source)
                replacement.kid = kid
                tenant.keys[kid] = replacement
            else:  # activate
                tenant.active = kid
            return {"kid": kid, **self._keys_state(tenant)}

    def _ctl_faults_list(self) -> dict:
        with self.emulator.lock:
            return {"faults": {tid: t.fault for tid, t in self.emulator.tenants.items()}}

    def _ctl_faults(self, req: dict) -> dict:
        fault = req.get("jwks", "none")
        if not isinstance(fault, str) or not VALID_FAULT_RE.match(fault):
            raise ControlError(400, "jwks must be none, status:NNN, hang[:SECONDS], garbage, empty or duplicate-kid")
        if fault.startswith("status:") and not 100 <= int(fault[7:]) <= 599:
            raise ControlError(400, "status must be between 100 and 599")
        with self.emulator.lock:
            if req.get("tenant_id") == "*":
                targets = list(self.emulator.tenants.values())
            else:
                targets = [self._require_tenant(req)]
            for tenant in targets:
                tenant.set_fault(fault)
        return self._ctl_faults_list()


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="Local Microsoft Entra ID emulator (loopback only).")
    parser.add_argument("--config", default=os.path.join(here, "entra-emulator.json"),
                        help="tenant/app registration file (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8090, help="listen port, 0 = any free port")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--http", action="store_true",
                        help="serve plain HTTP (debugging only: Microsoft's libraries refuse it)")
    parser.add_argument("--tls-dir", default=str(local_ca.DEFAULT_DIR),
                        help="local CA directory, created on first use (default: %(default)s)")
    parser.add_argument("--tls-cert", help="serve this certificate chain (PEM) instead of the local CA's")
    parser.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    if not is_loopback(args.host):
        parser.error("--host must be a loopback address")

    emulator = Emulator(args.config)
    tls = None if args.http else server_tls_context(args.tls_dir, args.tls_cert, args.tls_key)
    handler = type("BoundHandler", (Handler,), {"emulator": emulator,
                                                "scheme": "http" if args.http else "https"})
    return serve("entra-emulator", args.host, args.port, handler, tls)


def server_tls_context(tls_dir: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ with the given certificate, else the one the local CA issues (created on first
    use)."""
    if cert is None or key is None:
        files = local_ca.ensure(tls_dir)
        cert, key = str(files.server_cert), str(files.server_key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


if __name__ == "__main__":
    sys.exit(main())
