"""The shipped alert rules and Grafana dashboard (deploy/observability/) against a real Prometheus
scraping a real Envoy's `/stats/prometheus` while the local stack takes traffic: the series carry
the documented names, types and labels, every dashboard query returns data, and the alerts go
pending, fire and resolve around a key-server outage.

What the test changes, and why (everything else is the shipped file, loaded as is):
- the filter's key sets are refreshed every second (`refresh_seconds: 1`, shipped default 3600)
  so that an outage is noticed at once, and `ci-pipeline` runs in dry-run (`mode: audit`) so
  that dry-run denials exist;
- Prometheus scrapes and evaluates every second;
- two alerts are rewritten to the test's time scale, each replacement checked to occur exactly
  once (`prometheus_server.rules_with`); what and why: `prometheus_server.SECONDS_TIME_SCALE`.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import yaml

import prometheus_server as ps
import stack as s

OUTAGE_ALERTS = set(ps.SECONDS_TIME_SCALE)

# The documented series (README, "Metrics"): name → (type, label).
DOCUMENTED = {
    "jira_entra_guard_allowed_total": ("counter", None),
    "jira_entra_guard_denied_total": ("counter", "reason"),
    "jira_entra_guard_invalid_token_total": ("counter", "cause"),
    "jira_entra_guard_dry_run_denied_total": ("counter", "reason"),
    "jira_entra_guard_key_fetch_total": ("counter", "outcome"),
    "jira_entra_guard_token_cache_total": ("counter", "result"),
    "jira_entra_guard_usable_keys": ("gauge", "tenant"),
    "jira_entra_guard_key_set_age_seconds": ("gauge", "tenant"),
}


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def observed_config() -> dict:
    config = ps.refreshed_every_second(s.shipped_plugin_config())
    next(c for c in config["clients"] if c["name"] == "ci-pipeline")["mode"] = "audit"
    return config


def forged(token: str) -> str:
    """The token with one character in the middle of its signature changed."""
    head, _, signature = token.rpartition(".")
    i = len(signature) // 2
    return f"{head}.{signature[:i]}{'A' if signature[i] != 'A' else 'B'}{signature[i + 1:]}"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def observed(workdir, emulator, jira):
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=observed_config())
    prometheus = ps.start_prometheus(workdir, [envoy.admin_port],
                                     rules=ps.rules_with(ps.SECONDS_TIME_SCALE))
    try:
        yield envoy, prometheus
    finally:
        emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "none"})
        prometheus.stop()
        envoy.process.stop()


@pytest.fixture(scope="module")
def traffic(observed, emulator, tokens):
    """Allowed, denied, invalid and dry-run requests, in two rounds with a scrape between them:
    a counter appears at its first count, and Prometheus sees an increase only from a scrape
    that already had the series."""
    envoy, prometheus = observed
    wait_until(prometheus.scraped, 30, "Prometheus to scrape Envoy")
    good = tokens.flow("reporting-bot")
    expired = emulator.token("reporting-bot", overrides={"exp": 1_600_000_000,
                                                         "nbf": 1_599_990_000,
                                                         "iat": 1_599_990_000})
    unknown_key = emulator.sign({}, claims_of(good), key="attacker")
    requests = [
        ("GET", "/rest/api/2/myself", bearer(good), 200),
        ("GET", "/rest/api/2/myself", bearer(good), 200),
        ("GET", "/rest/api/2/myself", None, 401),
        ("GET", "/rest/api/2/serverInfo", bearer(good), 403),
        ("GET", "/rest/api/2/myself", bearer(expired), 401),
        ("GET", "/rest/api/2/myself", bearer(forged(good)), 401),
        # Signed by a key the tenant never published: unknown_key (after one refetch).
        ("GET", "/rest/api/2/myself", bearer(unknown_key), 401),
        ("GET", "/rest/api/2/myself", bearer(tokens.flow("intruder")), 403),
        ("GET", "/rest/api/2/..", bearer(good), 400),
        # ci-pipeline is in dry-run: the denied DELETE reaches the Jira stand-in.
        ("DELETE", "/rest/api/2/issue/OPS-1", bearer(tokens.flow("ci-pipeline")), None),
    ]
    for round_ in range(2):
        for method, path, headers, want in requests:
            status = s.raw_request(envoy.port, method, path, headers)[0]
            if want is not None:
                assert status == want, (method, path, status)
            else:
                assert status not in (401, 403), "dry-run lets the request through"
        if round_ == 0:
            # The counters now exist; the second round is what the rate windows see.
            wait_until(lambda: prometheus.query(
                'jira_entra_guard_dry_run_denied_total{reason="acl"}'), 15,
                "the first round's counters in Prometheus")
            time.sleep(1.5)
    wait_until(lambda: [r for r in prometheus.query(
        'jira_entra_guard_dry_run_denied_total{reason="acl"}') if r["value"][1] == "2"], 15,
        "the second round's counters in Prometheus")
    return envoy, prometheus


def test_series_carry_the_documented_names_types_and_labels(traffic):
    envoy, prometheus = traffic
    instance = f"127.0.0.1:{envoy.admin_port}"
    for name, (kind, label) in DOCUMENTED.items():
        result = prometheus.query(name)
        assert result, f"{name} is not in Prometheus"
        for sample in result:
            want = {"__name__", "job", "instance"} | ({label} if label else set())
            assert set(sample["metric"]) == want, sample["metric"]
            assert sample["metric"]["job"] == ps.JOB
            assert sample["metric"]["instance"] == instance
        metadata = prometheus.api("metadata", metric=name)
        assert [m["type"] for m in metadata[name]] == [kind], metadata

    def values(expr):
        return {tuple(sorted((k, v) for k, v in r["metric"].items()
                             if k not in ("__name__", "job", "instance"))): float(r["value"][1])
                for r in prometheus.query(expr)}

    assert values("jira_entra_guard_allowed_total")[()] >= 4
    denied = values("jira_entra_guard_denied_total")
    for reason in ("no_token", "acl", "unknown_client", "refused_request"):
        assert denied[(("reason", reason),)] == 2, (reason, denied)
    assert denied[(("reason", "invalid_token"),)] == 6, "expired, forged, unknown key; twice"
    invalid = values("jira_entra_guard_invalid_token_total")
    for cause in ("expired", "bad_signature", "unknown_key"):
        assert invalid[(("cause", cause),)] == 2, (cause, invalid)
    dry_run = values("jira_entra_guard_dry_run_denied_total")
    assert {labels: n for labels, n in dry_run.items() if n} == {(("reason", "acl"),): 2}
    assert dry_run[(("reason", "token_in_query"),)] == 0, "every reason's series exists from the start"
    assert values('jira_entra_guard_key_fetch_total{outcome="success"}')
    cache = values("jira_entra_guard_token_cache_total")
    assert cache[(("result", "hit"),)] >= 1 and cache[(("result", "miss"),)] >= 1
    for tenant in (s.TENANT, s.OTHER_TENANT):
        assert values("jira_entra_guard_usable_keys")[(("tenant", tenant),)] == 2
        assert values("jira_entra_guard_key_set_age_seconds")[(("tenant", tenant),)] <= 5


def test_every_dashboard_query_returns_data(traffic):
    _, prometheus = traffic
    queries = ps.dashboard_queries(rate_interval="1m")
    assert len(queries) >= 8
    empty = [(title, expr) for title, expr in queries if not prometheus.query(expr)]
    assert empty == []
    # The job variable's own query lists this job.
    assert prometheus.api("label/job/values", **{"match[]": "jira_entra_guard_allowed_total"}) == [ps.JOB]


def test_shipped_alerts_match_the_traffic_before_the_outage(traffic):
    """Healthy keys: no key-set alert; the dry-run denials of ci-pipeline raise the (shipped,
    unchanged) dry-run alert; the few refusals stay under the other thresholds."""
    _, prometheus = traffic
    firing = wait_until(lambda: {a["labels"]["alertname"] for a in prometheus.alerts()
                                 if a["state"] == "firing"}, 15, "the dry-run alert")
    time.sleep(2)  # a couple more evaluations: nothing else joins
    active = {a["labels"]["alertname"]: a for a in prometheus.alerts()}
    assert set(active) == {"JiraEntraGuardDryRunDenials"}, active
    assert firing == {"JiraEntraGuardDryRunDenials"}
    assert active["JiraEntraGuardDryRunDenials"]["labels"]["reason"] == "acl"


def test_key_alerts_fire_during_a_key_server_outage_and_resolve_after(traffic, emulator, tokens):
    envoy, prometheus = traffic
    good = tokens.flow("reporting-bot")
    states: dict[str, set[str]] = {name: set() for name in OUTAGE_ALERTS}

    def outage_alerts():
        active = {}
        for alert in prometheus.alerts():
            name = alert["labels"]["alertname"]
            if name in OUTAGE_ALERTS:
                states[name].add(alert["state"])
                active[name] = alert
        return active

    assert outage_alerts() == {}
    emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "status:503"})
    try:
        firing = wait_until(
            lambda: (lambda a: a if {n for n, x in a.items() if x["state"] == "firing"}
                     == OUTAGE_ALERTS else None)(outage_alerts()),
            45, "both key alerts to fire")
        # The last good key set is still in use: the outage costs users nothing yet.
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself", bearer(good))[0] == 200
    finally:
        emulator.control("faults", {"tenant_id": s.TENANT, "jwks": "none"})
    assert firing["JiraEntraGuardKeySetStale"]["labels"]["tenant"] == s.TENANT
    assert firing["JiraEntraGuardKeyFetchesFailing"]["labels"]["outcome"] == "failure"
    assert all("pending" in seen for seen in states.values()), states
    wait_until(lambda: outage_alerts() == {}, 60, "both key alerts to resolve")
    age = prometheus.query(f'jira_entra_guard_key_set_age_seconds{{tenant="{s.TENANT}"}}')
    assert float(age[0]["value"][1]) <= 5


def test_every_alert_has_a_firing_and_a_quiet_unit_test_and_a_runbook_row():
    """What `promtool test rules` cannot check about itself: that no alert is left untested, and
    that every runbook link leads to a row about that alert."""
    rules = yaml.safe_load(ps.ALERT_RULES.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    unit = yaml.safe_load((ps.OBSERVABILITY / "alerts.test.yaml").read_text())
    cases: dict[str, list[bool]] = {name: [] for name in alerts}
    for group in unit["tests"]:
        for case in group.get("alert_rule_test", []):
            cases[case["alertname"]].append(bool(case["exp_alerts"]))
    readme = (s.ROOT / "README.md").read_text()
    runbooks = readme.split("### When an alert fires", 1)[1].split("\n## ", 1)[0]
    for name, rule in alerts.items():
        assert True in cases[name] and False in cases[name], f"{name}: {cases[name]}"
        assert rule["annotations"]["runbook_url"] == "README.md#when-an-alert-fires"
        assert f"`{name}`" in runbooks, f"{name} has no row in 'When an alert fires'"
        assert f"`{name}`" in readme.split("### Alerts and dashboards", 1)[1], name
