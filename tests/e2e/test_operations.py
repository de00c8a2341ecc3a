"""Operating the filter: Envoy stats that move with decisions (and their Prometheus labels),
the audit trail in Envoy's access log, and dry-run rollouts (global and per client)."""

from __future__ import annotations

import copy
import json
import time
import urllib.request

import pytest

import stack as s


def prometheus(envoy) -> str:
    url = f"http://127.0.0.1:{envoy.admin_port}/stats/prometheus"
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def audit_lines(envoy) -> list[dict]:
    """The access-log lines of the filter's audit trail (the log also holds Envoy's own lines)."""
    out = []
    for line in envoy.process.log().splitlines():
        if line.startswith('{"time"'):
            out.append(json.loads(line))
    return out


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def wait_for_audit(envoy, request_count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = audit_lines(envoy)
        if len(lines) >= request_count:
            return lines
        time.sleep(0.1)
    return audit_lines(envoy)


@pytest.fixture(scope="module")
def ops_envoy(workdir, emulator, jira):
    e = s.start_envoy(workdir, emulator.port, jira.port)
    yield e
    e.process.stop()


def test_stats_move_with_decisions_and_carry_prometheus_labels(ops_envoy, emulator, tokens):
    before = ops_envoy.stats()
    good = tokens.flow("reporting-bot")
    expired = emulator.token("reporting-bot", overrides={"exp": 1_600_000_000, "nbf": 1_599_990_000,
                                                         "iat": 1_599_990_000})
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/myself", bearer(good))[0] == 200
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/myself", bearer(good))[0] == 200
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/myself")[0] == 401
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/serverInfo", bearer(good))[0] == 403
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/myself", bearer(expired))[0] == 401
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/..", bearer(good))[0] == 400
    assert s.raw_request(ops_envoy.port, "GET", "/rest/api/2/myself",
                         bearer(tokens.flow("intruder")))[0] == 403
    time.sleep(0.6)  # counts reach Envoy on the filter's next tick
    after = ops_envoy.stats()

    def delta(name):
        return after.get(f"wasmcustom.jira_entra_guard_{name}", 0) - before.get(
            f"wasmcustom.jira_entra_guard_{name}", 0)

    assert delta("allowed_total") == 2
    assert delta("denied_total.reason.no_token") == 1
    assert delta("denied_total.reason.acl") == 1
    assert delta("denied_total.reason.invalid_token") == 1
    assert delta("invalid_token_total.cause.expired") == 1
    assert delta("denied_total.reason.refused_request") == 1
    assert delta("denied_total.reason.unknown_client") == 1
    assert delta("token_cache_total.result.hit") >= 1
    assert delta("token_cache_total.result.miss") >= 1
    assert after[f"wasmcustom.jira_entra_guard_usable_keys.tenant.{s.TENANT}"] == 2
    assert f"wasmcustom.jira_entra_guard_key_set_age_seconds.tenant.{s.TENANT}" in after
    assert after.get("wasmcustom.jira_entra_guard_key_fetch_total.outcome.success", 0) >= 1
    text = prometheus(ops_envoy)
    assert 'jira_entra_guard_denied_total{reason="acl"}' in text
    assert 'jira_entra_guard_invalid_token_total{cause="expired"}' in text
    assert f'jira_entra_guard_usable_keys{{tenant="{s.TENANT}"}} 2' in text


def test_every_decision_is_in_the_audit_trail_without_the_token(ops_envoy, tokens):
    good = tokens.flow("ci-pipeline")
    marker = "audit-check-" + str(time.time_ns())
    cases = [
        ("GET", "/rest/api/2/issue/OPS-3?expand=secret", good, 200, "allow", "allowed"),
        ("DELETE", "/rest/api/2/issue/OPS-3", good, 403, "deny", "denied_by_rule"),
        ("GET", "/rest/api/2/issue/OPS-3", None, 401, "deny", "no_token"),
    ]
    for i, (method, path, token, status, _, _) in enumerate(cases):
        headers = [("x-request-id", f"{marker}-{i}")] + (bearer(token) if token else [])
        assert s.raw_request(ops_envoy.port, method, path, headers)[0] == status
    lines = {}
    deadline = time.monotonic() + 5
    while len(lines) < len(cases) and time.monotonic() < deadline:
        lines = {l["request_id"]: l for l in audit_lines(ops_envoy)
                 if str(l.get("request_id", "")).startswith(marker)}
        time.sleep(0.1)
    for i, (method, path, token, status, decision, reason) in enumerate(cases):
        line = lines[f"{marker}-{i}"]
        assert line["decision"] == decision and line["reason"] == reason, line
        assert line["method"] == method
        assert line["path"] == path.split("?")[0], "no query string in the audit trail"
        if token:
            assert line["client"] == "ci-pipeline"
            assert line["app_id"] == s.CLIENTS["ci-pipeline"]
            assert line["tenant"] == s.TENANT
            assert line["token_id"]
    assert lines[f"{marker}-0"]["matched_rule"] == "clients[1].allow[1]"
    assert lines[f"{marker}-1"]["status"] == 403
    signature = good.split(".")[2]
    assert good not in ops_envoy.process.log() and signature not in ops_envoy.process.log()


def config_with(**changes) -> dict:
    config = copy.deepcopy(s.shipped_plugin_config())
    for key, value in changes.items():
        config[key] = value
    return config


def test_denials_only_audit_skips_allowed_requests(workdir, emulator, jira, tokens):
    envoy = s.start_envoy(workdir, emulator.port, jira.port,
                          plugin_config=config_with(audit_log="denials"))
    try:
        good = tokens.flow("reporting-bot")
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself", bearer(good))[0] == 200
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself")[0] == 401
        lines = wait_for_audit(envoy, 1)
        assert [l["decision"] for l in lines] == ["deny"]
    finally:
        envoy.process.stop()


def test_global_dry_run_lets_denied_requests_through_and_counts_them(workdir, emulator, jira, tokens):
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=config_with(mode="audit"))
    try:
        jira.reset()
        status, _, _ = s.raw_request(envoy.port, "GET", "/rest/api/2/myself")
        assert status == 200, "audit mode never blocks"
        seen = jira.requests()
        assert len(seen) == 1
        names = [n for n, _ in seen[0]["headers"]]
        assert "x-jira-client" not in names, "no identity for an unauthenticated request"
        good = tokens.flow("reporting-bot")
        jira.reset()
        status, _, _ = s.raw_request(envoy.port, "GET", "/rest/api/2/serverInfo", bearer(good))
        assert status == 404, "reached the Jira stand-in, which does not serve serverInfo"
        seen = jira.requests()
        assert dict(seen[0]["headers"])["x-jira-client"] == "reporting-bot"
        assert "authorization" not in [n for n, _ in seen[0]["headers"]]
        lines = wait_for_audit(envoy, 2)
        assert [(l["decision"], l["reason"]) for l in lines] == [
            ("would_deny", "no_token"), ("would_deny", "path_not_allowed")]
        time.sleep(0.6)  # counts reach Envoy on the filter's next tick
        stats = envoy.stats()
        assert stats["wasmcustom.jira_entra_guard_dry_run_denied_total.reason.no_token"] == 1
        assert stats["wasmcustom.jira_entra_guard_dry_run_denied_total.reason.acl"] == 1
        assert stats["wasmcustom.jira_entra_guard_denied_total.reason.no_token"] == 0
    finally:
        envoy.process.stop()


def test_per_client_dry_run_covers_only_that_client(workdir, emulator, jira, tokens):
    config = copy.deepcopy(s.shipped_plugin_config())
    onboarding = next(c for c in config["clients"] if c["name"] == "reporting-bot")
    onboarding["mode"] = "audit"
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=config)
    try:
        jira.reset()
        good = tokens.flow("reporting-bot")
        assert s.raw_request(envoy.port, "POST", "/rest/api/2/search", bearer(good))[0] == 200
        assert len(jira.requests()) == 1, "the onboarding client's would-be denial reaches Jira"
        jira.reset()
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/serverInfo",
                             bearer(tokens.flow("ci-pipeline")))[0] == 403
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself",
                             bearer(tokens.flow("intruder")))[0] == 403
        assert s.raw_request(envoy.port, "GET", "/rest/api/2/myself")[0] == 401
        assert jira.requests() == [], "every other client stays enforced"
    finally:
        envoy.process.stop()


def test_every_counter_exists_at_zero_before_the_first_request(workdir, emulator, jira):
    """Prometheus's increase()/rate() count only what a series adds after it first appears: a
    counter created at its first event would hide that event from every alert."""
    envoy = s.start_envoy(workdir, emulator.port, jira.port)
    try:
        stats = envoy.stats()
        for name in ("allowed_total", "denied_total.reason.token_in_query",
                     "denied_total.reason.keys_unavailable", "denied_total.reason.project_not_allowed",
                     "dry_run_denied_total.reason.acl", "invalid_token_total.cause.bad_signature",
                     "invalid_token_total.cause.unknown_key_refetch_failed",
                     "key_fetch_total.outcome.failure", "token_cache_total.result.hit",
                     "token_cache_total.result.miss"):
            assert stats.get(f"wasmcustom.jira_entra_guard_{name}") == 0, name
        counters = [n for n in stats if n.startswith("wasmcustom.jira_entra_guard_") and "_total" in n]
        # allowed, 2 fetch outcomes, 2 cache results, 15 reasons twice (denied, dry run), 25 causes
        assert len(counters) == 1 + 2 + 2 + 2 * 15 + 25, sorted(counters)
    finally:
        envoy.process.stop()
