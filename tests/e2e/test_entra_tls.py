"""The key-set fetch runs over TLS with the shipped `entra` cluster settings (SNI, trusted CA,
SAN match — the shape of deploy/envoy-production.yaml), and an Entra endpoint that cannot prove
its name fails closed: 503 "keys unavailable", nothing reaches Jira, nothing is fetched.

Each test starts an emulator serving a certificate of its own choosing, behind an Envoy that
runs envoy.yaml unchanged (ports and the CA file's absolute path aside).
"""

from __future__ import annotations

import shutil

import pytest

import stack as s

local_ca = s.local_ca


def call(envoy, token):
    return s.raw_request(envoy.port, "GET", "/rest/api/2/myself", [("authorization", f"Bearer {token}")])


def denial_reasons(envoy) -> list[str]:
    return [line.split('"reason":"', 1)[1].split('"', 1)[0]
            for line in envoy.process.log().splitlines()
            if line.startswith('{"time"') and '"reason":"' in line]


wait_for = s.wait_for


@pytest.fixture
def serve(workdir, jira):
    """Starts an emulator with `extra_args` and an Envoy with the shipped config in front of it;
    yields (emulator, envoy) and stops both."""
    started = []

    def start(extra_args: list[str]):
        emulator = s.start_emulator(workdir, extra_args)
        started.append(emulator.process)
        envoy = s.start_envoy(workdir, emulator.port, jira.port)
        started.append(envoy.process)
        return emulator, envoy

    yield start
    for process in reversed(started):
        process.stop()


def certificate_from(directory, names: tuple[str, ...]) -> list[str]:
    files = local_ca.ensure(directory, names)
    return ["--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)]


def assert_fails_closed(envoy, jira, token, emulator_log):
    jira.reset()
    status, headers, body = call(envoy, token)
    assert status == 503, body
    assert int(headers["retry-after"]) >= 1
    assert wait_for(lambda: "keys_unavailable" in denial_reasons(envoy), timeout=5)
    assert jira.requests() == []
    assert "/discovery/" not in emulator_log(), "the key set must not have been served"


def test_the_shipped_cluster_fetches_keys_over_tls_and_checks_the_name(serve, jira, emulator):
    idp, envoy = serve([])
    status, _, body = call(envoy, idp.token("reporting-bot"))
    assert status == 200, body
    stats = envoy.stats()
    assert stats.get("cluster.entra.ssl.handshake", 0) >= 1
    assert stats.get("cluster.entra.ssl.fail_verify_san", 0) == 0


# The failing cases present a valid token from the session's emulator: with no key set at all,
# the filter must answer 503 whatever the token.


def test_a_certificate_from_an_untrusted_ca_fails_closed(serve, jira, workdir, emulator):
    other_ca = workdir / "untrusted-ca"
    idp, envoy = serve(certificate_from(other_ca, local_ca.SERVER_NAMES))
    assert_fails_closed(envoy, jira, emulator.token("reporting-bot"), idp.process.log)
    assert "TLS handshake with 127.0.0.1 failed" in idp.process.log()
    assert envoy.stats().get("cluster.entra.ssl.fail_verify_error", 0) >= 1


def test_a_trusted_certificate_for_another_name_fails_closed(serve, jira, workdir, emulator):
    """Issued by the CA Envoy trusts, but not for `localhost` (the SAN envoy.yaml requires)."""
    same_ca = workdir / "same-ca-other-name"
    same_ca.mkdir(exist_ok=True)
    trusted = s.local_tls()
    shutil.copy(trusted.ca_cert, same_ca / "ca.crt")
    shutil.copy(trusted.ca_key, same_ca / "ca.key")
    idp, envoy = serve(certificate_from(same_ca, ("127.0.0.1",)))
    assert_fails_closed(envoy, jira, emulator.token("reporting-bot"), idp.process.log)
    assert envoy.stats().get("cluster.entra.ssl.fail_verify_san", 0) >= 1


def test_an_entra_endpoint_speaking_plain_http_fails_closed(serve, jira, emulator):
    idp, envoy = serve(["--http"])
    assert_fails_closed(envoy, jira, emulator.token("reporting-bot"), idp.process.log)
    assert "listening on http://" in idp.process.log()
