"""The local stack under test: the Entra ID emulator, the Jira stand-in and a real Envoy running
the built filter, each its own process on loopback ports chosen at start.

Envoy's configuration is the repository's `envoy.yaml` with ports, the module path, the CA file
(as an absolute path) and (when asked) the plugin configuration replaced, so the shipped file is
what the tests exercise. The emulator serves HTTPS with the stack's local CA (stack/local_ca.py);
the helpers here trust that CA.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "stack"))
import local_ca  # noqa: E402

WASM = ROOT / "target" / "wasm32-wasip1" / "release" / "jira_entra_guard.wasm"
VENV_BIN = Path(sys.executable).parent
ENVOY = os.environ.get("ENVOY_BIN", str(VENV_BIN / "envoy"))

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "0c9e5a4d-2f7b-4c1e-9d3a-5b6f7e8d9c0a"
API_URI = "api://jira-gateway"
API_APP_ID = "b7d3f1e2-4a5c-4e6f-8a9b-0c1d2e3f4a5b"
LEGACY_API_URI = "api://jira-gateway-legacy"
CLIENTS = {
    "reporting-bot": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
    "ci-pipeline": "8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202",
    "legacy-sync": "5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b01",
    "intruder": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01",
    "partner-sync": "3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    """Polls `predicate` until it holds (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def local_tls() -> local_ca.LocalTls:
    """The stack's CA and the emulator's certificate (created on first use)."""
    return local_ca.ensure()


def tls_context() -> ssl.SSLContext:
    """Trusts the stack's CA only."""
    return ssl.create_default_context(cafile=str(local_tls().ca_cert))


def urlopen(url_or_request, timeout: float = 10.0):
    """urllib's urlopen, trusting the stack's CA for https URLs."""
    return urllib.request.urlopen(url_or_request, timeout=timeout, context=tls_context())


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 10.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s; returns once the process is gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def envoy_stats(admin_port: int, timeout: float = 5.0) -> dict[str, int]:
    """Envoy's counters and gauges from its admin `/stats`, by name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats", timeout=timeout) as r:
        out = {}
        for line in r.read().decode().splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        stop_process(self.proc)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def start_process(name: str, args: list[str], workdir: Path, env: dict | None = None) -> Process:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    return Process(name, proc, log_path)


@dataclass
class Emulator:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def token(self, client: str, api: str = API_URI, tenant: str = TENANT, **kw) -> str:
        body = {"tenant_id": tenant, "client_id": CLIENTS[client], "api": api, **kw}
        return http_json("POST", f"{self.url}/_emulator/token", body)["token"]

    def sign(self, header: dict, claims: dict | None = None, tenant: str = TENANT, **kw) -> str:
        body = {"tenant_id": tenant, "header": header, "claims": claims or {}, **kw}
        return http_json("POST", f"{self.url}/_emulator/sign", body)["token"]

    def stats(self, tenant: str = TENANT) -> dict:
        return http_json("GET", f"{self.url}/_emulator/stats")["tenants"].get(tenant, {})

    def control(self, path: str, body: dict) -> dict:
        return http_json("POST", f"{self.url}/_emulator/{path}", body)


@dataclass
class JiraStandIn:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        http_json("POST", f"{self.url}/_standin/reset", {})

    def requests(self) -> list[dict]:
        return http_json("GET", f"{self.url}/_standin/requests")["requests"]


def start_emulator(workdir: Path, extra_args: list[str] | None = None) -> Emulator:
    """`extra_args`: e.g. `--http`, or `--tls-cert`/`--tls-key` for another certificate."""
    local_tls()  # before the emulator, so that two starting at once don't both create it
    port = free_port()
    p = start_process(
        f"entra-emulator-{port}",
        [sys.executable, "stack/entra_emulator.py", "--config", "stack/entra-emulator.json", "--port", str(port),
         *(extra_args or [])],
        workdir,
    )
    wait_for_port(port, p.proc, "entra emulator")
    return Emulator(p, port)


def start_jira(workdir: Path) -> JiraStandIn:
    port = free_port()
    p = start_process("jira-standin", [sys.executable, "stack/jira_standin.py", "--port", str(port)], workdir)
    wait_for_port(port, p.proc, "jira stand-in")
    return JiraStandIn(p, port)


def shipped_envoy_config() -> dict:
    return yaml.safe_load((ROOT / "envoy.yaml").read_text())


def _wasm_filter(config: dict) -> dict:
    hcm = _hcm(config)
    return next(f for f in hcm["http_filters"] if f["name"] == "jira-entra-guard")


def _hcm(config: dict) -> dict:
    listener = config["static_resources"]["listeners"][0]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def entra_cluster(config: dict) -> dict:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == "entra")


def entra_validation(config: dict) -> dict:
    """The `entra` cluster's certificate validation settings (trusted CA, SAN match)."""
    tls = entra_cluster(config)["transport_socket"]["typed_config"]
    return tls["common_tls_context"]["validation_context"]


def entra_transport_socket() -> dict:
    """The shipped `entra` cluster's TLS transport socket, trusting the stack's CA by absolute
    path (for configurations built from scratch, like the benchmark's)."""
    config = shipped_envoy_config()
    entra_validation(config)["trusted_ca"]["filename"] = str(local_tls().ca_cert)
    return entra_cluster(config)["transport_socket"]


def shipped_plugin_config() -> dict:
    value = _wasm_filter(shipped_envoy_config())["typed_config"]["config"]["configuration"]["value"]
    return json.loads(value)


@dataclass
class Envoy:
    process: Process
    port: int
    admin_port: int
    config_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        return envoy_stats(self.admin_port)


def render_envoy_config(
    workdir: Path,
    emulator_port: int,
    jira_port: int,
    plugin_config: dict | None = None,
    envoy_defaults: bool = False,
    mutate=None,
) -> tuple[Path, int, int]:
    """Writes envoy.yaml with test ports; `envoy_defaults` drops the recommended path settings so
    the filter is tested with Envoy's defaults (raw paths)."""
    config = copy.deepcopy(shipped_envoy_config())
    port, admin_port = free_port(), free_port()
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = port
    hcm = _hcm(config)
    if envoy_defaults:
        for key in ("normalize_path", "merge_slashes", "path_with_escaped_slashes_action"):
            hcm.pop(key, None)
    wasm = _wasm_filter(config)["typed_config"]["config"]
    wasm["vm_config"]["code"]["local"]["filename"] = str(WASM)
    if plugin_config is not None:
        wasm["configuration"]["value"] = json.dumps(plugin_config)
    for cluster in config["static_resources"]["clusters"]:
        target = {"jira": jira_port, "entra": emulator_port}[cluster["name"]]
        ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ep["address"]["socket_address"]["port_value"] = target
    validation = entra_validation(config)
    if "trusted_ca" in validation:
        validation["trusted_ca"]["filename"] = str(local_tls().ca_cert)
    if mutate:
        mutate(config)
    path = workdir / f"envoy-{port}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, port, admin_port


def start_envoy(
    workdir: Path,
    emulator_port: int,
    jira_port: int,
    plugin_config: dict | None = None,
    envoy_defaults: bool = False,
    concurrency: int = 1,
    mutate=None,
    wait_ready: bool = True,
) -> Envoy:
    path, port, admin_port = render_envoy_config(
        workdir, emulator_port, jira_port, plugin_config, envoy_defaults, mutate
    )
    p = start_process(
        f"envoy-{port}",
        [ENVOY, "-c", str(path), "--use-dynamic-base-id", "--concurrency", str(concurrency),
         "-l", "info", "--component-log-level", "wasm:debug",
         # The audit trail goes through the access log: flush it promptly for the tests.
         "--file-flush-interval-msec", "100"],
        workdir,
    )
    envoy = Envoy(p, port, admin_port, path)
    if wait_ready:
        wait_for_port(port, p.proc, f"envoy ({p.log_path})", timeout=30)
    return envoy


def raw_request(port: int, method: str, path: str, headers: list[tuple[str, str]] | None = None,
                body: bytes = b"", timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """Sends one HTTP/1.1 request exactly as given (no path normalisation or validation) and
    returns (status, headers with lowercase names, body)."""
    lines = [f"{method} {path} HTTP/1.1", "host: jira.local", "connection: close"]
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"content-length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        raw = _read_response(s)
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    resp_headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        resp_headers[name.strip().lower()] = value.strip()
    if resp_headers.get("transfer-encoding") == "chunked":
        rest = _dechunk(rest)
    return status, resp_headers, rest


def _read_response(sock: socket.socket) -> bytes:
    """Reads one response: up to its content-length when it has one (Envoy keeps the connection
    open for a moment after a local reply), else until the connection closes."""
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return raw
        raw += chunk
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length" and len(body) >= int(value.strip()):
                return raw


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


@dataclass
class Stack:
    workdir: Path
    emulator: Emulator
    jira: JiraStandIn
    envoys: list[Envoy] = field(default_factory=list)

    def stop(self) -> None:
        for e in self.envoys:
            e.process.stop()
        self.emulator.process.stop()
        self.jira.process.stop()


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="jira-entra-guard-e2e-"))
