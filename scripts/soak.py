#!/usr/bin/env python3
"""Soak run: one Envoy (2 workers) with the built filter, the Entra ID emulator and the Jira
stand-in on loopback, under mixed load from `wrk` for a bounded time, while the emulator rotates
signing keys the way Entra ID does (publish ahead, sign with it, retire the old one) and its key
server fails in turn (down, garbage, hanging past the fetch timeout) and tokens naming unknown
key ids flood in.

Each request class runs in its own `wrk` with one expected status, so every answer is either
right or a wrong decision. The run is split into phases; the summary gives requests by expected
and actual status, wrong decisions per phase, unexpected 5xx, key fetches per minute against the
bound the configuration implies, the Envoy process's RSS (first, last, slope) and what reached
the Jira stand-in. The exit status is non-zero on any wrong decision, any 5xx, any request that
reached Jira without being allowed, any timed-out request, or key fetches above the bound.

Run it through scripts/soak.sh, which installs `wrk` and builds the module first.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import stack as s  # noqa: E402  (the e2e helpers start and stop the processes)

T1, T2 = s.TENANT, s.OTHER_TENANT
TENANTS = (T1, T2)

# The key lifecycle, short enough to go round several times in a run: the filter refreshes
# every 10 s and an unknown kid may cause a fetch at most every 30 s. The request wait and the
# fetch timeout are the shipped defaults (3000 ms and 2000 ms).
REFRESH_SECONDS = 10
MIN_REFETCH_SECONDS = 30
# The most failed fetches the retry back-off (1 s doubling to 30 s) allows in one minute, plus
# one for a minute that starts in the middle of a back-off.
RETRIES_PER_MINUTE = 7

# (name, key-server fault, key action at the start of the phase, unknown-kid flood)
PHASES = [
    ("steady+publish", "none", "publish", False),
    ("down", "status:503", None, False),
    ("rotate", "none", "activate", False),
    ("garbage", "garbage", None, False),
    ("retire", "none", "retire", False),
    ("hang", "hang:30", None, False),
    ("flood", "none", None, True),
    ("hang+flood", "hang:30", None, True),
]

PAT_LEGACY_SYNC = "Bearer demo-pat-legacy-sync"


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    client: str | None = None  # the client Jira must see, for allowed calls


@dataclass
class RequestClass:
    name: str
    expected: int
    connections: int
    calls: list[Call]
    rate: int | None = None  # requests per second for the whole class; None: as fast as served


@dataclass
class KeyState:
    pending: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)
    # Keys taken out of the set, with the emulator's fetch count when they were: they are used
    # for "retired key" tokens once the filter has fetched the set again.
    retired: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: {t: [] for t in TENANTS})


def drop_access_log(config: dict) -> None:
    listener = config["static_resources"]["listeners"][0]
    listener["filter_chains"][0]["filters"][0]["typed_config"].pop("access_log", None)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = s.new_workdir()
        self.keys = KeyState()
        self.phase_results: list[dict] = []
        self.rss_samples: list[tuple[float, float]] = []
        self.fetch_samples: list[tuple[float, dict[str, int]]] = []
        self.started = time.monotonic()
        self.jira_violations: list[str] = []

    # --- the stack -------------------------------------------------------------------------

    def start(self) -> None:
        self.idp = s.start_emulator(self.workdir)
        self.jira = s.start_jira(self.workdir)
        config = s.shipped_plugin_config()
        for tenant in config["tenants"]:
            tenant["jwks"].update(refresh_seconds=REFRESH_SECONDS,
                                  min_refetch_seconds=MIN_REFETCH_SECONDS)
        # The shipped envoy.yaml without its access log, and Envoy logging warnings only: the
        # filter still writes its audit record for every request, but a soak must not fill the
        # disk with a line per request. Key-fetch failures are warnings and stay in the log.
        path, port, admin_port = s.render_envoy_config(
            self.workdir, self.idp.port, self.jira.port, config, mutate=drop_access_log)
        process = s.start_process(
            f"envoy-{port}",
            [s.ENVOY, "-c", str(path), "--use-dynamic-base-id", "--concurrency", "2",
             "-l", "warning"],
            self.workdir)
        s.wait_for_port(port, process.proc, f"envoy ({process.log_path})", timeout=30)
        self.envoy = s.Envoy(process, port, admin_port, path)
        self.pid = process.proc.pid

    def stop(self) -> None:
        for process in (getattr(self, "envoy", None), getattr(self, "jira", None),
                        getattr(self, "idp", None)):
            if process is not None:
                process.process.stop()

    # --- tokens ----------------------------------------------------------------------------

    def token(self, client: str, tenant: str = T1, api: str = s.API_URI, **kw) -> str:
        body = {"tenant_id": tenant, "client_id": s.CLIENTS[client], "api": api, **kw}
        return self.idp.control("token", body)["token"]

    def claims(self, client: str = "reporting-bot", tenant: str = T1) -> dict:
        body = {"tenant_id": tenant, "client_id": s.CLIENTS[client], "api": s.API_URI}
        return self.idp.control("token", body)["claims"]

    def signed(self, header: dict, claims: dict, key: str, tenant: str = T1) -> str:
        return self.idp.sign(header, claims, tenant=tenant, key=key, raw_header=True)

    def jwks_requests(self) -> dict[str, int]:
        stats = s.http_json("GET", f"{self.idp.url}/_emulator/stats")["tenants"]
        return {t: stats.get(t, {}).get("jwks_requests", 0) for t in TENANTS}

    # --- request classes -------------------------------------------------------------------

    def classes(self, flood: bool) -> list[RequestClass]:
        c = self.args.connections
        rb = self.token("reporting-bot")
        ci = self.token("ci-pipeline")
        legacy = self.token("legacy-sync")
        partner = self.token("partner-sync", tenant=T2)
        valid = [
            Call("GET", "/rest/api/2/myself", bearer(rb), "reporting-bot"),
            Call("GET", "/rest/api/2/search?jql=project%20%3D%20OPS", bearer(rb), "reporting-bot"),
            Call("GET", "/rest/api/2/issue/OPS-1", bearer(rb), "reporting-bot"),
            Call("GET", "/rest/api/2/issue/OPS-7", bearer(ci), "ci-pipeline"),
            Call("GET", "/rest/api/2/issue/SEC-3", bearer(ci), "ci-pipeline"),
            Call("GET", "/rest/api/2/search?jql=x", bearer(legacy), "legacy-sync"),
            Call("GET", "/rest/api/2/issue/OPS-2", bearer(partner), "partner-sync"),
        ]
        intruder = self.token("intruder")
        forbidden = [
            Call("DELETE", "/rest/api/2/issue/OPS-1", bearer(rb)),
            Call("GET", "/rest/api/2/user?username=admin", bearer(rb)),
            Call("DELETE", "/rest/api/2/issue/OPS-7", bearer(ci)),
            Call("GET", "/rest/api/2/issue/HR-1", bearer(ci)),
            Call("GET", "/rest/api/2/myself", bearer(legacy)),
            Call("GET", "/rest/api/2/issue/SEC-1", bearer(partner)),
            Call("GET", "/rest/api/2/myself", bearer(intruder)),
        ]
        now = int(time.time())
        genuine = rb
        head, body, sig = genuine.split(".")
        other_sig = ci.split(".")[2]
        base = self.claims()
        invalid_tokens = [
            self.token("reporting-bot", overrides={"exp": now - 3600, "nbf": now - 7200,
                                                   "iat": now - 7200}),        # expired
            self.token("reporting-bot", overrides={"nbf": now + 3600}),        # not yet valid
            self.token("reporting-bot", overrides={"aud": "api://someone-else"}),
            self.token("reporting-bot", overrides={"iss": f"https://sts.windows.net/{uuid.uuid4()}/"}),
            self.token("reporting-bot", overrides={"tid": T2}),                # tenant mismatch
            self.token("reporting-bot", overrides={"aud": "https://graph.microsoft.com"}),
            self.token("reporting-bot", remove=["exp"]),                       # no expiry
            self.token("reporting-bot", header_overrides={"alg": "HS256"}),
            self.token("reporting-bot", header_overrides={"alg": "none"}),
            self.token("reporting-bot", header_overrides={"crit": ["exp"]}),
            self.signed({"alg": "RS256", "typ": "JWT"}, base, key="active"),  # no kid, no x5t
            f"{head}.{body}.{other_sig}",                                        # bad signature
            f"{head}.{body}",                                                    # not a JWS
            f"{head}.{body}.{sig}=",                                             # bad encoding
        ]
        invalid = [Call("GET", "/rest/api/2/myself", bearer(t)) for t in invalid_tokens]
        invalid.append(Call("GET", "/rest/api/2/myself", {}))                    # no token
        invalid.append(Call("GET", "/rest/api/2/myself", {"authorization": "Bearer a b"}))
        fetched = self.jwks_requests()
        for tenant in TENANTS:
            for kid, fetches_then in self.keys.retired[tenant]:
                # Refused once the filter has fetched the set without it (a healthy fetch
                # after the removal; the removal happens at the start of a healthy phase).
                if fetched[tenant] > fetches_then + 1:
                    client = "reporting-bot" if tenant == T1 else "partner-sync"
                    claims = self.claims(client, tenant)
                    token = self.signed({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims,
                                        key=kid, tenant=tenant)
                    invalid.append(Call("GET", "/rest/api/2/issue/OPS-2", bearer(token)))
        unknown = []
        for n in range(40):
            key = "attacker" if n % 2 else "active"  # forged, or a genuine key under a new kid
            token = self.signed({"alg": "RS256", "kid": uuid.uuid4().hex, "typ": "JWT"}, base, key=key)
            unknown.append(Call("GET", "/rest/api/2/myself", bearer(token)))
        rate = self.args.rate
        return [
            RequestClass("valid", 200, c, valid),
            RequestClass("forbidden", 403, c, forbidden, rate),
            RequestClass("invalid", 401, c, invalid, rate),
            RequestClass("unknown-kid", 401, c * 4 if flood else c, unknown,
                         rate * 4 if flood else rate),
        ]

    def preflight(self, classes: list[RequestClass]) -> None:
        """Every call once, slowly: a wrong expectation in this script is not a wrong decision."""
        for rc in classes:
            for call in rc.calls:
                status, _, body = s.raw_request(self.envoy.port, call.method, call.path,
                                                list(call.headers.items()))
                if status != rc.expected:
                    raise SystemExit(f"preflight: {rc.name} {call.method} {call.path} answered "
                                     f"{status}, expected {rc.expected}: {body[:200]!r}")

    # --- keys and faults -------------------------------------------------------------------

    def key_action(self, action: str | None) -> None:
        for tenant in TENANTS:
            state = s.http_json("GET", f"{self.idp.url}/_emulator/keys?tenant_id={tenant}")
            if action == "publish":
                added = self.idp.control("keys", {"tenant_id": tenant, "action": "add"})
                self.keys.pending[tenant] = added["kid"]
            elif action == "activate" and tenant in self.keys.pending:
                self.keys.previous[tenant] = state["active"]
                self.idp.control("keys", {"tenant_id": tenant, "action": "activate",
                                          "kid": self.keys.pending.pop(tenant)})
            elif action == "retire" and tenant in self.keys.previous:
                kid = self.keys.previous.pop(tenant)
                self.idp.control("keys", {"tenant_id": tenant, "action": "remove", "kid": kid})
                self.keys.retired[tenant].append((kid, self.jwks_requests()[tenant]))
                # Keep the number of retired-key tokens bounded.
                self.keys.retired[tenant] = self.keys.retired[tenant][-2:]

    def fault(self, fault: str) -> None:
        self.idp.control("faults", {"tenant_id": "*", "jwks": fault})

    # --- sampling --------------------------------------------------------------------------

    def sample(self) -> None:
        elapsed = time.monotonic() - self.started
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.rss_samples.append((elapsed, int(line.split()[1]) / 1024))
        except OSError:
            pass
        self.fetch_samples.append((elapsed, self.jwks_requests()))

    # --- one phase -------------------------------------------------------------------------

    def lua(self, rc: RequestClass, path: Path) -> None:
        specs = []
        for call in rc.calls:
            headers = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in call.headers.items())
            specs.append(f"  {{{json.dumps(call.method)}, {json.dumps(call.path)}, {{{headers}}}}},")
        # wrk paces each connection with delay(): the class as a whole stays near its rate.
        delay_ms = rc.connections * 1000 // rc.rate if rc.rate else 0
        path.write_text(LUA_TEMPLATE.replace("--SPECS--", "\n".join(specs))
                        .replace("--CAP--", str(self.args.max_requests))
                        .replace("--DELAY--", str(delay_ms)))

    def run_phase(self, index: int, name: str, fault: str, action: str | None, flood: bool,
                  seconds: int) -> dict:
        self.fault("none")
        self.key_action(action)
        classes = self.classes(flood)
        self.preflight(classes)
        self.fault(fault)
        stats_before = self.envoy.stats()
        self.jira.reset()
        procs = []
        for rc in classes:
            script = self.workdir / f"phase{index}-{rc.name}.lua"
            self.lua(rc, script)
            out = open(self.workdir / f"phase{index}-{rc.name}.out", "w+")
            procs.append((rc, out, subprocess.Popen(
                ["wrk", "-t1", f"-c{rc.connections}", f"-d{seconds}s", "--timeout", "10s",
                 "-s", str(script), self.envoy.url], stdout=out, stderr=subprocess.STDOUT)))
        deadline = time.monotonic() + seconds + 30
        while any(p.poll() is None for _, _, p in procs):
            self.sample()
            if time.monotonic() > deadline:
                for _, _, p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(5)
        result = {"phase": index, "name": name, "fault": fault, "key_action": action,
                  "classes": {}}
        for rc, out, _ in procs:
            out.seek(0)
            text = out.read()
            out.close()
            line = next((l for l in text.splitlines() if l.startswith("SOAK ")), None)
            if line is None:
                raise SystemExit(f"wrk for {rc.name} gave no counts:\n{text}")
            counts = json.loads(line[5:])
            statuses = {int(k): v for k, v in counts["statuses"].items()}
            result["classes"][rc.name] = {
                "expected": rc.expected,
                "statuses": statuses,
                "wrong": sum(v for k, v in statuses.items() if k != rc.expected),
                "errors": counts["errors"],
            }
        self.fault("none")
        result["jira"] = self.check_jira(classes)
        stats_after = self.envoy.stats()
        prefix = "wasmcustom.jira_entra_guard_"
        result["filter"] = {
            k.removeprefix(prefix): stats_after[k] - stats_before.get(k, 0)
            for k in stats_after
            if k.startswith(prefix) and "_total" in k and stats_after[k] != stats_before.get(k, 0)
        }
        return result

    def check_jira(self, classes: list[RequestClass]) -> dict:
        """Everything that reached the Jira stand-in was an allowed call, with the identity of
        its client and without the Entra token."""
        allowed = {(c.client, c.method, c.path) for rc in classes if rc.expected == 200 for c in rc.calls}
        requests = self.jira.requests()
        self.jira.reset()
        bad = 0
        for r in requests:
            headers = {}
            for name, value in r["headers"]:
                headers.setdefault(name, []).append(value)
            client = headers.get("x-jira-client", [None])
            auth = headers.get("authorization", [])
            ok = (len(client) == 1 and (client[0], r["method"], r["path"]) in allowed
                  and all("eyJ" not in v for vs in headers.values() for v in vs)
                  and auth == ([PAT_LEGACY_SYNC] if client[0] == "legacy-sync" else []))
            if not ok:
                bad += 1
                if len(self.jira_violations) < 20:
                    self.jira_violations.append(json.dumps(r)[:400])
        return {"requests": len(requests), "not_allowed": bad}

    # --- summary ---------------------------------------------------------------------------

    def fetches_per_minute(self) -> dict[str, dict]:
        out = {}
        bound = (math.ceil(60 / REFRESH_SECONDS) + math.ceil(60 / MIN_REFETCH_SECONDS)
                 + RETRIES_PER_MINUTE)
        for tenant in TENANTS:
            samples = [(t, c[tenant]) for t, c in self.fetch_samples]
            worst = 0
            for i, (t0, c0) in enumerate(samples):
                for t1, c1 in samples[i:]:
                    if t1 - t0 <= 60:
                        worst = max(worst, c1 - c0)
            minutes = max((samples[-1][0] - samples[0][0]) / 60, 1e-9) if samples else 1
            total = samples[-1][1] - samples[0][1] if samples else 0
            out[tenant] = {"worst_60s": worst, "mean_per_minute": round(total / minutes, 1),
                           "bound": bound}
        return out

    def rss(self) -> dict:
        if not self.rss_samples:
            return {}
        half = self.rss_samples[len(self.rss_samples) // 2:]
        slope = 0.0
        if len(half) >= 2:
            mt = sum(t for t, _ in half) / len(half)
            mr = sum(r for _, r in half) / len(half)
            var = sum((t - mt) ** 2 for t, _ in half)
            slope = sum((t - mt) * (r - mr) for t, r in half) / var * 60 if var else 0.0
        return {"first_mib": round(self.rss_samples[0][1], 1),
                "last_mib": round(self.rss_samples[-1][1], 1),
                "max_mib": round(max(r for _, r in self.rss_samples), 1),
                "slope_second_half_mib_per_min": round(slope, 3)}

    def summary(self) -> tuple[str, bool]:
        lines = []
        totals: dict[tuple[str, int], dict[int, int]] = {}
        wrong_total = five_xx = timeouts = not_allowed = 0
        lines.append(f"{'phase':<18}{'fault':<12}{'requests':>10}{'wrong':>7}{'5xx':>6}"
                     f"{'to Jira':>9}{'not allowed':>13}")
        for r in self.phase_results:
            n = wrong = fx = 0
            for name, c in r["classes"].items():
                bucket = totals.setdefault((name, c["expected"]), {})
                for status, v in c["statuses"].items():
                    bucket[status] = bucket.get(status, 0) + v
                    n += v
                    if status >= 500:
                        fx += v
                wrong += c["wrong"]
                timeouts += c["errors"].get("timeout", 0)
            wrong_total += wrong
            five_xx += fx
            not_allowed += r["jira"]["not_allowed"]
            lines.append(f"{r['phase']:>2} {r['name']:<15}{r['fault']:<12}{n:>10}{wrong:>7}{fx:>6}"
                         f"{r['jira']['requests']:>9}{r['jira']['not_allowed']:>13}")
        lines.append("")
        lines.append("requests by class: expected status -> actual statuses")
        grand = 0
        for (name, expected), statuses in totals.items():
            grand += sum(statuses.values())
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
            lines.append(f"  {name:<12} {expected} -> {shown}")
        lines.append(f"  total {grand} requests in {len(self.phase_results)} phases, "
                     f"{wrong_total} wrong decisions, {five_xx} 5xx, {timeouts} timeouts")
        lines.append("")
        fetches = self.fetches_per_minute()
        over = False
        for tenant, f in fetches.items():
            over |= f["worst_60s"] > f["bound"]
            lines.append(f"key fetches, tenant {tenant[:8]}: worst 60 s {f['worst_60s']}, mean "
                         f"{f['mean_per_minute']}/min, bound {f['bound']}/min")
        rss = self.rss()
        if rss:
            lines.append(f"envoy RSS: first {rss['first_mib']} MiB, last {rss['last_mib']} MiB, max "
                         f"{rss['max_mib']} MiB, slope over the second half "
                         f"{rss['slope_second_half_mib_per_min']:+} MiB/min")
        for v in self.jira_violations:
            lines.append(f"reached Jira without being allowed: {v}")
        ok = wrong_total == 0 and five_xx == 0 and not_allowed == 0 and timeouts == 0 and not over
        lines.append("")
        lines.append("SOAK PASSED" if ok else "SOAK FAILED")
        return "\n".join(lines), ok

    def run(self) -> int:
        self.start()
        try:
            phases = max(1, self.args.duration // self.args.phase_seconds)
            self.sample()
            for index in range(phases):
                name, fault, action, flood = PHASES[index % len(PHASES)]
                print(f"phase {index + 1}/{phases}: {name} (key server: {fault}) for "
                      f"{self.args.phase_seconds}s", flush=True)
                result = self.run_phase(index + 1, name, fault, action, flood, self.args.phase_seconds)
                self.phase_results.append(result)
                wrong = sum(c["wrong"] for c in result["classes"].values())
                counts = {n: c["statuses"] for n, c in result["classes"].items()}
                print(f"  {json.dumps(counts)} wrong={wrong} jira={result['jira']}", flush=True)
            self.sample()
            text, ok = self.summary()
            report = self.workdir / "soak-result.json"
            report.write_text(json.dumps({
                "phases": self.phase_results, "fetches_per_minute": self.fetches_per_minute(),
                "rss": self.rss(), "rss_samples": self.rss_samples,
            }, indent=1, default=str))
            print()
            print(text)
            print(f"\ndetails: {report}; logs in {self.workdir}")
            return 0 if ok else 1
        finally:
            self.fault_safe()
            self.stop()

    def fault_safe(self) -> None:
        try:
            self.fault("none")
        except Exception:  # the emulator may already be gone
            pass


LUA_TEMPLATE = r"""
-- One request class: cycles through its calls and counts the statuses it gets.
local specs = {
--SPECS--
}
local requests = {}
local cap = --CAP--
local seen = 0
statuses = {}

function init(args)
  for i, spec in ipairs(specs) do
    requests[i] = wrk.format(spec[1], spec[2], spec[3])
  end
end

local delay_ms = --DELAY--
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local next_index = 0
function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  seen = seen + 1
  if seen >= cap then
    wrk.thread:stop()
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local parts = {}
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK {"statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    table.concat(parts, ", "), e.connect, e.read, e.write, e.timeout))
end
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SOAK_SECONDS", 240)),
                        help="seconds of load in all (default %(default)s, or $SOAK_SECONDS)")
    parser.add_argument("--phase-seconds", type=int, default=30,
                        help="length of one phase (default %(default)s)")
    parser.add_argument("--connections", type=int, default=4,
                        help="connections of the valid-call wrk; other classes scale from it")
    parser.add_argument("--rate", type=int, default=150,
                        help="requests per second of each refused class, four times that for "
                             "unknown-kid floods (default %(default)s); valid calls go as fast as "
                             "the Jira stand-in answers")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="most requests one wrk sends in one phase (default %(default)s)")
    args = parser.parse_args()
    if args.phase_seconds < 2 * REFRESH_SECONDS:
        parser.error(f"--phase-seconds must be at least {2 * REFRESH_SECONDS}: a published key "
                     "must reach the filter within the phase before it is used")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (scripts/soak.sh installs it)")
    if not s.WASM.exists():
        parser.error(f"{s.WASM} is missing: run scripts/build.sh")
    return Soak(args).run()


if __name__ == "__main__":
    sys.exit(main())
