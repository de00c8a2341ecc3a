"""Envoy configurations of the benchmark, built as Python dicts.

Every configuration has the same listener, HTTP connection manager settings and route: a
`direct_response` 200 for every path, so no upstream is involved and the difference between two
configurations is their HTTP filters alone. Admin and listener bind 127.0.0.1 only.

- `none`: no filter but the router.
- `wasm-noop`: `bench/noop-filter` (reads `Authorization`, continues), same V8 runtime.
- `jwt_authn+rbac (cache)` / `(no cache)`: Envoy's native JWT filter with one provider per tenant
  of the plugin configuration, then RBAC allowing what the plugin's ACL allows the benchmarked
  client (see `rbac_filter`).
- `jira-entra-guard`: the filter with the shipped plugin configuration (`envoy.yaml`),
  `audit_log` as given; `(audit all)` also gets the shipped access log, the audit trail's path.
"""

from __future__ import annotations

import copy
import json

JWT_AUTHN = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD_KEY = "jwt_payload"
TYPE_PREFIX = "type.googleapis.com/envoy.extensions"


def issuer_v2(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}/v2.0"


def router() -> dict:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": f"{TYPE_PREFIX}.filters.http.router.v3.Router"},
    }


def base_config(port: int, admin_port: int, http_filters: list[dict], *,
                entra_port: int | None = None, entra_transport_socket: dict | None = None,
                access_log: list | None = None,
                memory_allocator_manager: dict | None = None) -> dict:
    """A complete bootstrap: one listener on 127.0.0.1:`port` answering 200 itself."""
    hcm = {
        "@type": f"{TYPE_PREFIX}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        # The path settings of the shipped envoy.yaml, for every configuration alike.
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "route_config": {
            "name": "bench",
            "virtual_hosts": [{
                "name": "bench",
                "domains": ["*"],
                "routes": [{
                    "match": {"prefix": "/"},
                    "direct_response": {
                        "status": 200,
                        "body": {"inline_string": '{"name":"bench","active":true}'},
                    },
                }],
            }],
        },
        "http_filters": [*http_filters, router()],
    }
    if access_log:
        hcm["access_log"] = access_log
    clusters = []
    if entra_port is not None:
        entra = {
            "name": "entra",
            "type": "STATIC",
            "connect_timeout": "2s",
            "load_assignment": {
                "cluster_name": "entra",
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                    "socket_address": {"address": "127.0.0.1", "port_value": entra_port}}}}]}],
            },
        }
        if entra_transport_socket is not None:
            # The emulator serves HTTPS: the shipped cluster's TLS settings (stack.entra_transport_socket).
            entra["transport_socket"] = entra_transport_socket
        clusters.append(entra)
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "bench",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm,
                }]}],
            }],
            "clusters": clusters,
        },
    }
    if memory_allocator_manager:
        bootstrap["memory_allocator_manager"] = memory_allocator_manager
    return bootstrap


def wasm_noop_filter(wasm_path: str) -> dict:
    return {
        "name": "wasm-noop",
        "typed_config": {
            "@type": f"{TYPE_PREFIX}.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "wasm-noop",
                "root_id": "wasm-noop",
                "fail_open": False,
                "vm_config": {
                    "vm_id": "wasm-noop",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
            },
        },
    }


def guard_filter(shipped_filter: dict, wasm_path: str, plugin_config: dict) -> dict:
    """The shipped `jira-entra-guard` filter entry (VM settings, environment) with this module
    and plugin configuration."""
    f = copy.deepcopy(shipped_filter)
    config = f["typed_config"]["config"]
    config["vm_config"]["code"]["local"]["filename"] = wasm_path
    config["configuration"]["value"] = json.dumps(plugin_config)
    return f


def jwt_authn_filter(plugin_config: dict, jwks_by_tenant: dict[str, str], cache: bool,
                     identity_headers: bool = False) -> dict:
    """One provider per tenant: the v2 issuer, the tenant's audiences, its key set inline (the
    production form would be `remote_jwks` pointing at the tenant's `jwks_uri`).

    `identity_headers`: the same header work as jira-entra-guard's, for an equal comparison: the
    client's app id (`azp`) copied into `x-jira-client-id` and `x-jira-client` (jwt_authn has no
    client name to send), and the route selected again afterwards (`clear_route_cache`)."""
    providers = {}
    for index, tenant in enumerate(plugin_config["tenants"]):
        tid = tenant["tenant_id"]
        provider = {
            "issuer": issuer_v2(tid),
            "audiences": list(tenant["audiences"]),
            "local_jwks": {"inline_string": jwks_by_tenant[tid]},
            "forward": False,
            "payload_in_metadata": JWT_PAYLOAD_KEY,
            "clock_skew_seconds": plugin_config.get("clock_skew_seconds", 60),
        }
        if cache:
            provider["jwt_cache_config"] = {"jwt_cache_size": 10000}
        if identity_headers:
            provider["claim_to_headers"] = [
                {"header_name": "x-jira-client-id", "claim_name": "azp"},
                {"header_name": "x-jira-client", "claim_name": "azp"},
            ]
            provider["clear_route_cache"] = True
        providers[f"tenant-{index}"] = provider
    rules = [
        # The plugin's public paths need no token.
        {"match": _route_match(path)}
        for rule in plugin_config.get("public_paths", [])
        for path in rule["paths"]
    ]
    rules.append({
        "match": {"prefix": "/"},
        "requires": {"requires_any": {"requirements": [
            {"provider_name": name} for name in providers]}},
    })
    return {
        "name": JWT_AUTHN,
        "typed_config": {
            "@type": f"{TYPE_PREFIX}.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": rules,
        },
    }


def _route_match(pattern: str) -> dict:
    if "*" in pattern:
        return {"safe_regex": {"regex": path_regex(pattern)}}
    return {"path": pattern}


def path_regex(pattern: str) -> str:
    """RE2 form of an ACL path pattern (core/src/policy/acl.rs): a literal segment matches
    itself, `*` exactly one segment, a final `**` zero or more segments."""
    out = ""
    segments = [s for s in pattern.split("/") if s]
    for i, seg in enumerate(segments):
        if seg == "**":
            if i != len(segments) - 1:
                raise ValueError(f"`**` must be the last segment: {pattern}")
            out += "(/[^/]+)*"
        elif seg == "*":
            out += "/[^/]+"
        else:
            out += "/" + seg.replace(".", r"\.")
    return out or "/"


def _path_permission(pattern: str) -> dict:
    if "*" in pattern:
        return {"url_path": {"path": {"safe_regex": {"regex": path_regex(pattern)}}}}
    return {"url_path": {"path": {"exact": pattern}}}


def _method_permission(methods: list[str]) -> dict:
    if methods == ["*"]:
        return {"any": True}
    perms = [{"header": {"name": ":method", "string_match": {"exact": m}}} for m in methods]
    return perms[0] if len(perms) == 1 else {"or_rules": {"rules": perms}}


def _claim(name: str, value: dict) -> dict:
    """A principal: the verified token's claim `name` (jwt_authn's dynamic metadata) matches."""
    return {"sourced_metadata": {"metadata_matcher": {
        "filter": JWT_AUTHN,
        "path": [{"key": JWT_PAYLOAD_KEY}, {"key": name}],
        "value": {"string_match": value},
    }}}


def rbac_filter(plugin_config: dict, client_name: str) -> dict:
    """ALLOW policies equivalent to the plugin's decision for one client (the benchmarked one)
    and for the public paths.

    Principal: the verified token's `azp` is the client's app id *and* its `tid` is the client's
    tenant (the filter identifies a client by both: reporting-bot's app id is also partner-sync's
    in the other tenant) *and* `azpacr` is `2` (certificate; `1` too when the client has
    `allow_client_secret`). Permission: any of the client's `allow` rules, each its methods and
    its paths (`*`/`**` as regular expressions). `projects`, `deny` and `required_roles` are not
    translated; a client using them is refused here rather than benchmarked unfaithfully.
    """
    client = next(c for c in plugin_config["clients"] if c["name"] == client_name)
    for unsupported in ("deny", "required_roles", "mode"):
        if client.get(unsupported):
            raise ValueError(f"client {client_name}: `{unsupported}` is not translated to RBAC")
    tenants = plugin_config["tenants"]
    tenant_id = client.get("tenant_id") or tenants[0]["tenant_id"]
    credential = {"exact": "2"}
    if client.get("allow_client_secret"):
        credential = {"safe_regex": {"regex": "[12]"}}
    principal = {"and_ids": {"ids": [
        _claim("azp", {"exact": client["app_id"]}),
        _claim("tid", {"exact": tenant_id}),
        _claim("azpacr", credential),
    ]}}
    allow = []
    for rule in client["allow"]:
        if rule.get("projects"):
            raise ValueError(f"client {client_name}: `projects` is not translated to RBAC")
        paths = [_path_permission(p) for p in rule["paths"]]
        allow.append({"and_rules": {"rules": [
            _method_permission(rule["methods"]),
            paths[0] if len(paths) == 1 else {"or_rules": {"rules": paths}},
        ]}})
    policies = {
        client_name: {
            "permissions": [allow[0] if len(allow) == 1 else {"or_rules": {"rules": allow}}],
            "principals": [principal],
        },
    }
    for index, rule in enumerate(plugin_config.get("public_paths", [])):
        paths = [_path_permission(p) for p in rule["paths"]]
        policies[f"public_paths[{index}]"] = {
            "permissions": [{"and_rules": {"rules": [
                _method_permission(rule["methods"]),
                paths[0] if len(paths) == 1 else {"or_rules": {"rules": paths}},
            ]}}],
            "principals": [{"any": True}],
        }
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": f"{TYPE_PREFIX}.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": policies},
        },
    }


def host_cost_probe_filter(wasm_path: str, probe: str) -> dict:
    """`bench/host-cost-probe` repeating one host operation (`<operation> <count>`)."""
    return {
        "name": "host-cost-probe",
        "typed_config": {
            "@type": f"{TYPE_PREFIX}.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "host-cost-probe",
                "root_id": "host-cost-probe",
                "fail_open": False,
                "vm_config": {
                    "vm_id": "host-cost-probe",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": probe,
                },
            },
        },
    }
