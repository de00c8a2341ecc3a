#!/usr/bin/env python3
"""Draws docs/observability.svg, the README's picture of what the dashboard panels and the key
alerts show, from real data: the local stack (Envoy with the built filter, the Entra ID emulator,
the Jira stand-in) takes about a minute of traffic — steady clients, a burst of forged tokens, a
ten-second key-server outage — while a real Prometheus scrapes Envoy every second and evaluates
the shipped alert rules at the end-to-end test's time scale (tests/e2e/prometheus_server.py,
SECONDS_TIME_SCALE). The picture is Prometheus's answers to range queries, drawn as SVG by this
script (no plotting library).

    .venv/bin/python scripts/observability-picture.py [docs/observability.svg]
"""

from __future__ import annotations

import sys
import threading
import time
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import prometheus_server as ps  # noqa: E402
import stack as s  # noqa: E402

# Scenario, in seconds from the start of the traffic.
FORGED_BURST = (15, 25)
OUTAGE = (35, 45)
DURATION = 70
STEP = 1
COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]
COLOR_OF = {"allowed": "#2ca02c", "success": "#2ca02c", "denied": "#d62728", "failure": "#d62728"}


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def forged(token: str) -> str:
    head, _, signature = token.rpartition(".")
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1:]}"


def run_traffic(envoy: s.Envoy, emulator: s.Emulator, start: float, stop: threading.Event):
    """About ten requests a second: mostly allowed, a few without a token or outside the ACL;
    forged tokens during FORGED_BURST; the key server fails during OUTAGE."""
    good = emulator.token("reporting-bot")
    intruder = emulator.token("intruder")
    n = 0
    outage_on = False
    while not stop.is_set():
        t = time.monotonic() - start
        if OUTAGE[0] <= t < OUTAGE[1] and not outage_on:
            emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "status:503"})
            outage_on = True
        elif t >= OUTAGE[1] and outage_on:
            emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "none"})
            outage_on = False
        n += 1
        if FORGED_BURST[0] <= t < FORGED_BURST[1] and n % 2 == 0:
            headers = bearer(forged(good))
        elif n % 10 == 0:
            headers = None
        elif n % 25 == 0:
            headers = bearer(intruder)
        else:
            headers = bearer(good)
        s.raw_request(envoy.port, "GET", "/rest/api/2/myself", headers)
        time.sleep(0.1)
    if outage_on:
        emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "none"})


def collect() -> dict:
    workdir = s.new_workdir()
    emulator = s.start_emulator(workdir)
    jira = s.start_jira(workdir)
    envoy = prometheus = None
    try:
        envoy = s.start_envoy(workdir, emulator.port, jira.port,
                              plugin_config=ps.refreshed_every_second(s.shipped_plugin_config()))
        prometheus = ps.start_prometheus(workdir, [envoy.admin_port],
                                         rules=ps.rules_with(ps.SECONDS_TIME_SCALE))
        while not prometheus.scraped():
            time.sleep(0.2)
        start_wall, start = time.time(), time.monotonic()
        stop = threading.Event()
        worker = threading.Thread(target=run_traffic, args=(envoy, emulator, start, stop))
        worker.start()
        time.sleep(DURATION)
        stop.set()
        worker.join()
        time.sleep(2)  # the last scrape and evaluation

        def rng(expr):
            return prometheus.query_range(expr, start_wall, start_wall + DURATION, STEP)

        return {
            "start": start_wall,
            "decisions": {"allowed": rng("sum(rate(jira_entra_guard_allowed_total[5s]))"),
                          "denied": rng("sum(rate(jira_entra_guard_denied_total[5s]))")},
            "causes": rng("sum by (cause) (rate(jira_entra_guard_invalid_token_total[5s]))"),
            "age": rng(f'jira_entra_guard_key_set_age_seconds{{tenant="{s.TENANT}"}}'),
            "fetches": rng("sum by (outcome) (increase(jira_entra_guard_key_fetch_total[5s]))"),
            "alerts": rng('ALERTS{alertname=~"JiraEntraGuard.*"}'),
        }
    finally:
        if prometheus:
            prometheus.stop()
        if envoy:
            envoy.process.stop()
        emulator.process.stop()
        jira.process.stop()


def points(series: dict, start: float) -> list[tuple[float, float]]:
    return [(float(t) - start, float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf")]


class Svg:
    WIDTH = 900
    LEFT = 70
    RIGHT = 270
    PANEL = 120
    GAP = 46

    def __init__(self, title: str):
        self.parts: list[str] = []
        self.y = 50
        self.title = title

    def x(self, t: float) -> float:
        return self.LEFT + t / DURATION * (self.WIDTH - self.LEFT - self.RIGHT)

    def text(self, x, y, content, size=12, anchor="start", weight="normal", color="#222"):
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'font-weight="{weight}" fill="{color}">{escape(content)}</text>')

    def shade(self, span, label):
        """A grey band over the whole height, for a phase of the scenario (drawn in `finish`)."""
        self.parts.append(("shade", span, label))

    def panel(self, title: str, lines: list[tuple[str, list[tuple[float, float]]]], unit: str):
        top, bottom = self.y + 18, self.y + 18 + self.PANEL
        self.text(self.LEFT, self.y + 10, f"{title} ({unit})", 13, weight="bold")
        peak = max([v for _, pts in lines for _, v in pts] + [1e-9])
        ymax = nice(peak)
        right = self.WIDTH - self.RIGHT
        self.parts.append(f'<rect x="{self.LEFT}" y="{top}" width="{right - self.LEFT}" '
                          f'height="{self.PANEL}" fill="none" stroke="#bbb"/>')
        for frac in (0, 0.5, 1):
            yy = bottom - frac * self.PANEL
            self.parts.append(f'<line x1="{self.LEFT}" y1="{yy:.1f}" x2="{right}" y2="{yy:.1f}" '
                              f'stroke="#eee"/>')
            self.text(self.LEFT - 6, yy + 4, f"{ymax * frac:g}", 11, "end", color="#555")
        for i, (label, pts) in enumerate(lines):
            color = COLOR_OF.get(label, COLORS[i % len(COLORS)])
            if pts:
                coords = " ".join(f"{self.x(t):.1f},{bottom - v / ymax * self.PANEL:.1f}"
                                  for t, v in pts)
                self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                                  f'stroke-width="1.8"/>')
            self.text(right + 12, top + 14 + i * 16, f"— {label}", 12, color=color)
        self.y = bottom + self.GAP

    def alerts(self, rows: list[tuple[str, list[tuple[float, float, str]]]]):
        self.text(self.LEFT, self.y + 10, "Alerts (Prometheus ALERTS series)", 13, weight="bold")
        top = self.y + 20
        for i, (name, spans) in enumerate(rows):
            yy = top + i * 24
            self.text(self.WIDTH - self.RIGHT + 12, yy + 14, name, 12)
            self.parts.append(f'<rect x="{self.LEFT}" y="{yy}" width="{self.WIDTH - self.RIGHT - self.LEFT}" '
                              f'height="18" fill="#f6f6f6"/>')
            for t0, t1, state in spans:
                color = "#d62728" if state == "firing" else "#ffbf00"
                self.parts.append(f'<rect x="{self.x(t0):.1f}" y="{yy}" '
                                  f'width="{max(self.x(t1) - self.x(t0), 1):.1f}" height="18" fill="{color}"/>')
        legend_y = top + len(rows) * 24 + 12
        self.parts.append(f'<rect x="{self.LEFT}" y="{legend_y - 9}" width="10" height="10" fill="#ffbf00"/>')
        self.text(self.LEFT + 14, legend_y, "pending", 11)
        self.parts.append(f'<rect x="{self.LEFT + 80}" y="{legend_y - 9}" width="10" height="10" fill="#d62728"/>')
        self.text(self.LEFT + 94, legend_y, "firing", 11)
        self.y = legend_y + 24

    def axis(self):
        for t in range(0, DURATION + 1, 10):
            self.text(self.x(t), self.y - 4, f"{t}s", 11, "middle", color="#555")

    def note(self, content: str):
        self.text(self.LEFT, self.y + 14, content, 11, color="#555")
        self.y += 16

    def finish(self) -> str:
        body, bands = [], []
        for part in self.parts:
            if isinstance(part, tuple):
                _, (t0, t1), label = part
                bands.append(f'<rect x="{self.x(t0):.1f}" y="40" width="{self.x(t1) - self.x(t0):.1f}" '
                             f'height="{self.y - 60}" fill="#999" opacity="0.12"/>')
                bands.append(f'<text x="{(self.x(t0) + self.x(t1)) / 2:.1f}" y="36" font-size="11" '
                             f'text-anchor="middle" fill="#555">{escape(label)}</text>')
            else:
                body.append(part)
        height = self.y + 10
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.WIDTH}" height="{height}" '
                f'viewBox="0 0 {self.WIDTH} {height}" font-family="Helvetica, Arial, sans-serif">'
                f'<rect width="100%" height="100%" fill="white"/>')
        title = f'<text x="{self.LEFT}" y="20" font-size="15" font-weight="bold">{escape(self.title)}</text>'
        return "\n".join([head, title, *bands, *body, "</svg>\n"])


def nice(peak: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `peak`: the axis top."""
    steps = sorted(b * 10 ** e for b in (1, 2, 5) for e in range(-2, 7))
    return next((c for c in steps if c >= peak), peak)


def alert_spans(result: list[dict], start: float) -> dict[str, list[tuple[float, float, str]]]:
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for series in result:
        name = series["metric"]["alertname"]
        state = series["metric"]["alertstate"]
        for t, _ in points(series, start):
            span = (max(t - STEP / 2, 0), min(t + STEP / 2, DURATION), state)
            spans.setdefault(name, []).append(span)
    return spans


def draw(data: dict) -> str:
    start = data["start"]
    svg = Svg("jira-entra-guard on the local stack: forged tokens, then a key-server outage")
    svg.shade(FORGED_BURST, "forged tokens")
    svg.shade(OUTAGE, "key server returns 503")
    svg.panel("Decisions", [(name, points(r[0], start) if r else [])
                            for name, r in data["decisions"].items()], "req/s")
    svg.panel("Invalid tokens by cause",
              [(r["metric"].get("cause", "?"), points(r, start)) for r in data["causes"]], "req/s")
    svg.panel("Key-set age, tenant " + s.TENANT[:8] + "…",
              [("age", points(r, start)) for r in data["age"]], "s")
    svg.panel("Key-set fetches, both tenants",
              [(r["metric"].get("outcome", "?"), points(r, start))
               for r in sorted(data["fetches"], key=lambda r: r["metric"].get("outcome", ""))],
              "per 5 s")
    spans = alert_spans(data["alerts"], start)
    names = sorted(set(spans) | set(ps.SECONDS_TIME_SCALE))
    svg.alerts([(name, spans.get(name, [])) for name in names])
    svg.axis()
    svg.note("Shipped alert rules; the two key alerts at the end-to-end test's time scale (key sets")
    svg.note("refreshed every second; stale: age > 5 s; failing: a 15 s window; for: 3 s).")
    return svg.finish()


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "observability.svg"
    if not s.WASM.exists():
        sys.exit(f"{s.WASM} is missing: run scripts/build.sh first")
    data = collect()
    out.write_text(draw(data))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
