"""A real Prometheus server next to the local stack: the Debian package's `prometheus` binary on a
free loopback port with a throw-away data directory, scraping Envoy's `/stats/prometheus` and
evaluating alert rules, and small clients of its HTTP API.

Used by tests/e2e/test_observability.py, `scripts/demo.sh --observe` and
scripts/observability-picture.py.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

import stack as s

OBSERVABILITY = s.ROOT / "deploy" / "observability"
ALERT_RULES = OBSERVABILITY / "alerts.yaml"
DASHBOARD = OBSERVABILITY / "dashboard.json"
JOB = "jira-entra-guard"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@dataclass
class Prometheus:
    process: s.Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query: the result's samples, each `{"metric": {...}, "value": [t, "v"]}`."""
        return self.api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def alerts(self) -> list[dict]:
        """Active alerts (pending or firing), each with `labels` and `state`."""
        return self.api("alerts")["alerts"]

    def scraped(self) -> bool:
        return any(r["value"][1] == "1" for r in self.query(f'up{{job="{JOB}"}}'))

    def stop(self) -> None:
        self.process.stop()


def rules_with(rewrites: dict[str, dict]) -> dict:
    """The shipped alert rules with the named alerts changed: `{"Alert": {"expr": [(old, new)],
    "for": "2s"}}`. Every `old` must occur exactly once in the alert's expression, so a change
    to the shipped rules cannot make a rewrite silently miss."""
    rules = yaml.safe_load(ALERT_RULES.read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for name, change in rewrites.items():
        rule = by_name[name]
        for old, new in change.get("expr", []):
            count = rule["expr"].count(old)
            if count != 1:
                raise ValueError(f"{name}: {old!r} occurs {count} times in {rule['expr']!r}")
            rule["expr"] = rule["expr"].replace(old, new)
        if "for" in change:
            rule["for"] = change["for"]
    return rules


# The shipped rules at a time scale of seconds instead of hours, for a key-server outage of about
# ten seconds against a filter whose key sets are refreshed every second
# (`refreshed_every_second`). Used by the end-to-end test and the README's picture.
#
# KeySetStale: the shipped threshold is 3 h of age (three missed hourly refreshes) and `for: 5m`;
# with refresh_seconds 1 the age stays under 2 s while fetches succeed, so 5 s of age is the same
# signal (several refreshes in a row have failed). `for` is shortened to 3 s: long enough that
# the pending state is seen before firing.
# KeyFetchesFailing: the shipped window is 5 minutes and `for: 10m`; the outage here lasts
# about 10 s, with retries after 1, 2, 4 and 8 s, so the window is 15 s.
SECONDS_TIME_SCALE = {
    "JiraEntraGuardKeySetStale": {"expr": [("> 10800", "> 5")], "for": "3s"},
    "JiraEntraGuardKeyFetchesFailing": {"expr": [("[5m]", "[15s]")], "for": "3s"},
}


def refreshed_every_second(plugin_config: dict) -> dict:
    """The plugin configuration with every tenant's key set refreshed every second (default:
    hourly), so that a key-server outage shows in the key-set age at once."""
    config = copy.deepcopy(plugin_config)
    for tenant in config["tenants"]:
        tenant["jwks"]["refresh_seconds"] = 1
    return config


def start_prometheus(workdir: Path, admin_ports: list[int], rules: dict | None = None,
                     interval: str = "1s") -> Prometheus:
    """Prometheus scraping the given Envoy admin ports every `interval` and evaluating `rules`
    (the shipped alert rules when None) at the same interval."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed: run scripts/setup.sh")
    port = s.free_port()
    home = Path(workdir) / f"prometheus-{port}"
    home.mkdir(parents=True)
    rules_path = home / "alerts.yaml"
    rules_path.write_text(yaml.safe_dump(rules if rules is not None
                                         else yaml.safe_load(ALERT_RULES.read_text()),
                                         sort_keys=False))
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_path)],
        "scrape_configs": [{
            "job_name": JOB,
            "metrics_path": "/stats/prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in admin_ports]}],
        }],
    }
    config_path = home / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    p = s.start_process(f"prometheus-{port}", [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ], Path(workdir))
    prometheus = Prometheus(p, port)
    s.wait_for_port(port, p.proc, f"prometheus ({p.log_path})", timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            prometheus.api("status/buildinfo")
            return prometheus
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"prometheus did not answer; log: {p.log_path}")


def dashboard_queries(rate_interval: str = "1m", job: str = ".+") -> list[tuple[str, str]]:
    """Every query of the shipped Grafana dashboard as (panel title, PromQL), with Grafana's
    variables replaced the way Grafana would: `$job` by the "All" value, `$__rate_interval` by a
    window."""
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", rate_interval).replace("$job", job)
            out.append((panel["title"], expr))
    return out
