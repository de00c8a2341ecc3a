"""Microsoft's client libraries, unmodified and as pinned in requirements.txt (`msal`,
`azure-identity`), get tokens from the emulator over HTTPS with certificate credentials, and
those tokens pass the gateway: allowed → 200, outside the ACL → 403. The libraries' own token
cache serves the second request.

Configuration, as a service would use it against the emulator (see README, "Service clients"):
the authority is `https://127.0.0.1:PORT/{tenant}`, the CA file is trusted through
REQUESTS_CA_BUNDLE (which `requests` lets win over MSAL's `verify=`) and `connection_verify=`,
and instance discovery is off (`instance_discovery=False` / `disable_instance_discovery=True`):
for a host it does not know, MSAL asks login.microsoftonline.com, not the authority itself.
One test points MSAL's instance discovery at the emulator's own endpoint instead.
"""

from __future__ import annotations

import base64
import json

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import CertificateCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import stack as s

CLIENT = "reporting-bot"
PKI = s.ROOT / "stack" / "pki"
V2_SCOPE = f"{s.API_URI}/.default"  # API issuing v2 access tokens
V1_SCOPE = f"{s.LEGACY_API_URI}/.default"  # API issuing v1 access tokens


class RecordingSession(requests.Session):
    """A plain requests session that keeps the client assertions the library sends."""

    def __init__(self, ca: str) -> None:
        super().__init__()
        self.verify = ca
        self.assertion_headers: list[dict] = []

    def request(self, method, url, *args, **kwargs):
        data = kwargs.get("data")
        if isinstance(data, dict) and "client_assertion" in data:
            assertion = data["client_assertion"]
            head = (assertion.decode() if isinstance(assertion, bytes) else assertion).split(".")[0]
            self.assertion_headers.append(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))
        return super().request(method, url, *args, **kwargs)


@pytest.fixture
def ca(monkeypatch) -> str:
    path = str(s.local_tls().ca_cert)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", path)
    return path


def pem(name: str, ext: str) -> str:
    return (PKI / f"{name}.{ext}").read_text()


def sha1_thumbprint(name: str) -> str:
    cert = x509.load_pem_x509_certificate(pem(name, "crt").encode())
    return cert.fingerprint(hashes.SHA1()).hex()


def msal_credential(mode: str, name: str = CLIENT) -> dict:
    if mode == "thumbprint":
        return {"private_key": pem(name, "key"), "thumbprint": sha1_thumbprint(name)}
    return {"private_key": pem(name, "key"), "public_certificate": pem(name, "crt")}


def claims_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def through_gateway(envoy, jira, token: str) -> tuple[int, int]:
    """(status of an allowed call, status of a call outside reporting-bot's ACL)."""
    auth = [("authorization", f"Bearer {token}")]
    jira.reset()
    allowed, _, _ = s.raw_request(envoy.port, "GET", "/rest/api/2/myself", auth)
    refused, _, _ = s.raw_request(envoy.port, "GET", "/rest/api/2/serverInfo", auth)
    assert [r["method"] for r in jira.requests()] == (["GET"] if allowed == 200 else [])
    return allowed, refused


def token_requests(emulator) -> int:
    return emulator.stats(s.TENANT)["token_requests"]


EXPECTED_ASSERTION = {
    # MSAL signs RS256 and names the certificate by its SHA-1 thumbprint...
    "thumbprint": {"alg": "RS256", "thumbprint": "x5t", "x5c": False},
    # ...or, given the certificate, PS256 with the SHA-256 thumbprint and the certificate itself.
    "public_certificate": {"alg": "PS256", "thumbprint": "x5t#S256", "x5c": True},
}


@pytest.mark.parametrize("scope,version", [(V2_SCOPE, "2.0"), (V1_SCOPE, "1.0")], ids=["v2", "v1"])
@pytest.mark.parametrize("mode", ["thumbprint", "public_certificate"])
def test_msal_certificate_token_passes_the_gateway_and_comes_from_msal_cache_next_time(
        mode, scope, version, ca, emulator, shipped_envoy, jira):
    session = RecordingSession(ca)
    app = msal.ConfidentialClientApplication(
        s.CLIENTS[CLIENT], client_credential=msal_credential(mode),
        authority=f"{emulator.url}/{s.TENANT}", http_client=session, instance_discovery=False)
    before = token_requests(emulator)
    first = app.acquire_token_for_client(scopes=[scope])
    assert "access_token" in first, first
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client(scopes=[scope])
    assert second["token_source"] == "cache" and second["access_token"] == first["access_token"]
    assert token_requests(emulator) == before + 1

    [header] = session.assertion_headers
    expected = EXPECTED_ASSERTION[mode]
    assert header["alg"] == expected["alg"]
    assert header[expected["thumbprint"]].endswith("="), "MSAL pads its thumbprints"
    assert ("x5c" in header) == expected["x5c"]

    claims = claims_of(first["access_token"])
    assert claims["ver"] == version and claims["tid"] == s.TENANT
    assert through_gateway(shipped_envoy, jira, first["access_token"]) == (200, 403)


@pytest.mark.parametrize("scope,version", [(V2_SCOPE, "2.0"), (V1_SCOPE, "1.0")], ids=["v2", "v1"])
@pytest.mark.parametrize("send_chain", [False, True], ids=["thumbprint", "send_certificate_chain"])
def test_azure_identity_certificate_credential_token_passes_the_gateway_and_is_cached(
        send_chain, scope, version, ca, emulator, shipped_envoy, jira):
    session = RecordingSession(ca)
    credential = CertificateCredential(
        s.TENANT, s.CLIENTS[CLIENT], certificate_data=(pem(CLIENT, "key") + pem(CLIENT, "crt")).encode(),
        authority=f"https://127.0.0.1:{emulator.port}", disable_instance_discovery=True,
        send_certificate_chain=send_chain, connection_verify=ca,
        transport=RequestsTransport(session=session, session_owner=False))
    before = token_requests(emulator)
    first = credential.get_token(scope)
    second = credential.get_token(scope)
    assert second.token == first.token
    assert token_requests(emulator) == before + 1, "the second token came from the credential's cache"

    [header] = session.assertion_headers
    assert header["alg"] == "RS256" and header["x5t"]
    assert ("x5c" in header) == send_chain

    claims = claims_of(first.token)
    assert claims["ver"] == version and claims["appidacr" if version == "1.0" else "azpacr"] == "2"
    assert through_gateway(shipped_envoy, jira, first.token) == (200, 403)


def test_msal_by_tenant_domain_name_with_instance_discovery_at_the_emulator(ca, emulator, shipped_envoy, jira):
    """MSAL's authority validation left on, asking the emulator's own instance discovery."""
    seen_before = emulator.process.log().count("GET /common/discovery/instance")
    app = msal.ConfidentialClientApplication(
        s.CLIENTS[CLIENT], client_credential=msal_credential("public_certificate"),
        authority=f"{emulator.url}/contoso.onmicrosoft.com", verify=ca,
        instance_discovery=f"{emulator.url}/common/discovery/instance")
    result = app.acquire_token_for_client(scopes=[V2_SCOPE])
    assert "access_token" in result, result
    assert emulator.process.log().count("GET /common/discovery/instance") == seen_before + 1
    assert claims_of(result["access_token"])["tid"] == s.TENANT
    assert through_gateway(shipped_envoy, jira, result["access_token"]) == (200, 403)


def test_msal_reports_entra_refusal_of_a_wrong_key_with_its_aadsts_code(ca, emulator):
    credential = {"private_key": pem("intruder", "key"), "thumbprint": sha1_thumbprint(CLIENT)}
    app = msal.ConfidentialClientApplication(
        s.CLIENTS[CLIENT], client_credential=credential, authority=f"{emulator.url}/{s.TENANT}",
        verify=ca, instance_discovery=False)
    result = app.acquire_token_for_client(scopes=[V2_SCOPE])
    assert result.get("error") == "invalid_client" and result.get("error_codes") == [700027], result


def test_azure_identity_reports_entra_refusal_of_a_wrong_key(ca, emulator):
    credential = CertificateCredential(
        s.TENANT, s.CLIENTS[CLIENT], certificate_data=(pem("intruder", "key") + pem(CLIENT, "crt")).encode(),
        authority=f"https://127.0.0.1:{emulator.port}", disable_instance_discovery=True, connection_verify=ca)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(V2_SCOPE)


def test_a_client_that_does_not_trust_the_ca_gets_no_token(monkeypatch, emulator):
    """The emulator's certificate is what the libraries check: without the CA, no connection."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(requests.exceptions.SSLError):
        msal.ConfidentialClientApplication(
            s.CLIENTS[CLIENT], client_credential=msal_credential("thumbprint"),
            authority=f"{emulator.url}/{s.TENANT}", instance_discovery=False)
