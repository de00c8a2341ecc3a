#!/usr/bin/env python3
"""What Envoy charges a proxy-wasm filter per host operation, measured side by side.

`bench/host-cost-probe` does what the `wasm-noop` baseline does (read `Authorization`, continue)
and then repeats one host operation N times per request. Each probe runs in its own Envoy
(one worker, the benchmark's listener and `direct_response` upstream), driven by wrk in
alternating rounds, like `run_bench.py`. Per round, the time per request of every probe is
compared with the probe that repeats nothing; the median over rounds, divided by N, is the
price of one operation. The same run measures `wasm-noop` and jira-entra-guard (warm: one token
reused) and `jwt_authn`+`rbac` with its cache, as in the benchmark and with the same header
work as the filter, against the same baseline, and prints the time budget that "warm >= 0.95x
wasm-noop" leaves, next to the host operations the filter cannot do without.

Every probe's route table starts with a route that matches only requests carrying `x-probe: 1`:
the `set_header` probe is answered by it, which shows that Envoy selects the route again after a
filter changes the request headers.

Run it with `scripts/bench.sh --host-costs`; results go to bench/results/host-costs.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import envoy_configs as ec  # noqa: E402
import run_bench as rb  # noqa: E402
from run_bench import log, stack  # noqa: E402

PROBE_WASM = (BENCH / "host-cost-probe" / "target" / "wasm32-wasip1" / "release"
              / "bench_host_cost_probe.wasm")
RESULTS = BENCH / "results"
REROUTED_BODY = "rerouted by x-probe"

BASELINE = "probe: none"
# (row name, probe configuration, operations per request beyond the baseline's)
PROBES = [
    (BASELINE, "none", 0),
    ("probe: read_header x10", "read_header 10", 10),
    ("probe: read_absent x10", "read_absent 10", 10),
    ("probe: read_all x10", "read_all 10", 10),
    ("probe: time x10", "time 10", 10),
    ("probe: set_header x1", "set_header 1", 1),
    ("probe: set_header x11", "set_header 11", 11),
]
NOOP = rb.NOOP
GUARD = rb.GUARD
JWT_CACHE = rb.JWT_CACHE
JWT_EQUAL = "jwt_authn+rbac (cache, identity headers, route selected again)"
WHAT = {
    "read_header": "read one header value (Envoy calls into the VM to allocate the copy)",
    "read_absent": "look up a header the request lacks (nothing is copied)",
    "read_all": "read the whole request header map",
    "time": "read the host's clock",
    "set_header (first)": "first change of the request headers (route cache cleared, route "
                          "selected again)",
    "set_header (more)": "each further change of the same request's headers",
}


def with_probe_route(config: dict) -> dict:
    """Puts the `x-probe: 1` route before the benchmark's catch-all route."""
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhost = hcm["typed_config"]["route_config"]["virtual_hosts"][0]
    vhost["routes"].insert(0, {
        "match": {"prefix": "/", "headers": [
            {"name": "x-probe", "string_match": {"exact": "1"}}]},
        "direct_response": {"status": 200, "body": {"inline_string": REROUTED_BODY}},
    })
    return config


def body_of(envoy, token: str) -> str:
    request = urllib.request.Request(f"{envoy.url}{rb.PATH}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def measure(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="jira-entra-guard-host-costs-"))
    envoys = rb.Envoys(workdir)
    try:
        return _measure(args, workdir, envoys)
    finally:
        envoys.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _measure(args, workdir: Path, envoys: rb.Envoys) -> dict:
    for path in (PROBE_WASM, rb.NOOP_WASM, rb.GUARD_WASM):
        if not path.is_file():
            raise RuntimeError(f"{path} is missing: build it with scripts/bench.sh --host-costs")
    info = rb.machine()
    log(f"machine: {info['nproc']} CPUs ({info['cpu_model']}), Envoy {info['envoy']}, "
        f"{info['date']}")
    emulator = stack.start_emulator(workdir)
    envoys.others.append(emulator.process)
    plugin = stack.shipped_plugin_config()
    shipped_filter = stack._wasm_filter(stack.shipped_envoy_config())
    allocator = stack.shipped_envoy_config().get("memory_allocator_manager")
    warm_token, = rb.mint(emulator, 1)
    warm_file = rb.write_tokens(workdir / "tokens-warm.txt", [warm_token])
    jwks = {}
    for tenant in plugin["tenants"]:
        tid = tenant["tenant_id"]
        with stack.urlopen(f"{emulator.url}/{tid}/discovery/v2.0/keys", timeout=10) as r:
            jwks[tid] = r.read().decode()

    def make(filters, **extra):
        def config(port, admin_port):
            return with_probe_route(ec.base_config(
                port, admin_port, filters, memory_allocator_manager=allocator,
                entra_transport_socket=stack.entra_transport_socket(), **extra))
        return config

    configs = {name: make([ec.host_cost_probe_filter(str(PROBE_WASM), probe)])
               for name, probe, _ in PROBES}
    configs[NOOP] = make([ec.wasm_noop_filter(str(rb.NOOP_WASM))])
    configs[GUARD] = make([ec.guard_filter(shipped_filter, str(rb.GUARD_WASM),
                                           {**plugin, "audit_log": "denials"})],
                          entra_port=emulator.port)
    for name, identity in ((JWT_CACHE, False), (JWT_EQUAL, True)):
        configs[name] = make([ec.jwt_authn_filter(plugin, jwks, cache=True,
                                                  identity_headers=identity),
                              ec.rbac_filter(plugin, rb.CLIENT)])
    started = {}
    for name, make_config in configs.items():
        envoy = envoys.start(name, make_config)
        rb.wait_until_allowed(envoy, warm_token)
        started[name] = envoy
    rerouted = {name: body_of(started[name], warm_token) == REROUTED_BODY
                for name in (BASELINE, "probe: set_header x1")}
    log(f"route selected again after a header change: set_header probe "
        f"{'yes' if rerouted['probe: set_header x1'] else 'NO'}, baseline "
        f"{'yes' if rerouted[BASELINE] else 'no'}")

    names = list(configs)
    runs = {name: [] for name in names}
    log(f"{args.rounds} rounds of {args.duration} s per configuration, order rotated each round")
    for rnd in range(args.rounds):
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            run = rb.run_wrk(started[name], warm_file, args.duration, args.connections)
            if run["non_2xx"] or sum(run["socket_errors"].values()):
                raise RuntimeError(f"{name}: {run['non_2xx']} non-2xx responses, "
                                   f"socket errors {run['socket_errors']}")
            runs[name].append(run)
        log(f"[round {rnd + 1}/{args.rounds}] " + ", ".join(
            f"{name} {runs[name][-1]['rps']:.0f}" for name in names))

    def us_per_request(name: str, rnd: int) -> float:
        return 1e6 / runs[name][rnd]["rps"]

    def extra_us(name: str) -> float:
        """Median over rounds of this configuration's time per request minus the baseline's."""
        return statistics.median(us_per_request(name, r) - us_per_request(BASELINE, r)
                                 for r in range(args.rounds))

    rows = []
    for name in names:
        count = next((n for row, _, n in PROBES if row == name), None)
        extra = extra_us(name)
        rows.append({
            "config": name,
            "rps_median": statistics.median(r["rps"] for r in runs[name]),
            "us_per_request_median": statistics.median(
                us_per_request(name, r) for r in range(args.rounds)),
            "extra_us_per_request": extra,
            "us_per_operation": extra / count if count else None,
        })
    set_one, set_eleven = extra_us("probe: set_header x1"), extra_us("probe: set_header x11")
    per_op = {
        "read_header": extra_us("probe: read_header x10") / 10,
        "read_absent": extra_us("probe: read_absent x10") / 10,
        "read_all": extra_us("probe: read_all x10") / 10,
        "time": extra_us("probe: time x10") / 10,
        "set_header (first)": set_one,
        "set_header (more)": (set_eleven - set_one) / 10,
    }
    def throughput_ratio(name: str, other: str) -> float:
        """Median over rounds of `name`'s req/s over `other`'s (same round)."""
        return statistics.median(runs[name][r]["rps"] / runs[other][r]["rps"]
                                 for r in range(args.rounds))

    noop_us = statistics.median(us_per_request(NOOP, r) for r in range(args.rounds))
    budget = noop_us * (1 / 0.95 - 1)
    # The filter reads the whole header map where the baseline reads one value, reads the clock
    # once and changes the request headers (token removed, identity set).
    floor = (per_op["read_all"] - per_op["read_header"]) + per_op["time"] \
        + per_op["set_header (first)"]
    return {
        "machine": info,
        "settings": {"rounds": args.rounds, "duration_s": args.duration,
                     "connections": args.connections},
        "rerouted_after_header_change": rerouted,
        "rows": rows,
        "per_operation_us": per_op,
        "noop_us_per_request": noop_us,
        "budget_us_for_0_95_noop": budget,
        "filter_host_floor_us": floor,
        "filter_extra_us": extra_us(GUARD) - extra_us(NOOP),
        "warm_ratios": {
            "jira-entra-guard / wasm-noop": throughput_ratio(GUARD, NOOP),
            f"jira-entra-guard / {JWT_CACHE}": throughput_ratio(GUARD, JWT_CACHE),
            f"jira-entra-guard / {JWT_EQUAL}": throughput_ratio(GUARD, JWT_EQUAL),
            f"{JWT_CACHE} / wasm-noop": throughput_ratio(JWT_CACHE, NOOP),
            f"{JWT_EQUAL} / wasm-noop": throughput_ratio(JWT_EQUAL, NOOP),
        },
    }


def report(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        "# Host costs of a proxy-wasm filter in Envoy",
        "",
        f"- Machine: {m['nproc']} CPUs, {m['cpu_model']}; Envoy {m['envoy']} (one worker, V8)",
        f"- Date: {m['date']}; {s['rounds']} rounds of {s['duration_s']} s per configuration "
        f"(`wrk -t1 -c{s['connections']}`), order rotated each round; medians of per-round "
        "differences to the baseline (`probe: none`, which does what `wasm-noop` does)",
        "",
        "| configuration | req/s (median) | µs per request | µs more than the baseline "
        "| µs per operation |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        per = row["us_per_operation"]
        lines.append(f"| {row['config']} | {row['rps_median']:.0f} | "
                     f"{row['us_per_request_median']:.1f} | {row['extra_us_per_request']:+.2f} | "
                     f"{'-' if per is None else format(per, '.2f')} |")
    lines += ["", "| host operation | µs | what it is |", "|---|---:|---|"]
    for op, us in result["per_operation_us"].items():
        lines.append(f"| {op} | {us:.2f} | {WHAT[op]} |")
    r = result["rerouted_after_header_change"]
    lines += [
        "",
        f"Route selected again after the filter changed the request headers: "
        f"{'yes' if r['probe: set_header x1'] else 'no'} (the `set_header` probe's request was "
        f"answered by the `x-probe: 1` route; the baseline's was "
        f"{'also' if r[BASELINE] else 'not'}).",
        "",
        f"Time per request through `wasm-noop`: {result['noop_us_per_request']:.1f} µs, so "
        f"\"warm >= 0.95x wasm-noop\" leaves {result['budget_us_for_0_95_noop']:.2f} µs per "
        "request for everything the filter does beyond reading one header.",
        f"Host operations the filter cannot do without (the whole header map instead of one "
        f"value, the clock, one change of the request headers): "
        f"{result['filter_host_floor_us']:.2f} µs.",
        f"jira-entra-guard (warm) measured {result['filter_extra_us']:.2f} µs per request more "
        "than `wasm-noop` in this run.",
        "",
        "Warm throughput ratios (median over rounds of the per-round ratio):",
        "",
        "| ratio | median |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in result["warm_ratios"].items()]
    lines += [
        "",
        f"`{JWT_EQUAL}`: jwt_authn also copies `azp` into `x-jira-client-id` and `x-jira-client` "
        "and clears the route cache (`claim_to_headers`, `clear_route_cache`), the header work "
        "jira-entra-guard does.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if min(args.rounds, args.duration, args.connections) < 1:
        parser.error("rounds, duration and connections must be positive")
    result, status = rb.run_stoppable(measure, args, "measurement")
    if result is None:
        return status
    md = report(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "host-costs.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "host-costs.md").write_text(md)
    log("\n" + md)
    log(f"results: {RESULTS / 'host-costs.json'}, {RESULTS / 'host-costs.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
