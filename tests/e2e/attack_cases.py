"""Attacks on the token and the request, as rows of the end-to-end case table.

Every row is a hostile request through the built filter in a real Envoy. Refused rows must get
their status and the reason the filter gives (`TokenError::description()` and friends in the
core), and Jira must never see them. Rows marked `envoy_rejects` are refused by Envoy itself
before the filter runs (431 for header limits, 400 for request lines its parser refuses).

Tokens are made three ways: through the emulator's token endpoint (`minted`, `genuine`),
through its signing endpoint with arbitrary header and claims bytes (`raw`, `raw_claims`,
`alg_token`, `signed_by_active_key`), and locally in this module for what the emulator cannot
sign (HMAC with binary secrets, an attacker key whose public half goes into the header).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import select
import socket
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

import stack as s
from cases import UNCONFIGURED_TENANT, V2_ISS, Case, active_kid, bearer, changed, flow, \
    valid_claims

ME = "/rest/api/2/myself"

ALG = "token algorithm is not RS256"
BAD_SIG = "token signature is invalid"
BAD_B64 = "token segment is not canonical unpadded base64url"
NOT_JWS = "token is not a compact JWS"
BAD_HEADER = "token header is malformed"
BAD_CLAIMS = "token claims are malformed"
NO_KEY_ID = "token header names no signing key"
UNKNOWN_KEY = "token is signed with an unknown key"
CRIT = "token header has unsupported critical parameters"
UNTRUSTED = "token issuer is not trusted"
NO_ISSUER = "token has no issuer"
TENANT_MISMATCH = "token tenant does not match its issuer"
GRAPH = "Microsoft Graph"
TOO_LARGE = "token is too large"
SEVERAL = "more than one Authorization header"
MALFORMED_BEARER = "malformed bearer token"
WRONG_AUDIENCE = "token audience is not accepted"
QUERY_TOKEN = "send the token in the Authorization header"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


# --- encoding and signing helpers -------------------------------------------------------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict | bytes, claims: dict | bytes, sign) -> str:
    """A compact JWS with `sign(signing_input) -> signature bytes`."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    c = claims if isinstance(claims, bytes) else json.dumps(claims, separators=(",", ":")).encode()
    signing_input = f"{b64(h)}.{b64(c)}"
    return f"{signing_input}.{b64(sign(signing_input.encode('ascii')))}"


def split(token: str) -> list[str]:
    return token.split(".")


def tenant_public_key(e, kid: str, tenant: str = s.TENANT) -> rsa.RSAPublicKey:
    """The tenant's published key `kid`, from its key set as the filter fetches it."""
    jwks = s.http_json("GET", f"{e.url}/{tenant}/discovery/v2.0/keys")
    entry = next(k for k in jwks["keys"] if k["kid"] == kid)
    n = int.from_bytes(unb64(entry["n"]), "big")
    exponent = int.from_bytes(unb64(entry["e"]), "big")
    return rsa.RSAPublicNumbers(exponent, n).public_key()


def other_published_kid(e) -> str:
    """A published key of the tenant that is not the active signer."""
    keys = s.http_json("GET", f"{e.url}/_emulator/keys?tenant_id={s.TENANT}")
    return next(k for k in keys["published"] if k != keys["active"])


def other_tenant_kid(e) -> str:
    return s.http_json("GET", f"{e.url}/_emulator/keys?tenant_id={s.OTHER_TENANT}")["active"]


@functools.lru_cache(maxsize=1)
def attacker():
    """An RSA key and self-signed certificate that no tenant publishes, made here so that its
    public half can be put into token headers."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.windows.net")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    numbers = key.public_key().public_numbers()
    thumbprint = b64(hashlib.sha1(der).digest())
    jwk = {"kty": "RSA", "use": "sig", "kid": thumbprint, "x5t": thumbprint,
           "n": b64(numbers.n.to_bytes(256, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}
    return key, der, jwk, thumbprint


def attacker_sign(data: bytes) -> bytes:
    return attacker()[0].sign(data, padding.PKCS1v15(), hashes.SHA256())


def send_until_answered(port: int, method: str, path: str, headers: list[tuple[str, str]],
                        timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Like `stack.raw_request`, for requests Envoy answers before it has read them (a header
    section over its limit): sending stops as soon as the answer arrives, so the early answer is
    read instead of being lost to a connection reset. Returns (status, headers, body)."""
    lines = [f"{method} {path} HTTP/1.1", "host: jira.local", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    pending = memoryview(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    received = b""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setblocking(False)
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 0.5)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
                pending = memoryview(b"")  # answered: send no more
            elif writable:
                try:
                    sent = sock.send(pending[:65536])
                except (BrokenPipeError, ConnectionResetError):
                    pending = memoryview(b"")
                    continue
                pending = pending[sent:]
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), f"no HTTP answer: {received[:200]!r}"
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), parsed, body


# --- token makers: (tokens, emulator) -> token ------------------------------------------------

def raw(header_json: str | None = None, claims_json: str | None = None, header: dict | None = None,
        **kw):
    """Signed by the emulator over exactly the given header/claims bytes (the active key unless
    `key` says otherwise); `None` means the genuine header (alg RS256, active kid) or claims."""
    def make(t, e):
        body: dict = {"tenant_id": s.TENANT, **kw}
        if header_json is not None:
            body["raw_header_json"] = header_json
        else:
            body["header"] = header if header is not None else {}
        if claims_json is not None:
            body["raw_claims_json"] = claims_json
        else:
            body["claims"] = valid_claims(t, e)
        return e.control("sign", body)["token"]
    return make


def alg_token(alg: str, signature: str):
    """A token whose header says `alg`, with an empty or a genuine RS256 signature."""
    return lambda t, e: e.control("sign", {
        "tenant_id": s.TENANT, "header": {"typ": "JWT", "alg": alg, "kid": active_kid(e)},
        "claims": valid_claims(t, e), "raw_header": True, "signature": signature})["token"]


def hmac_with_public_key(alg: str, form: str):
    """The key-confusion attack: HS* with the tenant's RSA public key as the HMAC secret."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]

    def make(t, e):
        kid = active_kid(e)
        public = tenant_public_key(e, kid)
        secret = {
            "pem": public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo),
            "pkcs1-pem": public.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.PKCS1),
            "der": public.public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo),
            "modulus": public.public_numbers().n.to_bytes(256, "big"),
        }[form]
        header = {"typ": "JWT", "alg": alg, "kid": kid}
        if alg == "HS256" and form == "pem":
            # The emulator's own HMAC path (its secret is a text string: the PEM).
            return e.control("sign", {"tenant_id": s.TENANT, "header": header,
                                      "claims": valid_claims(t, e), "raw_header": True,
                                      "signature": "hs256", "hmac_secret": secret.decode()})["token"]
        return compact(header, valid_claims(t, e),
                       lambda data: hmac.new(secret, data, digest).digest())
    return make


def es256_zero_signature(t, e):
    """CVE-2022-21449 ("psychic signatures"): ES256 with r = s = 0."""
    return compact({"typ": "JWT", "alg": "ES256", "kid": active_kid(e)}, valid_claims(t, e),
                   lambda _data: bytes(64))


def attacker_header_key(member: str, kid: bool):
    """Signed by the attacker, naming the attacker's key in the header (`jwk`, `jku`, `x5u`,
    `x5c`), with the tenant's real active kid or with no kid at all."""
    def make(t, e):
        _key, der, jwk, _thumb = attacker()
        value = {
            "jwk": jwk,
            "jku": "https://attacker.example/keys",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": [base64.b64encode(der).decode("ascii")],
        }[member]
        header = {"typ": "JWT", "alg": "RS256", member: value}
        if kid:
            header["kid"] = active_kid(e)
        return compact(header, valid_claims(t, e), attacker_sign)
    return make


def attacker_x5c_with_its_thumbprint(t, e):
    _key, der, _jwk, thumbprint = attacker()
    header = {"typ": "JWT", "alg": "RS256", "x5t": thumbprint,
              "x5c": [base64.b64encode(der).decode("ascii")]}
    return compact(header, valid_claims(t, e), attacker_sign)


def genuine(t, e):
    return e.token("reporting-bot")


def tamper_signature(change):
    """A genuine token with its signature segment changed by `change(segment) -> segment`."""
    def make(t, e):
        h, c, sig = split(genuine(t, e))
        return f"{h}.{c}.{change(sig)}"
    return make


def truncated(sig: str) -> str:
    return b64(unb64(sig)[:-1])


def bit_flipped(sig: str) -> str:
    raw_sig = bytearray(unb64(sig))
    raw_sig[100] ^= 0x01
    return b64(bytes(raw_sig))


def padded(sig: str) -> str:
    # 256 bytes encode to 342 characters, 344 with the two `=` of standard padding.
    return base64.urlsafe_b64encode(unb64(sig)).decode("ascii")


def non_canonical_bits(sig: str) -> str:
    # The last character of a 256-byte signature carries 2 data bits and 4 zero bits: set one of
    # the zero bits. The decoded bytes are unchanged for a lenient decoder.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    assert last & 0x0F == 0
    return sig[:-1] + alphabet[last | 0x01]


def standard_alphabet(sig: str) -> str:
    converted = sig.replace("-", "+").replace("_", "/")
    # A signature with neither `-` nor `_` (about one in 50 000) still gets a `+`.
    return converted if converted != sig else "+" + sig[1:]


def header_padded(t, e):
    """A genuine token whose header segment carries `=` padding."""
    h, c, sig = split(genuine(t, e))
    padded_h = base64.urlsafe_b64encode(unb64(h)).decode("ascii")
    return f"{padded_h if '=' in padded_h else h + '='}.{c}.{sig}"


def header_swapped(t, e):
    """The header of a genuine token signed by the tenant's other published key, on the
    payload and signature of a genuine token signed by the active key."""
    other = e.token("reporting-bot", key=other_published_kid(e))
    _h, c, sig = split(genuine(t, e))
    return f"{split(other)[0]}.{c}.{sig}"


def payload_swapped(t, e):
    """ci-pipeline's genuine claims under reporting-bot's genuine header and signature."""
    h, _c, sig = split(genuine(t, e))
    return f"{h}.{split(e.token('ci-pipeline'))[1]}.{sig}"


def segments(count: int):
    def make(t, e):
        h, c, sig = split(genuine(t, e))
        return ".".join(([h, c] + [sig] * count)[:count])
    return make


def claims_with_duplicate(name: str, value):
    """Genuine claims with `name` repeated at the end (JSON objects may not repeat members)."""
    def make(t, e):
        text = json.dumps(valid_claims(t, e), separators=(",", ":"))
        return text[:-1] + f',"{name}":{json.dumps(value)}' + "}"
    return make


def raw_claims(make_text):
    """Signed over the exact claims text `make_text(tokens, emulator)`."""
    return lambda t, e: e.control("sign", {
        "tenant_id": s.TENANT, "header": {}, "raw_claims_json": make_text(t, e)})["token"]


def signed_by_active_key(claims_fn, **header):
    """Claims of another issuer, signed with this tenant's active key (Microsoft's keys are
    shared across tenants)."""
    return lambda t, e: e.sign({"typ": "JWT", **header}, claims_fn(t, e))


def other_tenant(t, e):
    c = valid_claims(t, e)
    c["iss"] = f"https://login.microsoftonline.com/{s.OTHER_TENANT}/v2.0"
    c["tid"] = s.OTHER_TENANT
    return c


def signed_by_other_tenants_key(t, e):
    """This tenant's claims, signed with the other configured tenant's key and naming it."""
    return e.sign({"typ": "JWT"}, valid_claims(t, e), tenant=s.OTHER_TENANT)


def minted(client: str = "reporting-bot", **kw):
    """A token from the emulator's token endpoint, with `overrides`, `remove`,
    `header_overrides`, `acr`, `key`."""
    return lambda t, e: e.token(client, **kw)


def padded_claims(size: int):
    return minted(overrides={"pad": "x" * size})


def claims_with_text(extra: str):
    """Genuine claims with the raw JSON text `extra` inserted as their first members."""
    def make(t, e):
        text = json.dumps(valid_claims(t, e), separators=(",", ":"))
        return "{" + extra + "," + text[1:]
    return make


def claims_with_exp_text(exp_text: str):
    """Genuine claims whose `exp` is written exactly as `exp_text`."""
    def make(t, e):
        c = valid_claims(t, e)
        marker = 1234567890123
        c["exp"] = marker
        return json.dumps(c, separators=(",", ":")).replace(str(marker), exp_text)
    return make


def header_text(make_text):
    """Signed over the exact header text `make_text(active_kid)` and genuine claims."""
    return lambda t, e: raw(header_json=make_text(active_kid(e)))(t, e)


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


# Claims Entra ID puts in app tokens besides the ones the filter reads, managed-identity ones
# included: a token carrying all of them must pass.
ENTRA_EXTRA_CLAIMS = {
    "acct": 0, "acrs": ["c1"], "ctry": "US", "tenant_region_scope": "EU",
    "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"], "xms_cc": ["cp1"],
    "xms_ftd": "x7Hc1z0ZrFv3bZ1Yk8Xb4w", "xms_idrel": "7 24", "xms_rd": "0.42LlYBJiOBAS4WAX",
    "xms_ssm": "1", "xms_tcdt": 1_600_000_000, "xms_tdbr": "EU",
    "jti": "bAv9YyXf1kKz0n3dGk8QAA",
    "xms_mirid": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/ops/providers/"
                 "Microsoft.ManagedIdentity/userAssignedIdentities/jira-sync",
    "xms_az_rid": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourcegroups/ops/"
                  "providers/Microsoft.Web/sites/jira-sync",
}


def token_row(id: str, make, reason: str, status: int = 401, **kw) -> Case:
    return Case(id, "GET", ME, bearer(make), status, False, reason, **kw)


# --- the rows ---------------------------------------------------------------------------------

ATTACK_CASES: list = [
    # alg "none" in every capitalisation, with no signature and with a genuine one.
    *[token_row(f"alg-{alg}-{sig}-signature", alg_token(alg, {"empty": "none", "real": "rs256"}[sig]),
                ALG)
      for alg in ("none", "None", "NONE", "nOnE") for sig in ("empty", "real")],
    # HMAC keyed with the RSA public key (the classic key-confusion attack).
    *[token_row(f"{alg.lower()}-keyed-with-public-key-{form}", hmac_with_public_key(alg, form), ALG)
      for alg in ("HS256", "HS384", "HS512") for form in ("pem", "pkcs1-pem", "der", "modulus")],
    token_row("es256-all-zero-signature-cve-2022-21449", es256_zero_signature, ALG),
    # Keys named by the token itself are never used.
    *[token_row(f"header-{member}-attacker-key-{'real-kid' if kid else 'no-kid'}",
                attacker_header_key(member, kid), BAD_SIG if kid else NO_KEY_ID)
      for member in ("jwk", "jku", "x5u", "x5c") for kid in (True, False)],
    token_row("header-x5c-attacker-cert-with-its-own-x5t", attacker_x5c_with_its_thumbprint,
              UNKNOWN_KEY),
    # kid as an injection vector.
    token_row("kid-path-traversal", raw(header={"kid": "../../../../etc/passwd"}), UNKNOWN_KEY),
    token_row("kid-sql-injection", raw(header={"kid": "' OR '1'='1"}), UNKNOWN_KEY),
    token_row("kid-4-kib-long", raw(header={"kid": "k" * 4096}), UNKNOWN_KEY),
    token_row("kid-of-the-attackers-unpublished-key", raw(key="attacker"), UNKNOWN_KEY),
    token_row("kid-empty-string", raw(header={"kid": ""}), BAD_HEADER),
    token_row("kid-null-with-a-valid-x5t",
              header_text(lambda kid: f'{{"alg":"RS256","kid":null,"x5t":"{kid}"}}'), BAD_HEADER),
    token_row("kid-not-a-string", raw(header={"kid": 1}), BAD_HEADER),
    # The signature segment.
    token_row("signature-stripped", tamper_signature(lambda sig: ""), BAD_B64),
    token_row("signature-truncated-by-one-byte", tamper_signature(truncated), BAD_SIG),
    token_row("signature-bit-flipped", tamper_signature(bit_flipped), BAD_SIG),
    token_row("signature-base64-with-padding", tamper_signature(padded), BAD_B64),
    token_row("signature-non-canonical-trailing-bits", tamper_signature(non_canonical_bits),
              BAD_B64),
    token_row("signature-standard-base64-alphabet", tamper_signature(standard_alphabet), BAD_B64),
    token_row("signature-of-another-token", lambda t, e: ".".join(
        split(genuine(t, e))[:2] + split(e.token("ci-pipeline"))[2:]), BAD_SIG),
    token_row("header-swapped-from-a-token-of-another-key", header_swapped, BAD_SIG),
    token_row("payload-swapped-under-a-valid-signature", payload_swapped, BAD_SIG),
    # The envelope.
    token_row("one-segment", segments(1), NOT_JWS),
    token_row("four-segments", segments(4), NOT_JWS),
    token_row("five-segments", segments(5), NOT_JWS),
    token_row("empty-header-and-payload-segments", lambda t, e: "..", BAD_B64),
    token_row("header-segment-padded", header_padded, BAD_B64),
    token_row("header-not-json", raw(header_json="not json"), BAD_HEADER),
    token_row("header-json-array", raw(header_json="[]"), BAD_HEADER),
    token_row("header-json-string", raw(header_json='"x"'), BAD_HEADER),
    token_row("header-json-number", raw(header_json="1"), BAD_HEADER),
    token_row("header-without-alg", raw(header_json='{"kid":"x"}'), BAD_HEADER),
    token_row("header-duplicate-alg", lambda t, e: raw(
        header_json=f'{{"alg":"none","alg":"RS256","kid":"{active_kid(e)}"}}')(t, e), BAD_HEADER),
    token_row("header-duplicate-kid", lambda t, e: raw(
        header_json=f'{{"alg":"RS256","kid":"unknown","kid":"{active_kid(e)}"}}')(t, e),
        BAD_HEADER),
    token_row("payload-not-json", raw(claims_json="not json"), BAD_CLAIMS),
    token_row("payload-json-array", raw(claims_json="[]"), BAD_CLAIMS),
    token_row("payload-json-string", raw(claims_json='"x"'), BAD_CLAIMS),
    token_row("payload-json-number", raw(claims_json="1"), BAD_CLAIMS),
    token_row("payload-json-null", raw(claims_json="null"), BAD_CLAIMS),
    token_row("claims-duplicate-exp", raw_claims(claims_with_duplicate("exp", 4_000_000_000)),
              BAD_CLAIMS),
    token_row("claims-duplicate-aud", raw_claims(claims_with_duplicate("aud", "api://other")),
              BAD_CLAIMS),
    token_row("claims-duplicate-azp", raw_claims(claims_with_duplicate("azp", s.CLIENTS["ci-pipeline"])),
              BAD_CLAIMS),
    token_row("claims-duplicate-roles", raw_claims(claims_with_duplicate("roles", ["Jira.Write"])),
              BAD_CLAIMS),
    # Strict JSON in every member, read or not (what Envoy's jwt_authn refuses is refused).
    token_row("header-duplicate-typ-unread", header_text(
        lambda kid: f'{{"typ":"JWT","alg":"RS256","kid":"{kid}","typ":"JWT"}}'), BAD_HEADER),
    token_row("header-duplicate-jku-unread", header_text(
        lambda kid: f'{{"alg":"RS256","kid":"{kid}","jku":"https://a","jku":"https://b"}}'),
        BAD_HEADER),
    token_row("header-unpaired-surrogate-in-unread-member", header_text(
        lambda kid: f'{{"alg":"RS256","kid":"{kid}","x5u":"\\uD800"}}'), BAD_HEADER),
    token_row("header-1e400-in-unread-member", header_text(
        lambda kid: f'{{"alg":"RS256","kid":"{kid}","n":1e400}}'), BAD_HEADER),
    token_row("claims-duplicate-sub-unread",
              raw_claims(claims_with_duplicate("sub", "6e1f6a9e-5a1c-4a52-9d43-2f6c0b1d3e11")),
              BAD_CLAIMS),
    token_row("claims-duplicate-xms-tcdt-unread",
              raw_claims(claims_with_text('"xms_tcdt":1600000000,"xms_tcdt":1600000000')),
              BAD_CLAIMS),
    token_row("claims-duplicate-unknown-member",
              raw_claims(claims_with_text('"x_unknown":1,"x_unknown":2')), BAD_CLAIMS),
    token_row("claims-duplicate-member-nested-in-unread-claim",
              raw_claims(claims_with_text('"x_obj":{"a":1,"a":1}')), BAD_CLAIMS),
    token_row("claims-escaped-duplicate-name",
              raw_claims(claims_with_text('"x_a":1,"x_\\u0061":2')), BAD_CLAIMS),
    token_row("claims-unpaired-surrogate-in-unread-member",
              raw_claims(claims_with_text('"x_s":"\\uD800"')), BAD_CLAIMS),
    token_row("claims-1e400-in-unread-member", raw_claims(claims_with_text('"x_n":1e400')),
              BAD_CLAIMS),
    token_row("claims-2-pow-64-in-unread-member",
              raw_claims(claims_with_text('"x_n":18446744073709551616')), BAD_CLAIMS),
    *[token_row(f"claims-unread-member-nested-{levels}-deep",
                raw_claims(claims_with_text(f'"x_deep":{nested(levels)}')), BAD_CLAIMS)
      for levels in (8, 100, 1000)],
    *[token_row(f"{claim}-not-a-string-{kind}", minted(overrides={claim: value}), BAD_CLAIMS)
      for claim in ("sub", "jti")
      for kind, value in (("number", 42), ("null", None), ("object", {"id": "x"}))],
    *[token_row(f"{claim}-negative", minted(overrides={claim: -1}), BAD_CLAIMS)
      for claim in ("nbf", "iat")],
    token_row("exp-negative-zero", raw_claims(claims_with_exp_text("-0")), BAD_CLAIMS),
    token_row("exp-with-exponent", raw_claims(claims_with_exp_text("4e9")), BAD_CLAIMS),
    *[token_row(f"audience-app-id-uri-with-{n}-trailing-slashes",
                minted(overrides={"aud": s.API_URI + "/" * n}), WRONG_AUDIENCE)
      for n in (2, 3)],
    Case("audience-app-id-uri-with-one-trailing-slash-is-accepted", "GET", ME,
         bearer(minted(overrides={"aud": s.API_URI + "/"})), 200, True, client="reporting-bot"),
    Case("every-entra-app-token-claim-is-accepted", "GET", ME,
         bearer(minted(overrides=ENTRA_EXTRA_CLAIMS)), 200, True, client="reporting-bot"),
    Case("every-entra-v1-app-token-claim-is-accepted", "GET", ME,
         bearer(minted(version=1, overrides=ENTRA_EXTRA_CLAIMS)), 200, True,
         client="reporting-bot"),
    # A token in the query string is refused, whatever the Authorization header holds, so it
    # never reaches Jira's access logs (RFC 6750 §2.3's access_token parameter).
    *[Case(f"query-{name}-with-a-valid-header-token", "GET", f"{ME}?{query}",
           flow("reporting-bot"), 400, False, QUERY_TOKEN)
      for name, query in (("access-token", "access_token=x.y.z"),
                          ("access-token-percent-encoded-name", "access%5Ftoken=x.y.z"),
                          ("access-token-uppercase-name", "ACCESS_TOKEN=x.y.z"),
                          ("access-token-after-other-parameters", "expand=groups&access_token="))],
    Case("query-access-token-on-a-public-path", "GET", "/status?access_token=x.y.z", None, 400,
         False, QUERY_TOKEN),
    # NumericDate claims are JSON integers, nothing else.
    *[token_row(f"{claim}-as-{kind}", minted(overrides={claim: value}), BAD_CLAIMS)
      for claim in ("exp", "nbf", "iat")
      for kind, value in (("string", "4000000000"), ("float", 4_000_000_000.0),
                          ("fraction", 1_700_000_000.5), ("null", None), ("boolean", True),
                          ("array", [4_000_000_000]))
      if (claim, kind) != ("exp", "string")],
    token_row("exp-out-of-range", minted(overrides={"exp": 2**64}), BAD_CLAIMS),
    token_row("crit-header", minted(header_overrides={"crit": ["exp"]}), CRIT),
    token_row("crit-header-empty-list", minted(header_overrides={"crit": []}), CRIT),
    # Issuer and tenant.
    token_row("issuer-of-an-attacker", minted(overrides={"iss": "https://attacker.example/"}),
              UNTRUSTED),
    token_row("issuer-missing", minted(remove=["iss"]), NO_ISSUER),
    token_row("issuer-array-valued", minted(overrides={"iss": [V2_ISS]}), BAD_CLAIMS),
    token_row("issuer-with-trailing-slash", minted(overrides={"iss": V2_ISS + "/"}), UNTRUSTED),
    token_row("issuer-uppercase-tenant", minted(overrides={"iss": V2_ISS.upper()}), UNTRUSTED),
    token_row("issuer-v1-without-trailing-slash",
              minted(overrides={"iss": f"https://sts.windows.net/{s.TENANT}"}), UNTRUSTED),
    token_row("tid-missing", minted(remove=["tid"]), TENANT_MISMATCH),
    token_row("unconfigured-tenant-signed-by-a-shared-key",
              signed_by_active_key(changed(
                  iss=f"https://login.microsoftonline.com/{UNCONFIGURED_TENANT}/v2.0",
                  tid=UNCONFIGURED_TENANT)), UNTRUSTED),
    token_row("unconfigured-tenant-v1-signed-by-a-shared-key",
              signed_by_active_key(changed(iss=f"https://sts.windows.net/{UNCONFIGURED_TENANT}/",
                                           tid=UNCONFIGURED_TENANT, ver="1.0")), UNTRUSTED),
    token_row("other-configured-tenant-claims-signed-with-this-tenants-key",
              signed_by_active_key(other_tenant), UNKNOWN_KEY),
    token_row("this-tenants-claims-signed-with-the-other-tenants-key",
              signed_by_other_tenants_key, UNKNOWN_KEY),
    # Tokens for Microsoft Graph.
    token_row("graph-app-id-audience", minted(overrides={"aud": GRAPH_APP_ID}), GRAPH),
    token_row("graph-uri-audience", minted(overrides={"aud": "https://graph.microsoft.com"}), GRAPH),
    token_row("graph-audience-in-a-list",
              minted(overrides={"aud": [s.API_APP_ID, "https://graph.microsoft.com/"]}), GRAPH),
    token_row("graph-nonce-header", minted(header_overrides={"nonce": "AbCdEf"}), GRAPH),
    # Size.
    token_row("token-of-16-kib", padded_claims(12 * 1024), TOO_LARGE),
    Case("token-of-1-mib", "GET", ME, lambda t, e: [("authorization", "Bearer " + "a" * (1 << 20))],
         431, False, envoy_rejects=True),
    Case("thousands-of-header-fields", "GET", ME,
         lambda t, e: [(f"x-filler-{i}", "x") for i in range(5000)]
         + [("authorization", f"Bearer {genuine(t, e)}")], 431, False, envoy_rejects=True),
    # The Authorization header itself.
    Case("authorization-folded-into-one-header", "GET", ME,
         lambda t, e: [("authorization", f"Bearer {genuine(t, e)}, Bearer {genuine(t, e)}")],
         401, False, SEVERAL),
    Case("authorization-basic-then-bearer", "GET", ME,
         lambda t, e: [("authorization", "Basic dXNlcjpwYXNz"),
                       ("authorization", f"Bearer {genuine(t, e)}")], 401, False, SEVERAL),
    Case("authorization-bearer-without-token", "GET", ME, lambda t, e: [("authorization", "Bearer")],
         401, False, MALFORMED_BEARER),
    Case("authorization-token-with-a-space", "GET", ME,
         lambda t, e: [("authorization", "Bearer " + genuine(t, e).replace(".", ". ", 1))], 401,
         False, MALFORMED_BEARER),
    # Path encodings beyond the ones in the main table (Envoy's default path handling: the
    # filter sees them raw).
    *[Case(f"path-{name}", "GET", path, flow("reporting-bot"), 400, False, reason)
      for name, path, reason in [
          ("mixed-case-encoded-dot-dot", "/rest/api/2/issue/%2E%2e/myself", "dot segment"),
          ("triple-dot", "/rest/api/2/issue/.../myself", "dot segment"),
          ("double-encoded-slash", "/rest/api/2/issue/OPS-1%252f..%252fmyself", "encoded %"),
          ("double-encoded-dot-dot", "/rest/api/2/issue/%252E%252E/myself", "encoded %"),
          ("dot-dot-semicolon", "/rest/api/2/issue/..;/serverInfo", "path parameter"),
          ("encoded-dot-dot-encoded-slash", "/rest/api/2/issue/%2e%2e%2fserverInfo",
           "percent-encode letters"),
          ("overlong-utf8-dot-dot", "/rest/api/2/issue/%c0%ae%c0%ae/serverInfo", "not valid UTF-8"),
          ("overlong-utf8-dot-dot-under-double-star",
           "/rest/api/2/project/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/serverInfo",
           "not valid UTF-8"),
          ("overlong-utf8-slash", "/rest/api/2/issue/OPS-1%c0%af..%c0%afserverInfo",
           "not valid UTF-8"),
          ("lone-utf8-continuation-byte", "/rest/api/2/issue/OPS-1%80", "not valid UTF-8"),
          ("encoded-backslash-dot-dot", "/rest/api/2/issue/OPS-1%5c..%5cserverInfo", "backslash"),
          ("raw-backslash", "/rest/api/2/issue\\..\\serverInfo", "backslash"),
          ("encoded-tab", "/rest/api/2/my%09self", "control character"),
      ]],
    # A fullwidth full stop is not a dot: the path is forwarded byte for byte and stays inside the
    # segment the ACL matched (Jira answers 404 for the odd issue key).
    Case("path-fullwidth-dot-is-an-ordinary-character", "GET",
         "/rest/api/2/issue/%ef%bc%8e%ef%bc%8e", flow("reporting-bot"), 404, True,
         client="reporting-bot"),
    Case("path-fullwidth-dot-dot-does-not-climb", "GET",
         "/rest/api/2/issue/%ef%bc%8e%ef%bc%8e/serverInfo", flow("reporting-bot"), 403, False,
         "path not allowed"),
    Case("path-raw-tab", "GET", "/rest/api/2/my\tself", flow("reporting-bot"), 400, False,
         envoy_rejects=True),
    Case("authorization-token-with-a-quote", "GET", ME,
         lambda t, e: [("authorization", f'Bearer "{genuine(t, e)}"')], 401, False,
         MALFORMED_BEARER),
]
