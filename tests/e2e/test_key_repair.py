"""A key repair end to end: a token verified under one key material and cached must not outlive
the key set's repair, when the repaired set publishes other material under the same `kid`."""

from __future__ import annotations

import copy
import time

import pytest

import stack as s

T1 = s.TENANT


@pytest.fixture(scope="module")
def idp(workdir):
    e = s.start_emulator(workdir)
    yield e
    e.process.stop()


def call(envoy, token):
    return s.raw_request(envoy.port, "GET", "/rest/api/2/myself", [("authorization", f"Bearer {token}")])


def test_cached_token_is_refused_once_its_kid_names_other_material(workdir, idp, jira):
    wrong = idp.control("keys", {"tenant_id": T1, "action": "add"})["kid"]
    right = idp.control("keys", {"tenant_id": T1, "action": "add"})["kid"]
    config = copy.deepcopy(s.shipped_plugin_config())
    for tenant in config["tenants"]:
        tenant["jwks"]["refresh_seconds"] = 1
    envoy = s.start_envoy(workdir, idp.port, jira.port, plugin_config=config)
    try:
        claims = idp.control("token", {"tenant_id": T1, "client_id": s.CLIENTS["reporting-bot"],
                                       "api": s.API_URI})["claims"]
        token = idp.sign({"alg": "RS256", "kid": wrong, "typ": "JWT"}, claims, key=wrong, raw_header=True)
        for _ in range(2):  # verified, then served from the cache
            assert call(envoy, token)[0] == 200
        time.sleep(0.6)  # counts reach Envoy on the filter's next tick
        assert envoy.stats().get("wasmcustom.jira_entra_guard_token_cache_total.result.hit", 0) >= 1
        # The key set is repaired: `wrong`'s kid now names the material of another key.
        idp.control("keys", {"tenant_id": T1, "action": "replace_material", "kid": wrong, "with": right})
        deadline = time.monotonic() + 15
        status, body = 200, b""
        while time.monotonic() < deadline:
            status, _, body = call(envoy, token)
            if status != 200:
                break
            time.sleep(0.3)
        assert status == 401 and b"token signature is invalid" in body, (status, body)
    finally:
        envoy.process.stop()
