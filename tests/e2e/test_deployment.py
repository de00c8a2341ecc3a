"""The shipped envoy.yaml as it is (recommended path settings on), the failure modes of the
deployment, and the demo command."""

from __future__ import annotations

import json
import subprocess

import stack as s


def test_shipped_config_passes_envoy_validation(workdir):
    path, _, _ = s.render_envoy_config(workdir, 8090, 8091)
    out = subprocess.run([s.ENVOY, "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
                         capture_output=True, text=True, cwd=s.ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_shipped_config_allows_a_client_and_refuses_no_token(shipped_envoy, jira, tokens):
    jira.reset()
    status, _, _ = s.raw_request(shipped_envoy.port, "GET", "/rest/api/2/myself",
                                 [("authorization", f"Bearer {tokens.flow('reporting-bot')}")])
    assert status == 200
    status, _, _ = s.raw_request(shipped_envoy.port, "GET", "/rest/api/2/myself")
    assert status == 401
    assert len(jira.requests()) == 1


def test_with_envoy_normalisation_jira_sees_the_path_the_acl_approved(shipped_envoy, jira, tokens):
    """With normalize_path on, Envoy resolves dot segments before the filter: the ACL decides
    on the resolved path, and Jira receives exactly that path."""
    auth = [("authorization", f"Bearer {tokens.flow('reporting-bot')}")]
    jira.reset()
    status, _, _ = s.raw_request(shipped_envoy.port, "GET", "/rest/api/2/issue/../myself", auth)
    assert status == 200
    assert [r["path"] for r in jira.requests()] == ["/rest/api/2/myself"]
    jira.reset()
    status, _, _ = s.raw_request(shipped_envoy.port, "GET", "/rest/api/2/search/../serverInfo", auth)
    assert status == 403
    status, _, _ = s.raw_request(shipped_envoy.port, "GET", "/rest/api/2/issue%2FOPS-1", auth)
    assert status == 400
    assert jira.requests() == []


def test_bad_configuration_refuses_to_start_and_names_the_field(workdir, emulator, jira):
    config = s.shipped_plugin_config()
    config["tenants"][0]["tenant_id"] = "abc"
    envoy = s.start_envoy(workdir, emulator.port, jira.port, plugin_config=config, wait_ready=False)
    try:
        envoy.process.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        envoy.process.stop()
    log = envoy.process.log()
    assert envoy.process.proc.returncode != 0, "Envoy must not serve with a refused configuration"
    assert 'tenants[0].tenant_id: "abc" is not a GUID' in log


def test_missing_upstream_credential_variable_refuses_to_start(workdir, emulator, jira):
    def drop_env(config):
        listener = config["static_resources"]["listeners"][0]
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        wasm = next(f for f in hcm["http_filters"] if f["name"] == "jira-entra-guard")
        wasm["typed_config"]["config"]["vm_config"].pop("environment_variables")

    envoy = s.start_envoy(workdir, emulator.port, jira.port, mutate=drop_env, wait_ready=False)
    try:
        envoy.process.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        envoy.process.stop()
    assert envoy.process.proc.returncode != 0
    assert 'environment variable "JIRA_PAT_LEGACY_SYNC" is not set' in envoy.process.log()


def test_plugin_configuration_in_envoy_yaml_is_valid_json():
    config = s.shipped_plugin_config()
    assert {c["name"] for c in config["clients"]} >= {"reporting-bot", "ci-pipeline"}
    json.dumps(config)
