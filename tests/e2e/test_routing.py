"""Routes that match on the identity headers see the identity the filter set, never the caller's.

When the filter changes the request headers, Envoy clears its route cache and selects the route
again, so a route may match on `x-jira-client` (per-client routing, e.g. to a separate Jira node
or a stricter timeout). These tests pin that down with a route answered by Envoy itself: it can
only be chosen with the filter's value, and a caller's copy of the header never steers a
request to it."""

from __future__ import annotations

import pytest

import stack as s

PER_CLIENT_BODY = b"answered by the reporting-bot route"


def add_reporting_bot_route(config: dict) -> None:
    """A route, ahead of the route to Jira, for requests whose `x-jira-client` is reporting-bot."""
    vhost = s._hcm(config)["route_config"]["virtual_hosts"][0]
    vhost["routes"].insert(0, {
        "match": {"prefix": "/", "headers": [
            {"name": "x-jira-client", "string_match": {"exact": "reporting-bot"}}]},
        "direct_response": {"status": 200,
                            "body": {"inline_string": PER_CLIENT_BODY.decode()}},
    })


@pytest.fixture(scope="module")
def routed_envoy(workdir, emulator, jira):
    e = s.start_envoy(workdir, emulator.port, jira.port, mutate=add_reporting_bot_route)
    yield e
    e.process.stop()


def bearer(token):
    return [("authorization", f"Bearer {token}")]


def spoofed(name="reporting-bot"):
    return [("x-jira-client", name), ("x-jira-client-id", s.CLIENTS[name])]


def test_route_selected_again_with_the_identity_the_filter_set(routed_envoy, jira, tokens):
    jira.reset()
    status, _, body = s.raw_request(routed_envoy.port, "GET", "/rest/api/2/myself",
                                    bearer(tokens.flow("reporting-bot")))
    assert (status, body) == (200, PER_CLIENT_BODY)
    assert jira.requests() == [], "the per-client route answered, not Jira"


def test_another_clients_copy_of_the_header_does_not_choose_the_route(routed_envoy, jira, tokens):
    jira.reset()
    status, _, body = s.raw_request(
        routed_envoy.port, "GET", "/rest/api/2/issue/OPS-1",
        bearer(tokens.flow("ci-pipeline")) + spoofed("reporting-bot"))
    assert status == 200 and body != PER_CLIENT_BODY
    seen = jira.requests()
    assert len(seen) == 1
    headers = dict(seen[0]["headers"])
    assert headers["x-jira-client"] == "ci-pipeline"
    assert headers["x-jira-client-id"] == s.CLIENTS["ci-pipeline"]


def test_a_public_request_with_a_forged_identity_goes_to_jira_without_it(routed_envoy, jira):
    jira.reset()
    status, _, body = s.raw_request(routed_envoy.port, "GET", "/status", spoofed())
    assert body != PER_CLIENT_BODY
    seen = jira.requests()
    assert len(seen) == 1, f"the route to Jira was chosen (status {status})"
    names = [n for n, _ in seen[0]["headers"]]
    assert "x-jira-client" not in names and "x-jira-client-id" not in names


def test_a_denied_request_with_a_forged_identity_is_answered_by_the_filter(routed_envoy, jira):
    jira.reset()
    status, _, body = s.raw_request(routed_envoy.port, "GET", "/rest/api/2/myself", spoofed())
    assert status == 401 and body != PER_CLIENT_BODY
    assert jira.requests() == []
