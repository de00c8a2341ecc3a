"""Both signature backends end to end: Envoy's native `verify_signature` (the default when the
host has it) and RSA compiled into the module (the fallback), each accepting valid tokens and
refusing forged ones, with the choice logged at start-up."""

from __future__ import annotations

import copy

import pytest

import stack as s
from cases import active_kid


@pytest.mark.parametrize("backend,logged", [
    ("auto", "RS256 signatures checked by Envoy's verify_signature (BoringSSL)"),
    ("envoy", "RS256 signatures checked by Envoy's verify_signature (BoringSSL)"),
    ("wasm", "RS256 signatures checked by RSA compiled into the module"),
])
def test_backend_accepts_valid_and_refuses_forged_signatures(workdir, emulator, jira, tokens,
                                                             backend, logged):
    config = copy.deepcopy(s.shipped_plugin_config())
    config["signature_backend"] = backend
    config["token_cache_size"] = 0  # every request checks its signature
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=config)
    try:
        good = tokens.flow("reporting-bot")
        claims = emulator.control("token", {"tenant_id": s.TENANT, "client_id": s.CLIENTS["reporting-bot"],
                                            "api": s.API_URI})["claims"]
        forged = emulator.sign({"alg": "RS256", "kid": active_kid(emulator)}, claims,
                               key="attacker", raw_header=True)
        parts = good.split(".")
        flipped = parts[2][:10] + ("A" if parts[2][10] != "A" else "B") + parts[2][11:]
        for _ in range(3):
            assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself",
                                 [("authorization", f"Bearer {good}")])[0] == 200
        for bad in (forged, ".".join(parts[:2] + [flipped])):
            status, _, body = s.raw_request(envoy.port, "GET", "/rest/api/2/myself",
                                            [("authorization", f"Bearer {bad}")])
            assert status == 401 and b"signature is invalid" in body, body
        assert logged in envoy.process.log()
    finally:
        envoy.process.stop()
