#!/usr/bin/env python3
"""The Envoy benchmark of jira-entra-guard against Envoy's native jwt_authn + rbac.

Run through `scripts/bench.sh` (which installs wrk, the venv and Envoy, and builds both Wasm
modules); see bench/README.md. Everything listens on 127.0.0.1 only; every Envoy started here is
stopped on exit, on Ctrl-C and on SIGTERM. Exit status 0 whatever the ratios (a measurement, not
a test); 1 when the benchmark itself could not be carried out (a configuration answering wrongly,
a crashed Envoy, wrk failing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(BENCH))

import envoy_configs as ec  # noqa: E402
import stack  # noqa: E402

GUARD_WASM = stack.WASM
NOOP_WASM = BENCH / "noop-filter" / "target" / "wasm32-wasip1" / "release" / "bench_noop_filter.wasm"
LUA = BENCH / "cycle_tokens.lua"
RESULTS = BENCH / "results"

CLIENT = "reporting-bot"
TENANT = stack.TENANT
API = stack.API_URI
PATH = "/rest/api/2/myself"
MIB = 1024 * 1024

NONE = "none"
NOOP = "wasm-noop"
JWT_CACHE = "jwt_authn+rbac (cache)"
JWT_NO_CACHE = "jwt_authn+rbac (no cache)"
GUARD = "jira-entra-guard"
GUARD_AUDIT_ALL = "jira-entra-guard (audit all)"
COMPARE = "jira-entra-guard (compared build)"
CONFIGS = [NONE, NOOP, JWT_CACHE, JWT_NO_CACHE, GUARD, GUARD_AUDIT_ALL]
# `--only` names the configurations by these short names.
SHORT_NAMES = {"none": NONE, "noop": NOOP, "jwt-cache": JWT_CACHE, "jwt-no-cache": JWT_NO_CACHE,
               "guard": GUARD, "guard-audit-all": GUARD_AUDIT_ALL, "compare": COMPARE}
AUTHENTICATING = {JWT_CACHE, JWT_NO_CACHE, GUARD, GUARD_AUDIT_ALL, COMPARE}
# Caches whose hit ratio is read from the stats (per run).
CACHED = {JWT_CACHE, GUARD, GUARD_AUDIT_ALL, COMPARE}


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- Envoy processes --------------------------------------------------------------------------

@dataclass
class BenchEnvoy:
    name: str
    proc: subprocess.Popen
    port: int
    admin_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stats(self) -> dict[str, int]:
        return stack.envoy_stats(self.admin_port, timeout=10)

    def rss_bytes(self, field: str = "VmRSS") -> int:
        """Resident memory (`VmRSS`), or one of its parts (`RssAnon`: the process's own pages;
        `RssFile`: pages of mapped files, mostly the Envoy binary's code, which the kernel maps
        in batches around each page touched, so it varies from process to process)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} for {self.name}")

    def heap_allocated_bytes(self) -> int:
        """Bytes Envoy's allocator has handed out and not had back (admin `/memory`): the live
        heap, whatever the allocator keeps resident besides."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/memory", timeout=10) as r:
            return int(json.loads(r.read())["allocated"])

    def cpu_seconds(self) -> float:
        """CPU time of every thread of the Envoy so far, from the scheduler's own accounting
        (`/proc/PID/task/*/schedstat`, nanoseconds), which is exact where `/proc/PID/stat`
        counts clock ticks."""
        total = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue  # a thread that ended between the listing and the read
        return total / 1e9

    def stop(self) -> None:
        stack.stop_process(self.proc)


class Envoys:
    """Every Envoy this run started, so that all of them are stopped whatever happens."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.all: list[BenchEnvoy] = []
        # Other processes to stop at the end (the Entra ID emulator).
        self.others: list[stack.Process] = []

    def start(self, name: str, make_config) -> BenchEnvoy:
        port, admin_port = stack.free_port(), stack.free_port()
        config = make_config(port, admin_port)
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        config_path = self.workdir / f"envoy-{slug}.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = self.workdir / f"envoy-{slug}.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [stack.ENVOY, "-c", str(config_path), "--use-dynamic-base-id",
                 "--concurrency", "1", "-l", "info"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
            )
        envoy = BenchEnvoy(name, proc, port, admin_port, log_path)
        self.all.append(envoy)
        try:
            stack.wait_for_port(port, proc, f"envoy {name!r} ({log_path})", timeout=60)
        except RuntimeError:
            raise RuntimeError(f"envoy {name!r} did not start; its log:\n{tail(log_path)}") from None
        return envoy

    def stop_all(self) -> None:
        for envoy in self.all:
            envoy.stop()
        for process in self.others:
            process.stop()


CLK_TCK = os.sysconf("SC_CLK_TCK")
# A run during which other processes used more than this share of one CPU is flagged: on a small
# machine, a compiler or a fuzzer next to the benchmark moves every number.
CONTENTION_PCT = 25.0


def machine_busy_seconds() -> float:
    """CPU time spent by the whole machine (all CPUs, everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def background_load(seconds: float = 2.0) -> float:
    """Share of one CPU (%) used by everything on the machine while this run is idle."""
    busy0, wall0 = machine_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return 100 * (machine_busy_seconds() - busy0) / (time.monotonic() - wall0)


def wait_for_quiet(max_wait: float) -> float:
    """Waits (at most `max_wait` seconds) until the rest of the machine uses less than
    CONTENTION_PCT of a CPU; returns the time waited."""
    start = time.monotonic()
    told = False
    while True:
        load = background_load(1.0)
        waited = time.monotonic() - start
        if load <= CONTENTION_PCT or waited >= max_wait:
            if told:
                log(f"  ... waited {waited:.0f}s; {load:.0f}% of a CPU in use now")
            return waited
        if not told:
            log(f"  other programs are using {load:.0f}% of a CPU: waiting up to "
                f"{max_wait:.0f}s for them to finish ...")
            told = True


# Warnings every Envoy here logs, about the benchmark's set-up rather than what it measures.
EXPECTED_WARNINGS = (
    "no configured limit to the number of allowed active downstream connections",
    "caught ENVOY_SIGTERM",
)


def log_problems(path: Path, limit: int = 5) -> list[str]:
    """Distinct warning/error lines of an Envoy log (timestamps and thread ids dropped); the
    audit-all log is large, so it is read line by line."""
    seen: dict[str, None] = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                for level in ("][warning][", "][error][", "][critical]["):
                    if level in line and not any(w in line for w in EXPECTED_WARNINGS):
                        seen.setdefault(level.strip("][") + " " + line.split("] ", 2)[-1].strip()[:300])
                if len(seen) >= limit:
                    break
    except OSError:
        pass
    return list(seen)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- tokens ----------------------------------------------------------------------------------

def mint(emulator, count: int, workers: int = 4, **extra) -> list[str]:
    """`count` distinct reporting-bot tokens, each with its own `uti` (Entra's unique token id)."""
    def one(_):
        body = {"tenant_id": TENANT, "client_id": stack.CLIENTS[CLIENT], "api": API,
                "overrides": {"uti": secrets.token_urlsafe(16)}, **extra}
        return stack.http_json("POST", f"{emulator.url}/_emulator/token", body)["token"]

    pool = ThreadPoolExecutor(workers)
    try:
        tokens = list(pool.map(one, range(count)))
    finally:
        # On Ctrl-C or SIGTERM, drop the requests not sent yet instead of waiting for them.
        pool.shutdown(wait=True, cancel_futures=True)
    if len(set(tokens)) != count:
        raise RuntimeError("minted tokens are not all distinct")
    return tokens


def write_tokens(path: Path, tokens: list[str]) -> Path:
    path.write_text("".join(t + "\n" for t in tokens))
    return path


# --- requests, checks ------------------------------------------------------------------------

def status_of(envoy: BenchEnvoy, method: str, path: str, token: str | None) -> int:
    headers = [("authorization", f"Bearer {token}")] if token else []
    status, _, _ = stack.raw_request(envoy.port, method, path, headers, timeout=10)
    return status


def wait_until_allowed(envoy: BenchEnvoy, token: str, timeout: float = 30.0) -> float:
    """Sends the valid request until it answers 200 (the filter first fetches its key set)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        if not envoy.alive():
            raise RuntimeError(f"envoy {envoy.name!r} exited; its log:\n{tail(envoy.log_path)}")
        try:
            last = status_of(envoy, "GET", PATH, token)
            if last == 200:
                return time.monotonic() - start
        except OSError as e:
            last = repr(e)
        time.sleep(0.2)
    raise RuntimeError(f"{envoy.name}: no 200 within {timeout:.0f}s (last answer {last})")


def check_answers(envoy: BenchEnvoy, cases: list[tuple[str, str, str, str | None, int]]) -> list[dict]:
    """Every case must be answered with its expected status, else the comparison is void."""
    results = []
    for what, method, path, token, expected in cases:
        got = status_of(envoy, method, path, token)
        results.append({"case": what, "method": method, "path": path,
                        "expected": expected, "got": got})
        if got != expected:
            raise RuntimeError(f"{envoy.name}: {what}: {method} {path} answered {got}, "
                               f"expected {expected}")
    return results


def stat_sum(stats: dict[str, int], contains: str, suffix: str) -> int:
    return sum(v for k, v in stats.items() if contains in k and k.endswith(suffix))


def cache_counts(name: str, stats: dict[str, int]) -> tuple[int, int]:
    """(hits, misses) of the configuration's token cache."""
    if name in (GUARD, GUARD_AUDIT_ALL, COMPARE):
        return (stat_sum(stats, "jira_entra_guard_token_cache_total", ".hit"),
                stat_sum(stats, "jira_entra_guard_token_cache_total", ".miss"))
    if name == JWT_CACHE:
        return (stat_sum(stats, "jwt_authn.", "jwt_cache_hit"),
                stat_sum(stats, "jwt_authn.", "jwt_cache_miss"))
    return (0, 0)


# --- wrk -------------------------------------------------------------------------------------

def run_wrk(envoy: BenchEnvoy, tokens_file: Path, duration: float, connections: int,
            once: bool = False, start: int = 0, save_to: Path | None = None) -> dict:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{int(round(duration))}s", "--latency",
            "-s", str(LUA), f"{envoy.url}{PATH}", "--", str(tokens_file), str(start)]
    if once:
        args.append("once")
    before_stats = envoy.stats()
    cpu0, wall0 = envoy.cpu_seconds(), time.monotonic()
    busy0, wrk0 = machine_busy_seconds(), children_cpu_seconds()
    if once:
        done = wrk_once(envoy, args, tokens_file, before_stats, duration)
    else:
        done = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60,
                              stdin=subprocess.DEVNULL)
    busy1, wrk1 = machine_busy_seconds(), children_cpu_seconds()
    cpu1, wall1 = envoy.cpu_seconds(), time.monotonic()
    after_stats = envoy.stats()
    wall = wall1 - wall0
    envoy_cpu, wrk_cpu = cpu1 - cpu0, wrk1 - wrk0
    other_cpu = max(0.0, (busy1 - busy0) - envoy_cpu - wrk_cpu)
    if save_to is not None:
        save_to.write_text(done.stdout + done.stderr)
    line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    hits0, misses0 = cache_counts(envoy.name, before_stats)
    hits1, misses1 = cache_counts(envoy.name, after_stats)
    hits, misses = hits1 - hits0, misses1 - misses0
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p90_ms": raw["latency_us"]["p90"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "max_ms": raw["latency_us"]["max"] / 1000,
        # wrk counts responses with a status above 399; nothing here answers 1xx or 3xx.
        "non_2xx": errors["status"],
        "socket_errors": {k: errors[k] for k in ("connect", "read", "write", "timeout")},
        "cache_hits": hits,
        "cache_misses": misses,
        # Shares of one CPU during the run: the Envoy measured, wrk, and everything else
        # (the other, idle Envoys and the emulator, the kernel's share not charged to either,
        # and any other program on the machine).
        "envoy_cpu_pct": round(100 * envoy_cpu / wall, 1),
        # Envoy's CPU time per answered request: steadier than req/s on a shared machine.
        "envoy_cpu_us_per_request": (round(1e6 * envoy_cpu / raw["requests"], 2)
                                     if raw["requests"] else None),
        "wrk_cpu_pct": round(100 * wrk_cpu / wall, 1),
        "other_cpu_pct": round(100 * other_cpu / wall, 1),
    }


def completed_requests(stats: dict[str, int]) -> int:
    return stats.get("http.bench.downstream_rq_completed", 0)


def wrk_once(envoy: BenchEnvoy, args: list[str], tokens_file: Path, before_stats: dict[str, int],
             limit: float) -> subprocess.CompletedProcess:
    """Runs wrk in `once` mode and ends it (SIGINT: wrk then reports as usual) as soon as Envoy
    has answered one request per token: wrk's own clock would wait out the whole -d."""
    want = sum(1 for line in tokens_file.read_text().splitlines() if line.strip())
    base = completed_requests(before_stats)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + limit
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if completed_requests(envoy.stats()) - base >= want:
                break
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def run_has_errors(run: dict) -> bool:
    return run["non_2xx"] > 0 or any(run["socket_errors"].values())


def run_contended(run: dict) -> bool:
    return run["other_cpu_pct"] > CONTENTION_PCT


# --- machine ---------------------------------------------------------------------------------

def machine() -> dict:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    envoy_version = subprocess.run([stack.ENVOY, "--version"], capture_output=True, text=True,
                                   timeout=30).stdout.strip().splitlines()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip().splitlines()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "envoy": envoy_version[-1].split("version:", 1)[-1].strip() if envoy_version else "?",
        "wrk": wrk_version[0] if wrk_version else "?",
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


# --- the run ---------------------------------------------------------------------------------

def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[dict]) -> dict:
    return {
        "rps": median([r["rps"] for r in runs]),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
        "envoy_cpu_pct": median([r["envoy_cpu_pct"] for r in runs]),
        # The least of the rounds: other work on the machine only ever adds to it.
        "cpu_us_per_request": min((r["envoy_cpu_us_per_request"] for r in runs
                                   if r.get("envoy_cpu_us_per_request") is not None),
                                  default=None),
        "other_cpu_pct_max": max((r["other_cpu_pct"] for r in runs), default=None),
        "runs": len(runs),
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(sum(r["socket_errors"].values()) for r in runs),
        "cache_hits": sum(r["cache_hits"] for r in runs),
        "cache_misses": sum(r["cache_misses"] for r in runs),
    }


def bench(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="jira-entra-guard-bench-"))
    envoys = Envoys(workdir)
    try:
        return _run(args, workdir, envoys)
    finally:
        envoys.stop_all()
        if args.keep_workdir:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args, workdir: Path, envoys: Envoys) -> dict:
    configs = args.configs
    needed = [(GUARD_WASM, "scripts/build.sh"), (NOOP_WASM, "scripts/bench.sh")]
    if COMPARE in configs:
        needed.append((args.compare_wasm, "--compare-wasm"))
    for path, what in needed:
        if not path.is_file():
            raise RuntimeError(f"{path} is missing: build it with {what}")
    info = machine()
    log(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), kernel {info['kernel']}, "
        f"Envoy {info['envoy']}, {info['wrk']}, {info['date']}")
    info["background_cpu_pct_before"] = round(background_load(), 1)
    log(f"background load before the run: {info['background_cpu_pct_before']:.0f}% of one CPU")
    if info["background_cpu_pct_before"] > CONTENTION_PCT:
        log("WARNING: other programs are using the CPU; the numbers will not be comparable "
            "(see `other CPU` per run)")

    emulator = stack.start_emulator(workdir)
    envoys.others.append(emulator.process)
    plugin = stack.shipped_plugin_config()
    shipped_filter = stack._wasm_filter(stack.shipped_envoy_config())
    jwks = {}
    for tenant in plugin["tenants"]:
        tid = tenant["tenant_id"]
        with stack.urlopen(f"{emulator.url}/{tid}/discovery/v2.0/keys", timeout=10) as r:
            jwks[tid] = r.read().decode()

    # Tokens: one reused (warm), a pool cycled (cold), a pool sent once (memory check).
    pool_size = max(args.cold_tokens, args.memory_tokens)
    log(f"minting {pool_size + 1} tokens from the emulator ...")
    t0 = time.monotonic()
    warm_token, *pool = mint(emulator, pool_size + 1)
    log(f"  done in {time.monotonic() - t0:.1f}s")
    warm_file = write_tokens(workdir / "tokens-warm.txt", [warm_token])
    cold_file = write_tokens(workdir / "tokens-cold.txt", pool[:args.cold_tokens])
    memory_file = write_tokens(workdir / "tokens-memory.txt", pool[:args.memory_tokens])
    bad = {
        "attacker": stack.http_json("POST", f"{emulator.url}/_emulator/token", {
            "tenant_id": TENANT, "client_id": stack.CLIENTS[CLIENT], "api": API,
            "key": "attacker"})["token"],
        "expired": stack.http_json("POST", f"{emulator.url}/_emulator/token", {
            "tenant_id": TENANT, "client_id": stack.CLIENTS[CLIENT], "api": API,
            "overrides": {"iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200,
                          "exp": int(time.time()) - 600}})["token"],
        "ci-pipeline": emulator.token("ci-pipeline"),
        "partner-sync": emulator.token("partner-sync", tenant=stack.OTHER_TENANT),
    }
    auth_cases = [
        ("valid token", "GET", PATH, warm_token, 200),
        ("valid token, wildcard rule", "GET", "/rest/api/2/issue/OPS-1", warm_token, 200),
        ("public path without token", "GET", "/status", None, 200),
        ("no token", "GET", PATH, None, 401),
        ("signed by an unpublished key", "GET", PATH, bad["attacker"], 401),
        ("expired token", "GET", PATH, bad["expired"], 401),
        ("method not allowed", "POST", PATH, warm_token, 403),
        ("path not allowed", "GET", "/rest/api/2/serverInfo", warm_token, 403),
        ("another client (ci-pipeline)", "GET", PATH, bad["ci-pipeline"], 403),
        ("same app id, other tenant (partner-sync)", "GET", PATH, bad["partner-sync"], 403),
    ]
    open_cases = [("valid token", "GET", PATH, warm_token, 200),
                  ("no token (nothing checks)", "GET", PATH, None, 200)]

    guard_config = {**plugin, "audit_log": "denials"}
    guard_all_config = {**plugin, "audit_log": "all"}
    # The shipped access log (envoy.yaml) carries the audit trail; only the `audit all` row has it.
    shipped_access_log = stack._hcm(stack.shipped_envoy_config()).get("access_log")

    # Every configuration runs with the allocator settings of the shipped envoy.yaml.
    allocator = stack.shipped_envoy_config().get("memory_allocator_manager")

    def make(name: str):
        def config(port, admin_port):
            def base(filters, **extra):
                return ec.base_config(port, admin_port, filters,
                                      memory_allocator_manager=allocator,
                                      entra_transport_socket=stack.entra_transport_socket(), **extra)
            if name == NONE:
                return base([])
            if name == NOOP:
                return base([ec.wasm_noop_filter(str(NOOP_WASM))])
            if name in (JWT_CACHE, JWT_NO_CACHE):
                return base([
                    ec.jwt_authn_filter(plugin, jwks, cache=(name == JWT_CACHE)),
                    ec.rbac_filter(plugin, CLIENT),
                ])
            if name == GUARD:
                return base([ec.guard_filter(shipped_filter, str(GUARD_WASM), guard_config)],
                            entra_port=emulator.port)
            if name == COMPARE:
                return base([ec.guard_filter(shipped_filter, str(args.compare_wasm), guard_config)],
                            entra_port=emulator.port)
            if name == GUARD_AUDIT_ALL:
                return base([ec.guard_filter(shipped_filter, str(GUARD_WASM), guard_all_config)],
                            entra_port=emulator.port, access_log=shipped_access_log)
            raise ValueError(name)
        return config

    started = {}
    checks = {}
    for name in configs:
        envoy = envoys.start(name, make(name))
        started[name] = envoy
        if name in AUTHENTICATING:
            waited = wait_until_allowed(envoy, warm_token)
            checks[name] = check_answers(envoy, auth_cases)
            log(f"started {name:<30} port {envoy.port}, pid {envoy.proc.pid}: "
                f"first 200 after {waited:.1f}s, {len(auth_cases)} answers as expected")
        else:
            wait_until_allowed(envoy, warm_token)
            checks[name] = check_answers(envoy, open_cases)
            log(f"started {name:<30} port {envoy.port}, pid {envoy.proc.pid}")

    runs: dict[str, dict[str, list[dict]]] = {n: {"warm": [], "cold": []} for n in configs}
    flagged = []
    contended = []
    quiet_budget = args.quiet_budget
    cold_next = {name: 0 for name in configs}
    log(f"\n{args.rounds} round(s); per run: wrk -t1 -c{args.connections} -d{args.duration}s "
        f"--latency GET {PATH}; warm = 1 token, cold = {args.cold_tokens} tokens cycled")
    for rnd in range(args.rounds):
        shift = rnd % len(configs)
        order = configs[shift:] + configs[:shift]
        kinds = ("warm", "cold") if rnd % 2 == 0 else ("cold", "warm")
        for name in order:
            envoy = started[name]
            for kind in kinds:
                tokens = warm_file if kind == "warm" else cold_file
                start = cold_next[name] if kind == "cold" else 0
                for attempt in range(1, args.retries + 2):
                    # The waits are bounded in total too: the tokens live about an hour.
                    quiet_budget -= wait_for_quiet(max(0.0, min(args.quiet_wait, quiet_budget)))
                    run = run_wrk(envoy, tokens, args.duration, args.connections, start=start,
                                  save_to=workdir / f"wrk-{rnd}-{kind}-{envoy.port}-{attempt}.txt")
                    if kind == "cold":
                        # The next cold run starts after every token this one may have sent
                        # (completed, plus at most one in flight per connection): those are the
                        # least recently used, so none of them is still cached.
                        start = (start + run["requests"] + args.connections) % args.cold_tokens
                        cold_next[name] = start
                    run["round"], run["attempt"] = rnd + 1, attempt
                    if not envoy.alive():
                        raise RuntimeError(f"envoy {name!r} died; its log:\n{tail(envoy.log_path)}")
                    if not run_contended(run) or attempt > args.retries:
                        break
                    log(f"  {name} {kind}: other programs used {run['other_cpu_pct']:.0f}% of a "
                        f"CPU during the run; running it again")
                runs[name][kind].append(run)
                cache = ""
                if name in CACHED:
                    total = run["cache_hits"] + run["cache_misses"]
                    cache = f", cache hits {100 * run['cache_hits'] / total:.1f}%" if total else ""
                mark = ""
                if run_has_errors(run):
                    mark += "  <-- ERRORS"
                    flagged.append({"config": name, "kind": kind, "round": rnd + 1,
                                    "non_2xx": run["non_2xx"], "socket_errors": run["socket_errors"]})
                if run_contended(run):
                    mark += "  <-- CONTENDED"
                    contended.append({"config": name, "kind": kind, "round": rnd + 1,
                                      "other_cpu_pct": run["other_cpu_pct"]})
                log(f"[round {rnd + 1}/{args.rounds}] {name:<30} {kind}: {run['rps']:>7.0f} req/s, "
                    f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, "
                    f"non-2xx {run['non_2xx']}, socket errors {sum(run['socket_errors'].values())}; "
                    f"CPU Envoy {run['envoy_cpu_pct']:.0f}% wrk {run['wrk_cpu_pct']:.0f}% "
                    f"other {run['other_cpu_pct']:.0f}%{cache}{mark}")
                time.sleep(0.5)

    rss = {name: started[name].rss_bytes() for name in configs}
    for name in configs:
        started[name].stop()
    envoy_log_problems = {name: log_problems(started[name].log_path) for name in configs}
    for name, problems in envoy_log_problems.items():
        for problem in problems:
            log(f"Envoy log of {name}: {problem}")

    # Memory target: fresh wasm-noop and jira-entra-guard Envoys, each sent the same distinct
    # tokens once; the filter caches every one of them (token_cache_size 10,000 by default).
    memory_check = NOOP in configs and GUARD in configs
    if memory_check:
        log(f"\nmemory check: {args.memory_tokens} distinct tokens through fresh wasm-noop and "
            f"jira-entra-guard Envoys")
    memory = {"tokens": args.memory_tokens}
    for name in (NOOP, GUARD) if memory_check else ():
        envoy = envoys.start(f"{name} (memory)", make(name))
        wait_until_allowed(envoy, warm_token)
        time.sleep(1.0)
        before, heap_before = envoy.rss_bytes(), envoy.heap_allocated_bytes()
        run = run_wrk(envoy, memory_file, max(60.0, args.memory_tokens / 100), args.connections,
                      once=True, save_to=workdir / f"wrk-memory-{envoy.port}.txt")
        # Two release intervals of the allocator settings, so that both Envoys are measured
        # after the same chance to hand freed memory back.
        time.sleep(2.5)
        after, heap_after = envoy.rss_bytes(), envoy.heap_allocated_bytes()
        anon_after, file_after = envoy.rss_bytes("RssAnon"), envoy.rss_bytes("RssFile")
        stats = envoy.stats()
        memory[name] = {
            "rss_before_bytes": before, "rss_after_bytes": after,
            "heap_before_bytes": heap_before, "heap_after_bytes": heap_after,
            "rss_anon_after_bytes": anon_after, "rss_file_after_bytes": file_after,
            "requests": run["requests"], "non_2xx": run["non_2xx"],
            "socket_errors": run["socket_errors"],
        }
        if name == GUARD:
            hits, misses = cache_counts(GUARD, stats)
            memory[name]["cache_misses_total"] = misses
            memory[name]["cache_hits_total"] = hits
            # Every pool token verified and inserted once (plus the warm-up token).
            memory["cache_filled"] = misses >= args.memory_tokens
        if run_has_errors(run):
            flagged.append({"config": f"{name} (memory)", "kind": "fill", "round": 0,
                            "non_2xx": run["non_2xx"], "socket_errors": run["socket_errors"]})
        log(f"  {name:<18} RSS {before / MIB:.1f} -> {after / MIB:.1f} MiB, live heap "
            f"{heap_before / MIB:.1f} -> {heap_after / MIB:.1f} MiB "
            f"after {run['requests']} requests (non-2xx {run['non_2xx']})")
        envoy.stop()
    if memory_check:
        memory["difference_bytes"] = (memory[GUARD]["rss_after_bytes"]
                                      - memory[NOOP]["rss_after_bytes"])

    return {
        "machine": info,
        "settings": {
            "duration_s": args.duration, "rounds": args.rounds, "connections": args.connections,
            "wrk_threads": 1, "envoy_concurrency": 1, "cold_tokens": args.cold_tokens,
            "memory_tokens": args.memory_tokens, "path": PATH, "client": CLIENT,
            "quick": args.quick,
        },
        "configs": configs,
        "compare_wasm": str(args.compare_wasm) if COMPARE in configs else None,
        "wasm": {"jira_entra_guard_bytes": GUARD_WASM.stat().st_size,
                 "noop_bytes": NOOP_WASM.stat().st_size},
        "checks": checks,
        "runs": runs,
        "summary": {name: {"warm": summarize(runs[name]["warm"]),
                           "cold": summarize(runs[name]["cold"]),
                           "rss_bytes": rss[name]} for name in configs},
        "memory": memory,
        "flagged_runs": flagged,
        "contended_runs": contended,
        "envoy_log_problems": envoy_log_problems,
    }


# --- report ----------------------------------------------------------------------------------

def round_ratios(result: dict, name: str, other: str, kind: str, field: str) -> list[float]:
    """`name`'s value over `other`'s, round by round (the two ran within the same round)."""
    runs = result["runs"]
    return [a[field] / b[field] for a, b in zip(runs[name][kind], runs[other][kind]) if b[field]]


def targets(result: dict) -> list[dict]:
    """The targets of the configurations that ran (`--only` may leave some out)."""
    s = result["summary"]
    ran = set(result["configs"])

    def ratio(a, b):
        return a / b if a is not None and b else None

    out = []

    def add(name, value, limit, passed, detail, per_round=None, lower_is_better=False):
        settled = None
        if per_round:
            # Every round on the same side of the limit: this run settles the target.
            settled = len({(x <= limit) if lower_is_better else (x >= limit)
                           for x in per_round}) == 1
        out.append({"target": name, "value": value, "limit": limit, "met": bool(passed),
                    "detail": detail, "per_round": per_round, "settled": settled})

    def at_least(kind, other, limit, label):
        if {GUARD, other} <= ran:
            a, b = s[GUARD][kind]["rps"], s[other][kind]["rps"]
            r = ratio(a, b)
            add(f"{kind} req/s >= {limit}x {label}", r, limit, r is not None and r >= limit,
                f"{a:.0f} / {b:.0f} = {r:.3f}x", round_ratios(result, GUARD, other, kind, "rps"))

    at_least("warm", JWT_CACHE, 1.05, "jwt_authn+rbac (cache)")
    at_least("warm", NOOP, 0.95, "wasm-noop")
    if {GUARD, JWT_CACHE} <= ran:
        g, jc = s[GUARD]["warm"]["p99_ms"], s[JWT_CACHE]["warm"]["p99_ms"]
        r = ratio(g, jc)
        add("warm p99 <= jwt_authn+rbac (cache) p99", r, 1.0, r is not None and r <= 1.0,
            f"{g:.2f} ms vs {jc:.2f} ms = {r:.3f}x",
            round_ratios(result, GUARD, JWT_CACHE, "warm", "p99_ms"), lower_is_better=True)
    at_least("cold", JWT_NO_CACHE, 1.0, "jwt_authn+rbac (no cache)")
    m = result["memory"]
    if "difference_bytes" in m:
        diff = m["difference_bytes"] / MIB
        add(f"RSS(filter, {m['tokens']} cached tokens) - RSS(wasm-noop) <= 16 MiB", diff, 16.0,
            diff <= 16.0,
            f"{m[GUARD]['rss_after_bytes'] / MIB:.1f} - {m[NOOP]['rss_after_bytes'] / MIB:.1f} "
            f"= {diff:.1f} MiB" + ("" if m.get("cache_filled") else " (cache NOT filled!)"))
    size = result["wasm"]["jira_entra_guard_bytes"]
    add("release .wasm < 1 MiB", size, MIB, size < MIB,
        f"{size} bytes = {size / MIB:.3f} MiB")
    return out


def comparison(result: dict) -> list[str]:
    """This build against `--compare-wasm`, measured side by side in the same rounds: ratios of
    req/s (median of the per-round ratios) and of Envoy CPU per request (least of the rounds)."""
    if COMPARE not in result["configs"] or GUARD not in result["configs"]:
        return []
    s = result["summary"]
    lines = ["", f"This build against `{result['compare_wasm']}` (same rounds, alternating order):",
             "", "| path | req/s ratio (per round) | Envoy CPU µs/request, least of rounds "
             "(this / compared) | CPU ratio |", "|---|---|---|---|"]
    for kind in ("warm", "cold"):
        per_round = round_ratios(result, GUARD, COMPARE, kind, "rps")
        rounds = ", ".join(f"{x:.3f}" for x in per_round) or "-"
        mid = median(per_round)
        mine, theirs = s[GUARD][kind]["cpu_us_per_request"], s[COMPARE][kind]["cpu_us_per_request"]
        cpu = mine / theirs if mine is not None and theirs else None
        lines.append(f"| {kind} | {fmt(mid, '.3f')}x ({rounds}) | {fmt(mine, '.1f')} / "
                     f"{fmt(theirs, '.1f')} | {fmt(cpu, '.3f')}x |")
    lines += ["", "req/s above 1 and CPU below 1: this build is the cheaper one."]
    return lines


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def report_markdown(result: dict) -> str:
    m, st = result["machine"], result["settings"]
    lines = [
        "# jira-entra-guard benchmark" + (" (quick smoke run)" if st["quick"] else ""),
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu_model']}, kernel {m['kernel']}",
        f"- Envoy {m['envoy']} (concurrency 1, V8), {m['wrk']}",
        f"- Date: {m['date']}; background load before the run: "
        f"{m['background_cpu_pct_before']:.0f}% of one CPU",
        f"- Load: `wrk -t1 -c{st['connections']} -d{st['duration_s']}s --latency` "
        f"`GET {st['path']}` as {st['client']}; {st['rounds']} round(s), medians; "
        f"warm = 1 token reused, cold = {st['cold_tokens']} distinct tokens cycled",
        f"- Upstream: Envoy `direct_response` 200 for every configuration",
        "",
        "| configuration | warm req/s | warm p50 ms | warm p99 ms | warm CPU µs/req | cold req/s "
        "| cold p50 ms | cold p99 ms | cold CPU µs/req | RSS MiB | cold cache hits "
        "| non-2xx / socket errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in result["configs"]:
        s = result["summary"][name]
        w, c = s["warm"], s["cold"]
        total = c["cache_hits"] + c["cache_misses"]
        hits = f"{100 * c['cache_hits'] / total:.1f}%" if name in CACHED and total else "n/a"
        errors = (w["non_2xx"] + c["non_2xx"], w["socket_errors"] + c["socket_errors"])
        lines.append(
            f"| {name} | {fmt(w['rps'], '.0f')} | {fmt(w['p50_ms'], '.2f')} | "
            f"{fmt(w['p99_ms'], '.2f')} | {fmt(w['cpu_us_per_request'], '.1f')} | "
            f"{fmt(c['rps'], '.0f')} | {fmt(c['p50_ms'], '.2f')} | "
            f"{fmt(c['p99_ms'], '.2f')} | {fmt(c['cpu_us_per_request'], '.1f')} | "
            f"{s['rss_bytes'] / MIB:.1f} | {hits} | "
            f"{errors[0]} / {errors[1]} |")
    lines += ["", "CPU µs/req: Envoy's CPU time (all its threads, from the scheduler's "
              "accounting) per answered request, the least of the rounds."]
    lines += comparison(result)
    lines += ["", "| target | measured (medians) | per round | met |", "|---|---|---|---|"]
    for t in result["targets"]:
        rounds = ", ".join(f"{x:.2f}" for x in t.get("per_round") or []) or "-"
        verdict = "PASS" if t["met"] else "FAIL"
        if t.get("settled") is False:
            verdict += " (rounds disagree)"
        lines.append(f"| {t['target']} | {t['detail']} | {rounds} | {verdict} |")
    if any(t.get("settled") is False for t in result["targets"]):
        lines += ["", "(rounds disagree): the per-round ratios of the two configurations, "
                  "measured within the same round, fall on both sides of the target's limit; "
                  "this run does not settle that target."]
    mem = result["memory"]
    lines += [] if "difference_bytes" not in mem else [
        "",
        f"Memory check: fresh Envoys, {mem['tokens']} distinct tokens sent once through each; "
        f"wasm-noop RSS {mem[NOOP]['rss_before_bytes'] / MIB:.1f} -> "
        f"{mem[NOOP]['rss_after_bytes'] / MIB:.1f} MiB, jira-entra-guard "
        f"{mem[GUARD]['rss_before_bytes'] / MIB:.1f} -> {mem[GUARD]['rss_after_bytes'] / MIB:.1f} MiB "
        f"(token cache misses {mem[GUARD].get('cache_misses_total', '?')}). Envoy's live heap "
        f"(admin `/memory`, `allocated`): wasm-noop {mem[NOOP]['heap_after_bytes'] / MIB:.1f} MiB, "
        f"jira-entra-guard {mem[GUARD]['heap_after_bytes'] / MIB:.1f} MiB. Their RSS split into "
        f"the process's own pages (`RssAnon`) and mapped files (`RssFile`, mostly Envoy's code): "
        f"wasm-noop {mem[NOOP]['rss_anon_after_bytes'] / MIB:.1f} + "
        f"{mem[NOOP]['rss_file_after_bytes'] / MIB:.1f} MiB, jira-entra-guard "
        f"{mem[GUARD]['rss_anon_after_bytes'] / MIB:.1f} + "
        f"{mem[GUARD]['rss_file_after_bytes'] / MIB:.1f} MiB. Every configuration runs with the "
        f"shipped envoy.yaml's `memory_allocator_manager` settings.",
    ]
    lines += [
        f"Module sizes: jira_entra_guard.wasm {result['wasm']['jira_entra_guard_bytes']} bytes, "
        f"noop {result['wasm']['noop_bytes']} bytes.",
    ]
    if result["flagged_runs"]:
        lines += ["", "Runs with errors:"]
        for f in result["flagged_runs"]:
            lines.append(f"- {f['config']} {f['kind']} round {f['round']}: non-2xx {f['non_2xx']}, "
                         f"socket errors {f['socket_errors']}")
    else:
        lines += ["", "No run had a non-2xx response or a socket error."]
    if result["contended_runs"]:
        lines += ["", f"Runs during which other programs used more than {CONTENTION_PCT:.0f}% of "
                  "a CPU (numbers not comparable):"]
        for f in result["contended_runs"]:
            lines.append(f"- {f['config']} {f['kind']} round {f['round']}: "
                         f"other CPU {f['other_cpu_pct']:.0f}%")
    else:
        lines += [f"No run shared the machine with more than {CONTENTION_PCT:.0f}% of a CPU of "
                  "other work."]
    problems = {n: p for n, p in result["envoy_log_problems"].items() if p}
    if problems:
        lines += ["", "Warnings and errors in the Envoy logs:"]
        for name, found in problems.items():
            lines += [f"- {name}: {p}" for p in found]
    if st["quick"]:
        lines += ["", "Quick run: short runs and a small cold pool, which the caches hold after "
                  "one pass (see the cold cache hits); not a measurement to compare."]
    return "\n".join(lines) + "\n"


def run_stoppable(measure, args, what: str) -> tuple[dict | None, int]:
    """Runs `measure(args)` and returns its result and exit status 0, or `None` and 130 after
    Ctrl-C, or `None` and 1 when the measurement could not be carried out. SIGTERM ends the run
    like Ctrl-C but exits 143; either way the `finally` blocks stop every Envoy."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return measure(args), 0
    except KeyboardInterrupt:
        log("\ninterrupted: every Envoy stopped")
        return None, 130
    except RuntimeError as e:
        log(f"\n{what} could not be carried out: {e}")
        return None, 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s runs, 1 round, 500 cold tokens, 1000 memory tokens")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3)")
    parser.add_argument("--cold-tokens", type=int,
                        help="distinct tokens cycled in cold runs (default 12000: more than the "
                             "10,000 entries of either cache, so LRU never hits)")
    parser.add_argument("--memory-tokens", type=int,
                        help="distinct tokens for the memory check (default 10000)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--retries", type=int, default=2,
                        help="times a run is repeated when other programs took CPU during it")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait at most, before each run, for other programs to "
                             "leave the CPU alone")
    parser.add_argument("--quiet-budget", type=float, default=1200.0,
                        help="seconds of such waiting in the whole run, at most")
    parser.add_argument("--compare-wasm", type=Path,
                        help="another build of the filter (a .wasm file) to run side by side with "
                             "this one, same configuration and rounds; the report adds the ratios")
    parser.add_argument("--only", type=str,
                        help="comma-separated configurations to run (" + ", ".join(SHORT_NAMES)
                             + "); default all but compare (compare is added by --compare-wasm)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep Envoy configs, logs, tokens and wrk outputs")
    args = parser.parse_args()
    defaults = ({"duration": 2, "rounds": 1, "cold_tokens": 500, "memory_tokens": 1000}
                if args.quick else
                {"duration": 10, "rounds": 3, "cold_tokens": 12000, "memory_tokens": 10000})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.duration, args.rounds, args.cold_tokens, args.memory_tokens) < 1:
        parser.error("durations, rounds and token counts must be positive")
    if min(args.retries, args.quiet_wait, args.quiet_budget) < 0:
        parser.error("--retries, --quiet-wait and --quiet-budget must not be negative")

    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in SHORT_NAMES]
        if unknown or not wanted:
            parser.error(f"--only: unknown configuration(s) {unknown}; known: {list(SHORT_NAMES)}")
        args.configs = [SHORT_NAMES[w] for w in wanted]
    else:
        args.configs = CONFIGS + ([COMPARE] if args.compare_wasm else [])
    if (COMPARE in args.configs) != (args.compare_wasm is not None):
        parser.error("the compare configuration needs --compare-wasm, and --compare-wasm needs it")
    if args.compare_wasm is not None:
        args.compare_wasm = args.compare_wasm.resolve()

    result, status = run_stoppable(bench, args, "benchmark")
    if result is None:
        return status
    result["targets"] = targets(result)

    md = report_markdown(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # A run of some configurations (`--only`, `--compare-wasm`) never replaces a full one.
    partial = args.configs != CONFIGS
    stem = "latest-quick" if args.quick else ("latest-partial" if partial else "latest")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(md)
    log("\n" + md)
    met = sum(t["met"] for t in result["targets"])
    log(f"targets met: {met} of {len(result['targets'])}")
    for t in result["targets"]:
        rounds = ", ".join(f"{x:.2f}" for x in t.get("per_round") or [])
        log(f"  [{'PASS' if t['met'] else 'FAIL'}] {t['target']}: {t['detail']}"
            + (f" (per round: {rounds}{'; rounds disagree' if t['settled'] is False else ''})"
               if rounds else ""))
    if result["flagged_runs"]:
        log(f"WARNING: {len(result['flagged_runs'])} run(s) had errors (see 'Runs with errors')")
    if result["contended_runs"]:
        log(f"WARNING: {len(result['contended_runs'])} run(s) shared the CPU with other programs")
    log(f"results: {RESULTS / (stem + '.json')}, {RESULTS / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
