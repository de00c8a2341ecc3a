"""Building blocks of the end-to-end case table: a [`Case`] is one request with the status it
must get and whether Jira may see it; the helpers make the `Authorization` header the case
sends, from the emulator's real certificate flow or crafted through its signing endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import stack as s

V2_ISS = f"https://login.microsoftonline.com/{s.TENANT}/v2.0"
UNCONFIGURED_TENANT = "11111111-2222-4333-8444-555555555555"


@dataclass
class Case:
    id: str
    method: str
    path: str
    auth: Callable | None  # (tokens, emulator) -> list of header pairs
    status: int
    reaches_jira: bool
    reason: str = ""
    client: str | None = None  # expected x-jira-client at Jira
    extra_headers: list = field(default_factory=list)
    upstream_authorization: str | None = None
    body: bytes = b""
    jira_path: str | None = None  # the path Jira must see, when it differs from `path`
    envoy_rejects: bool = False  # Envoy itself refuses (e.g. 431) before the filter runs


def bearer(make):
    return lambda t, e: [("authorization", f"Bearer {make(t, e)}")]


def flow(client, api=s.API_URI, tenant=s.TENANT, secret=None):
    return bearer(lambda t, e: t.flow(client, api, tenant, secret))


def crafted(client="reporting-bot", api=s.API_URI, **kw):
    return bearer(lambda t, e: e.token(client, api, **kw))


def signed(header, claims_fn, **kw):
    return bearer(lambda t, e: e.sign(header, claims_fn(t, e), **kw))


def valid_claims(t, e):
    """The claims of a genuine v2 token, for re-signing with changes."""
    return e.control("token", {"tenant_id": s.TENANT, "client_id": s.CLIENTS["reporting-bot"],
                               "api": s.API_URI})["claims"]


def changed(**changes):
    def fn(t, e):
        c = valid_claims(t, e)
        for k, v in changes.items():
            if v is REMOVE:
                c.pop(k, None)
            else:
                c[k] = v
        return c
    return fn


REMOVE = object()

def active_kid(e) -> str:
    return s.http_json("GET", f"{e.url}/_emulator/keys?tenant_id={s.TENANT}")["active"]


