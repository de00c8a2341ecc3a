"""Tenants outside Microsoft's public cloud: the US Government example deployment is the
production file but for the cloud, and Envoy accepts it with the built filter."""

from __future__ import annotations

import copy
import json
import os
import subprocess

import yaml

import stack as s
from test_deploy_manifests import PRODUCTION, cli, envoy_validate, production_wasm_filter, render_production

USGOV = s.ROOT / "deploy" / "envoy-usgov.yaml"


def entra_cluster(config: dict) -> dict:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == "entra")


def plugin_config(config: dict) -> dict:
    return json.loads(production_wasm_filter(config)["configuration"]["value"])


def test_usgov_example_is_the_production_file_but_for_the_cloud():
    """Everything but the tenants' `cloud` and the key-set cluster's host stays the production
    file's, so the hardening proven for that file holds here too."""
    production = yaml.safe_load(PRODUCTION.read_text())
    usgov = yaml.safe_load(USGOV.read_text())

    carried = plugin_config(usgov)
    assert [t.get("cloud") for t in carried["tenants"]] == ["usgov"] * len(carried["tenants"])
    expected_plugin = plugin_config(production)
    for tenant in expected_plugin["tenants"]:
        tenant["cloud"] = "usgov"
    assert carried == expected_plugin

    entra = entra_cluster(usgov)
    address = entra["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("login.microsoftonline.us", 443)
    tls = entra["transport_socket"]["typed_config"]
    assert tls["sni"] == "login.microsoftonline.us"
    assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "login.microsoftonline.us"}}]

    expected = copy.deepcopy(production)
    expected_entra = entra_cluster(expected)
    expected_entra["load_assignment"] = entra["load_assignment"]
    expected_entra["transport_socket"]["typed_config"]["sni"] = tls["sni"]
    expected_entra["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"][
        "match_typed_subject_alt_names"] = tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
    production_wasm_filter(expected)["configuration"]["value"] = production_wasm_filter(usgov)["configuration"]["value"]
    assert usgov == expected


def test_usgov_example_passes_envoy_validation_with_the_built_filter(workdir):
    path = render_production(workdir, USGOV)
    out = envoy_validate(path, {"JIRA_PAT_LEGACY_SYNC": "Bearer validation-only"})
    assert out.returncode == 0, out.stdout + out.stderr


def test_cli_validates_the_usgov_example():
    out = subprocess.run([str(cli()), "validate", str(USGOV), "--ignore-missing-env"],
                         capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("JIRA_PAT_")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: 2 tenants, ")
