"""When the filter's VM dies, the shipped envoy.yaml refuses requests; it never lets them through
to Jira unchecked.

A separate module (`tests/wasm-panicker`, built here with cargo) panics in
`on_http_request_headers` the way a bug in the filter would. Envoy runs the shipped envoy.yaml
with only the module path changed. Every request must then get a 5xx from Envoy, Jira must see
none of them, and Envoy's log must carry the panic message, brought there by the panic hook
that `proxy_wasm::set_log_level` installs (the real filter's entry point makes the same call).

The last test sends header bytes that are not UTF-8 to the real filter: that must not kill its
VM (a VM that dies on one request refuses every later request of its worker).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

import stack as s

PANICKER_DIR = s.ROOT / "tests" / "wasm-panicker"
PANICKER_TARGET = s.ROOT / "target" / "wasm-panicker"
PANICKER_WASM = PANICKER_TARGET / "wasm32-wasip1" / "release" / "wasm_panicker.wasm"
PANIC_MESSAGE = "wasm-panicker: deliberate panic in on_http_request_headers"


@pytest.fixture(scope="module")
def panicker_wasm() -> Path:
    subprocess.run(
        ["cargo", "build", "--locked", "--release", "--target", "wasm32-wasip1",
         "--manifest-path", str(PANICKER_DIR / "Cargo.toml"), "--target-dir", str(PANICKER_TARGET)],
        cwd=s.ROOT, check=True, capture_output=True,
    )
    assert PANICKER_WASM.exists()
    return PANICKER_WASM


def use_module(path: Path):
    def mutate(config: dict) -> None:
        wasm = s._wasm_filter(config)["typed_config"]["config"]
        wasm["vm_config"]["code"]["local"]["filename"] = str(path)
    return mutate


@pytest.fixture(scope="module")
def panicking_envoy(workdir, emulator, jira, panicker_wasm):
    e = s.start_envoy(workdir, emulator.port, jira.port, mutate=use_module(panicker_wasm))
    yield e
    e.process.stop()


def wait_for_log(envoy: s.Envoy, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = envoy.process.log()
        if text in log or time.monotonic() > deadline:
            return log
        time.sleep(0.1)


def test_shipped_filter_is_configured_fail_closed():
    wasm = s._wasm_filter(s.shipped_envoy_config())["typed_config"]["config"]
    assert wasm.get("fail_open", False) is False
    # FAIL_RELOAD refuses the failing request too, and then starts a fresh VM.
    assert wasm.get("failure_policy", "FAIL_CLOSED") in ("FAIL_CLOSED", "FAIL_RELOAD")


def test_a_panicking_filter_fails_closed(panicking_envoy, jira, tokens):
    token = tokens.flow("reporting-bot")
    requests = [
        ("GET", "/rest/api/2/myself", [("authorization", f"Bearer {token}")]),
        ("GET", "/status", []),
        ("GET", "/rest/api/2/myself", []),
        ("DELETE", "/rest/api/2/issue/OPS-1", [("authorization", f"Bearer {token}")]),
    ]
    jira.reset()
    # Twice over: the request that kills the VM, and every request after it.
    for method, path, headers in requests * 2:
        status, _, _ = s.raw_request(panicking_envoy.port, method, path, headers)
        assert 500 <= status < 600, f"{method} {path} got {status}"
    assert jira.requests() == [], "no request may reach Jira past a dead filter"
    assert panicking_envoy.process.proc.poll() is None, "Envoy itself keeps running"


def test_the_panic_message_reaches_envoys_log_through_the_hook(panicking_envoy):
    s.raw_request(panicking_envoy.port, "GET", "/status")
    log = wait_for_log(panicking_envoy, PANIC_MESSAGE)
    # The hook logs `panicked at <file>:<line>:<col>:` and the message on the next line, at
    # Envoy's critical level, through the wasm log host call.
    hook_line = r"\[critical\]\[wasm\][^\n]*wasm log [^\n]*: panicked at src/lib\.rs:[0-9:]+\n"
    assert re.search(hook_line + re.escape(PANIC_MESSAGE), log), log[-3000:]


def test_header_bytes_that_are_not_utf8_do_not_kill_the_filter(workdir, emulator, jira, tokens):
    """Envoy passes header values with bytes 0x80-0xFF (obs-text) on to the filter. Each such
    request must get an answer from the filter itself, and the next ordinary request must still
    be decided and forwarded."""
    envoy = s.start_envoy(workdir, emulator.port, jira.port, envoy_defaults=True)
    try:
        token = tokens.flow("reporting-bot")
        good = [("authorization", f"Bearer {token}")]
        hostile = [
            good + [("x-note", "caf\xe9")],
            [("authorization", "Bearer caf\xe9.x.y")],
            good + [("x-http-method-override", "G\xc9T")],
            good + [("x-jira-client", "\xff\xfe")],
        ]
        for headers in hostile:
            status, _, body = s.raw_request(envoy.port, "GET", "/rest/api/2/myself", headers)
            assert status < 500, (headers[-1], status, body)
            jira.reset()
            status, _, body = s.raw_request(envoy.port, "GET", "/rest/api/2/myself", good)
            assert status == 200, f"after {headers[-1]!r} the filter no longer answers: {body!r}"
            assert len(jira.requests()) == 1
        assert "panicked at" not in envoy.process.log()
    finally:
        envoy.process.stop()
