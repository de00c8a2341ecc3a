"""Session fixtures: one emulator and one Jira stand-in for the whole run, and Envoys on top."""

from __future__ import annotations

import subprocess
import sys

import pytest

import stack as s


def pytest_configure(config):
    if not s.WASM.exists():
        pytest.exit(f"{s.WASM} is missing: run scripts/build.sh first", returncode=2)


@pytest.fixture(scope="session")
def workdir():
    return s.new_workdir()


@pytest.fixture(scope="session")
def emulator(workdir):
    e = s.start_emulator(workdir)
    yield e
    e.process.stop()


@pytest.fixture(scope="session")
def jira(workdir):
    j = s.start_jira(workdir)
    yield j
    j.process.stop()


@pytest.fixture(scope="session")
def envoy(workdir, emulator, jira):
    """Envoy with the shipped envoy.yaml, but Envoy's *default* path handling (raw paths): the
    filter alone must be safe."""
    e = s.start_envoy(workdir, emulator.port, jira.port, envoy_defaults=True)
    yield e
    e.process.stop()


@pytest.fixture(scope="session")
def shipped_envoy(workdir, emulator, jira):
    """Envoy exactly as envoy.yaml ships (recommended path settings on)."""
    e = s.start_envoy(workdir, emulator.port, jira.port)
    yield e
    e.process.stop()


class Tokens:
    """Tokens obtained the way real clients get them (`stack/jira_client.py`: MSAL with the
    client's certificate, against the emulator's token endpoint over HTTPS), cached per run."""

    def __init__(self, emulator: s.Emulator):
        self.emulator = emulator
        self.cache: dict[tuple, str] = {}

    def flow(self, client: str, scope_api: str = s.API_URI, tenant: str = s.TENANT,
             secret: str | None = None) -> str:
        key = (client, scope_api, tenant, secret)
        if key not in self.cache:
            args = [sys.executable, "stack/jira_client.py", "--authority", self.emulator.url,
                    "--tenant", tenant, "--client-id", s.CLIENTS[client],
                    "--scope", f"{scope_api}/.default", "--token-only"]
            if secret:
                args += ["--client-secret", secret]
            else:
                args += ["--cert", f"stack/pki/{client}.crt", "--key", f"stack/pki/{client}.key"]
            out = subprocess.run(args, cwd=s.ROOT, capture_output=True, text=True, check=True)
            self.cache[key] = out.stdout.strip()
        return self.cache[key]


@pytest.fixture(scope="session")
def tokens(emulator):
    return Tokens(emulator)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of Envoy's log: the filter's own log lines say why."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for name in ("envoy", "shipped_envoy"):
            e = item.funcargs.get(name)
            if e is not None:
                tail = "\n".join(e.process.log().splitlines()[-60:])
                report.sections.append((f"{name} log (tail)", tail))
