"""Project conditions on the calls that name their projects in the body or the JQL, through the
built filter in a real Envoy: issue create, bulk create, issue link and search.

ci-pipeline is limited to OPS for these calls here (the plugin configuration of envoy.yaml with
its rules replaced, `project_ids` mapping the stand-in's OPS id, and a small `max_body_bytes`).
Every allowed row proves that Jira received the very bytes that were sent (and inspected); every
refused row proves that Jira received nothing. Bodies are sent whole, chunked, split over many
writes, and after `Expect: 100-continue`.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from dataclasses import dataclass, field

import pytest

import stack as s

MAX_BODY = 4096
OPS_ID = "10100"  # the stand-in's id of project OPS

SCOPED_CALLS = ["/rest/api/2/issue", "/rest/api/2/issue/bulk", "/rest/api/2/issueLink",
                "/rest/api/2/search", "/rest/api/2/search/jql"]


def scoped_plugin_config() -> dict:
    config = s.shipped_plugin_config()
    ci = next(c for c in config["clients"] if c["name"] == "ci-pipeline")
    ci["allow"] = [
        {"methods": ["POST"], "paths": SCOPED_CALLS, "projects": ["OPS"]},
        {"methods": ["GET"], "paths": ["/rest/api/2/search", "/rest/api/2/search/jql"],
         "projects": ["OPS"]},
        {"methods": ["GET", "PUT"], "paths": ["/rest/api/2/issue/*"], "projects": ["OPS", "SEC"]},
    ]
    config["project_ids"] = {OPS_ID: "OPS"}
    config["max_body_bytes"] = MAX_BODY
    return config


@pytest.fixture(scope="module")
def scoped_envoy(workdir, emulator, jira):
    e = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=scoped_plugin_config(),
                      envoy_defaults=True)
    yield e
    e.process.stop()


def create(key: str = "OPS", member: str = "key") -> bytes:
    return json.dumps({"fields": {"project": {member: key}, "summary": "from ci",
                                  "issuetype": {"name": "Task"}}}).encode()


def bulk(*keys: str) -> bytes:
    return json.dumps({"issueUpdates": [{"fields": {"project": {"key": k}, "summary": "x"}}
                                        for k in keys]}).encode()


def link(inward: str, outward: str) -> bytes:
    return json.dumps({"type": {"name": "Blocks"}, "inwardIssue": {"key": inward},
                       "outwardIssue": {"key": outward}}).encode()


def search(jql: str) -> bytes:
    return json.dumps({"jql": jql, "maxResults": 5}).encode()


JSON = [("content-type", "application/json")]


@dataclass
class BodyCase:
    id: str
    method: str
    path: str
    body: bytes
    status: int
    reason: str = ""  # the stable reason code of the audit record / metric, for refusals
    headers: list = field(default_factory=lambda: list(JSON))
    parts: int = 1  # writes the body is split into
    chunked: bool = False
    expect_continue: bool = False


NOT_DETERMINABLE = "project_not_determinable"
NOT_ALLOWED = "project_not_allowed"

CASES = [
    # --- allowed: OPS only, in every form the calls take
    BodyCase("create-ops", "POST", "/rest/api/2/issue", create(), 201),
    BodyCase("create-ops-lowercase-key", "POST", "/rest/api/2/issue", create("ops"), 201),
    BodyCase("create-ops-by-mapped-id", "POST", "/rest/api/2/issue", create(OPS_ID, "id"), 201),
    BodyCase("create-ops-unicode-escaped-key", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"\\u004fPS"},"summary":"x"}}', 201),
    BodyCase("create-ops-charset-utf8", "POST", "/rest/api/2/issue", create(), 201,
             headers=[("content-type", "application/json; charset=UTF-8")]),
    BodyCase("bulk-ops", "POST", "/rest/api/2/issue/bulk", bulk("OPS", "OPS"), 201),
    BodyCase("link-ops", "POST", "/rest/api/2/issueLink", link("OPS-1", "OPS-2"), 201),
    BodyCase("search-body-ops", "POST", "/rest/api/2/search",
             search("project = OPS AND status = Open ORDER BY created DESC"), 200),
    BodyCase("search-jql-endpoint-ops", "POST", "/rest/api/2/search/jql",
             search("project in (OPS) AND assignee = currentUser()"), 200),
    BodyCase("search-query-ops-plus", "GET",
             "/rest/api/2/search?jql=project+%3D+OPS+AND+status+%3D+Open", b"", 200, headers=[]),
    BodyCase("search-query-ops-percent-20", "GET",
             "/rest/api/2/search?jql=project%20in%20(%22OPS%22)%20ORDER%20BY%20key", b"", 200,
             headers=[]),
    # --- allowed, delivered in awkward ways
    BodyCase("create-ops-chunked", "POST", "/rest/api/2/issue", create(), 201, chunked=True,
             parts=3),
    BodyCase("create-ops-many-reads", "POST", "/rest/api/2/issue",
             json.dumps({"fields": {"summary": "y" * 3000, "project": {"key": "OPS"}}}).encode(),
             201, parts=40),
    BodyCase("create-ops-many-chunks", "POST", "/rest/api/2/issue",
             json.dumps({"fields": {"description": "z" * 2500, "project": {"key": "OPS"}}}).encode(),
             201, parts=25, chunked=True),
    BodyCase("create-ops-expect-100-continue", "POST", "/rest/api/2/issue", create(), 201,
             expect_continue=True),
    # --- other projects
    BodyCase("create-sec", "POST", "/rest/api/2/issue", create("SEC"), 403, NOT_ALLOWED),
    BodyCase("create-unmapped-id", "POST", "/rest/api/2/issue", create("10200", "id"), 403,
             NOT_DETERMINABLE),
    BodyCase("create-by-name", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"name":"Operations"}}}', 403, NOT_DETERMINABLE),
    BodyCase("create-key-and-other-id", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"OPS","id":"10200"}}}', 403, NOT_DETERMINABLE),
    BodyCase("create-without-project", "POST", "/rest/api/2/issue", b'{"fields":{}}', 403,
             NOT_DETERMINABLE),
    BodyCase("bulk-one-sec", "POST", "/rest/api/2/issue/bulk", bulk("OPS", "SEC"), 403,
             NOT_ALLOWED),
    BodyCase("bulk-empty", "POST", "/rest/api/2/issue/bulk", b'{"issueUpdates":[]}', 403,
             NOT_DETERMINABLE),
    BodyCase("link-to-sec", "POST", "/rest/api/2/issueLink", link("OPS-1", "SEC-1"), 403,
             NOT_ALLOWED),
    BodyCase("link-by-issue-id", "POST", "/rest/api/2/issueLink",
             b'{"inwardIssue":{"key":"OPS-1"},"outwardIssue":{"id":"102001"}}', 403,
             NOT_DETERMINABLE),
    BodyCase("search-body-sec", "POST", "/rest/api/2/search", search("project = SEC"), 403,
             NOT_ALLOWED),
    BodyCase("search-body-without-jql", "POST", "/rest/api/2/search", b'{"maxResults":5}', 403,
             NOT_DETERMINABLE),
    BodyCase("search-body-empty-jql", "POST", "/rest/api/2/search", search(""), 403,
             NOT_DETERMINABLE),
    # --- JQL injection and encoding tricks
    BodyCase("search-or-injection", "POST", "/rest/api/2/search",
             search("project = OPS OR project = SEC"), 403, NOT_DETERMINABLE),
    BodyCase("search-or-symbol-injection", "POST", "/rest/api/2/search",
             search("project = OPS || project = SEC"), 403, NOT_DETERMINABLE),
    BodyCase("search-not-project", "POST", "/rest/api/2/search", search("NOT project = SEC"), 403,
             NOT_DETERMINABLE),
    BodyCase("search-project-not-equal", "POST", "/rest/api/2/search",
             search("project != SEC"), 403, NOT_DETERMINABLE),
    BodyCase("search-project-function", "POST", "/rest/api/2/search",
             search("project in projectsLeadByUser()"), 403, NOT_DETERMINABLE),
    BodyCase("search-unbalanced-quote", "POST", "/rest/api/2/search",
             search('project = "OPS'), 403, NOT_DETERMINABLE),
    BodyCase("search-quote-hides-or", "POST", "/rest/api/2/search",
             search('project = "OPS\\" OR project = \\"SEC"'), 403, NOT_DETERMINABLE),
    BodyCase("search-query-or-injection", "GET",
             "/rest/api/2/search?jql=project+%3D+OPS+OR+project+%3D+SEC", b"", 403,
             NOT_DETERMINABLE, headers=[]),
    BodyCase("search-query-encoded-or", "GET",
             "/rest/api/2/search?jql=project%3DOPS%20%4f%52%20project%3DSEC", b"", 403,
             NOT_DETERMINABLE, headers=[]),
    BodyCase("search-query-repeated-jql", "GET",
             "/rest/api/2/search?jql=project%3DOPS&jql=project%3DSEC", b"", 403,
             NOT_DETERMINABLE, headers=[]),
    BodyCase("search-query-encoded-name-repeats-jql", "GET",
             "/rest/api/2/search?jql=project%3DOPS&%6aql=project%3DSEC", b"", 403,
             NOT_DETERMINABLE, headers=[]),
    BodyCase("search-query-without-jql", "GET", "/rest/api/2/search?maxResults=5", b"", 403,
             NOT_DETERMINABLE, headers=[]),
    BodyCase("search-query-sec", "GET", "/rest/api/2/search?jql=project%3DSEC", b"", 403,
             NOT_ALLOWED, headers=[]),
    # --- bodies the gateway and Jira could read differently
    BodyCase("duplicate-project-key", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"OPS","key":"SEC"}}}', 400, "duplicate_member"),
    BodyCase("duplicate-fields", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"OPS"}},"fields":{"project":{"key":"SEC"}}}', 400,
             "duplicate_member"),
    BodyCase("duplicate-by-escape", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"OPS","\\u006bey":"SEC"}}}', 400, "duplicate_member"),
    BodyCase("duplicate-jql", "POST", "/rest/api/2/search",
             b'{"jql":"project = OPS","jql":"project = SEC"}', 400, "duplicate_member"),
    BodyCase("invalid-json", "POST", "/rest/api/2/issue", b'{"fields":{"project":{"key":"OPS"}}',
             400, "invalid_json"),
    BodyCase("invalid-utf8", "POST", "/rest/api/2/issue",
             b'{"fields":{"project":{"key":"OPS"},"summary":"\xff"}}', 400, "invalid_json"),
    BodyCase("wrong-content-type", "POST", "/rest/api/2/issue", create(), 415,
             "unsupported_media_type", headers=[("content-type", "text/plain")]),
    BodyCase("form-content-type", "POST", "/rest/api/2/issue", create(), 415,
             "unsupported_media_type",
             headers=[("content-type", "application/x-www-form-urlencoded")]),
    BodyCase("no-content-type", "POST", "/rest/api/2/issue", create(), 415,
             "unsupported_media_type", headers=[]),
    BodyCase("content-encoding", "POST", "/rest/api/2/issue", create(), 415,
             "content_encoding", headers=JSON + [("content-encoding", "gzip")]),
    BodyCase("too-large", "POST", "/rest/api/2/issue",
             json.dumps({"fields": {"project": {"key": "OPS"}, "summary": "x" * MAX_BODY}}).encode(),
             413, "body_too_large"),
    BodyCase("too-large-chunked", "POST", "/rest/api/2/issue",
             json.dumps({"fields": {"project": {"key": "OPS"}, "summary": "x" * MAX_BODY}}).encode(),
             413, "body_too_large", chunked=True, parts=8),
]


def send(port: int, case: BodyCase, auth: list[tuple[str, str]],
         timeout: float = 15) -> tuple[int, bytes]:
    """Sends the case as written: the body whole or in `parts` writes, with Content-Length or
    chunked, optionally waiting for `100 Continue` first. Returns (status, response body)."""
    lines = [f"{case.method} {case.path} HTTP/1.1", "host: jira.local", "connection: close"]
    lines += [f"{n}: {v}" for n, v in case.headers + auth]
    if case.chunked:
        lines.append("transfer-encoding: chunked")
    elif case.body or case.method == "POST":
        lines.append(f"content-length: {len(case.body)}")
    if case.expect_continue:
        lines.append("expect: 100-continue")
    size = max(1, -(-len(case.body) // case.parts))
    parts = [case.body[i:i + size] for i in range(0, len(case.body), size)]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if case.expect_continue:
            interim = b""
            while b"\r\n\r\n" not in interim:
                chunk = sock.recv(1)
                assert chunk, "connection closed before 100 Continue"
                interim += chunk
            assert interim.startswith(b"HTTP/1.1 100"), interim
        for part in parts:
            try:
                sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n" if case.chunked
                             else part)
            except (BrokenPipeError, ConnectionResetError):
                break  # answered early (e.g. 413 before the whole body was sent)
            if len(parts) > 1:
                time.sleep(0.01)  # separate reads at Envoy; the outcome does not depend on it
        if case.chunked:
            try:
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        raw = s._read_response(sock)
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        rest = s._dechunk(rest)
    return status, rest


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_body_and_jql_scoping(case: BodyCase, scoped_envoy, jira, tokens):
    jira.reset()
    auth = [("authorization", f"Bearer {tokens.flow('ci-pipeline')}")]
    status, body = send(scoped_envoy.port, case, auth)
    seen = jira.requests()
    if case.status < 400 or (case.status == 400 and not case.reason):
        # Forwarded: the stand-in's own answer, and it got exactly the bytes that were sent.
        assert status == case.status, body
        assert len(seen) == 1, seen
        assert base64.b64decode(seen[0]["body_b64"]) == case.body
        assert ("x-jira-client", "ci-pipeline") in [tuple(h) for h in seen[0]["headers"]]
    else:
        assert status == case.status, body
        assert seen == [], "a refused request reached Jira"
        message = json.loads(body)["errorMessages"][0]
        assert message, body


def test_refusals_are_counted_and_audited_under_their_reason(scoped_envoy, jira, tokens):
    auth = [("authorization", f"Bearer {tokens.flow('ci-pipeline')}")]
    time.sleep(0.6)  # counts of earlier requests reach Envoy on the filter's next tick
    before = scoped_envoy.stats()
    by_id = {c.id: c for c in CASES}
    for case_id in ["search-or-injection", "create-sec", "too-large", "wrong-content-type",
                    "duplicate-fields"]:
        send(scoped_envoy.port, by_id[case_id], auth)
    deadline = time.monotonic() + 5
    expected = {"project_not_determinable": 1, "project_not_allowed": 1, "body_too_large": 1,
                "unsupported_media_type": 1, "invalid_body": 1}
    while True:
        after = scoped_envoy.stats()
        delta = {reason: after.get(f"wasmcustom.jira_entra_guard_denied_total.reason.{reason}", 0)
                 - before.get(f"wasmcustom.jira_entra_guard_denied_total.reason.{reason}", 0)
                 for reason in expected}
        if delta == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert delta == expected
    log = scoped_envoy.process.log()
    assert '"reason":"project_not_determinable"' in log
    assert '"projects":"project cannot be determined: jql: the top level of the query is an OR"' in log
    assert '"projects":"fields.project: SEC"' in log


def test_calls_without_a_project_rule_never_wait_for_the_body(envoy, jira, tokens):
    """In the shipped configuration ci-pipeline may create issues in any project: the body is
    not inspected (an invalid one reaches Jira, whose answer comes back)."""
    jira.reset()
    case = BodyCase("unscoped", "POST", "/rest/api/2/issue", b'{"fields":', 400)
    auth = [("authorization", f"Bearer {tokens.flow('ci-pipeline')}")]
    status, _ = send(envoy.port, case, auth)
    assert status == 400
    seen = jira.requests()
    assert len(seen) == 1 and base64.b64decode(seen[0]["body_b64"]) == case.body


def test_bodies_wait_with_their_request_while_the_keys_load(workdir, jira):
    """A request that waits for its tenant's first key set keeps its body in Envoy: the OPS
    create arrives byte for byte once the keys are in, the SEC create never reaches Jira."""
    import threading

    idp = s.start_emulator(workdir)
    idp.control("faults", {"tenant_id": "*", "jwks": "hang:3"})
    config = scoped_plugin_config()
    config["key_wait_ms"] = 10_000
    for tenant in config["tenants"]:
        tenant["jwks"]["fetch_timeout_ms"] = 8_000
    envoy = s.start_envoy(workdir, idp.port, jira.port, plugin_config=config)
    try:
        jira.reset()
        auth = [("authorization", f"Bearer {idp.token('ci-pipeline')}")]
        ops = BodyCase("ops", "POST", "/rest/api/2/issue",
                       json.dumps({"fields": {"project": {"key": "OPS"}, "summary": "w" * 600}})
                       .encode(), 201, parts=4)
        sec = BodyCase("sec", "POST", "/rest/api/2/issue", create("SEC"), 403, parts=3,
                       chunked=True)
        results = {}

        def run(case):
            results[case.id] = send(envoy.port, case, auth)

        threads = [threading.Thread(target=run, args=(c,)) for c in (ops, sec)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        waited = time.monotonic() - started
        assert results["ops"][0] == 201, results
        assert results["sec"][0] == 403, results
        seen = jira.requests()
        assert len(seen) == 1, seen
        assert base64.b64decode(seen[0]["body_b64"]) == ops.body
        assert waited > 1.0, f"the requests did not wait for the keys ({waited:.2f}s)"
    finally:
        envoy.process.stop()
        idp.process.stop()


def test_without_the_envoy_setting_a_held_body_is_refused_not_forwarded(workdir, emulator, jira,
                                                                        tokens):
    """An Envoy without `allow_on_headers_stop_iteration` never hands the filter the body of a
    request held at its headers: the request gets 408 after the filter's bound (30 s) instead of
    hanging, and Jira sees nothing."""

    def drop_setting(config):
        http_filters = s._hcm(config)["http_filters"]
        wasm = next(f for f in http_filters if f["name"] == "jira-entra-guard")
        wasm["typed_config"]["config"].pop("allow_on_headers_stop_iteration", None)

    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=scoped_plugin_config(),
                          mutate=drop_setting)
    try:
        jira.reset()
        auth = [("authorization", f"Bearer {tokens.flow('ci-pipeline')}")]
        started = time.monotonic()
        status, _ = send(envoy.port, BodyCase("held", "POST", "/rest/api/2/issue", create(), 408),
                         auth, timeout=60)
        assert status == 408
        assert 29 < time.monotonic() - started < 45
        assert jira.requests() == []
    finally:
        envoy.process.stop()
