"""The deployment files beyond the local stack, checked without a cluster or the network: the
production Envoy configuration passes `envoy --mode validate` with the built filter, the Istio and
Envoy Gateway manifests carry the plugin configuration the tests run (and the filter's own code
accepts it), every configuration matches the JSON Schema, and scripts/oci-image.sh produces a
well-formed OCI image layout of the built module."""

from __future__ import annotations

import copy
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import stack as s

DEPLOY = s.ROOT / "deploy"
PRODUCTION = DEPLOY / "envoy-production.yaml"
ISTIO = DEPLOY / "istio" / "wasmplugin.yaml"
ENVOY_GATEWAY = DEPLOY / "envoy-gateway" / "envoy-extension-policy.yaml"
SCHEMA = s.ROOT / "schema" / "plugin-config.schema.json"
CLI = s.ROOT / "target" / "debug" / "jira-entra-guard"

# The key-set cluster each platform names (everything else in the plugin configuration is the
# local stack's): Envoy's own cluster, Istio's outbound cluster for the ServiceEntry, and the
# cluster Envoy Gateway builds for the first rule of the `entra-jwks` route.
JWKS_CLUSTERS = {
    PRODUCTION: "entra",
    ISTIO: "outbound|443||login.microsoftonline.com",
    ENVOY_GATEWAY: "httproute/jira/entra-jwks/rule/0",
}

WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def production_wasm_filter(config: dict) -> dict:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return next(f for f in hcm["http_filters"] if f["name"] == "jira-entra-guard")["typed_config"]["config"]


def documents(path: Path) -> dict[str, dict]:
    """The YAML documents of a manifest file, by kind (and name for repeated kinds)."""
    out = {}
    for doc in yaml.safe_load_all(path.read_text()):
        key = doc["kind"] if doc["kind"] not in out else f'{doc["kind"]}/{doc["metadata"]["name"]}'
        out[key] = doc
    return out


def plugin_configs() -> dict[Path, dict]:
    """The plugin configuration each deployment file carries."""
    production = production_wasm_filter(yaml.safe_load(PRODUCTION.read_text()))
    return {
        PRODUCTION: json.loads(production["configuration"]["value"]),
        ISTIO: documents(ISTIO)["WasmPlugin"]["spec"]["pluginConfig"],
        ENVOY_GATEWAY: documents(ENVOY_GATEWAY)["EnvoyExtensionPolicy"]["spec"]["wasm"][0]["config"],
    }


def upstream_credential_variables(config: dict) -> set[str]:
    return {c["upstream_authorization_env"] for c in config["clients"] if c.get("upstream_authorization_env")}


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway server certificate and key, so Envoy can load the listener's TLS context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jira-api.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt, pem = directory / "server.crt", directory / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def render_production(workdir: Path, source: Path = PRODUCTION) -> Path:
    """deploy/envoy-production.yaml (or another production-shaped file) with the built module and
    a throwaway server certificate; the CA bundle stays the system's unless this machine has
    none."""
    text = source.read_text()
    crt, key = self_signed(workdir)
    text = text.replace("/etc/envoy/jira_entra_guard.wasm", str(s.WASM))
    text = text.replace("/etc/envoy/tls/server.crt", str(crt)).replace("/etc/envoy/tls/server.key", str(key))
    if not Path("/etc/ssl/certs/ca-certificates.crt").exists():
        text = text.replace("/etc/ssl/certs/ca-certificates.crt", str(crt))
    path = workdir / source.name
    path.write_text(text)
    return path


def envoy_validate(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JIRA_PAT_")}
    return subprocess.run([s.ENVOY, "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
                          capture_output=True, text=True, cwd=s.ROOT, env={**clean, **env}, timeout=120)


def test_production_envoy_config_passes_envoy_validation_with_the_built_filter(workdir):
    path = render_production(workdir)
    out = envoy_validate(path, {"JIRA_PAT_LEGACY_SYNC": "Bearer validation-only"})
    assert out.returncode == 0, out.stdout + out.stderr


def test_production_validation_runs_the_filters_configuration_check(workdir):
    """Envoy's validate mode loads the module and configures it: a Jira credential missing from
    Envoy's environment fails validation with the filter's own message."""
    path = render_production(workdir)
    out = envoy_validate(path, {})
    assert out.returncode != 0
    assert 'environment variable "JIRA_PAT_LEGACY_SYNC" is not set' in out.stdout + out.stderr


def test_production_envoy_config_has_the_hardening_it_documents():
    config = yaml.safe_load(PRODUCTION.read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert (hcm["normalize_path"], hcm["merge_slashes"], hcm["path_with_escaped_slashes_action"]) == \
        (True, True, "REJECT_REQUEST")
    assert hcm["common_http_protocol_options"]["headers_with_underscores_action"] == "REJECT_REQUEST"
    assert hcm["max_request_headers_kb"] <= 60 and hcm["common_http_protocol_options"]["max_headers_count"] <= 100
    wasm = production_wasm_filter(config)
    assert wasm["fail_open"] is False
    assert wasm["vm_config"]["code"]["local"]["filename"] == "/etc/envoy/jira_entra_guard.wasm"
    entra = next(c for c in config["static_resources"]["clusters"] if c["name"] == "entra")
    assert entra["type"] == "LOGICAL_DNS"
    address = entra["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (address["address"], address["port_value"]) == ("login.microsoftonline.com", 443)
    tls = entra["transport_socket"]["typed_config"]
    assert tls["sni"] == "login.microsoftonline.com"
    validation = tls["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["filename"] == "/etc/ssl/certs/ca-certificates.crt"
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "login.microsoftonline.com"}}]


def test_production_envoy_config_pins_filter_order_tls_and_header_limits():
    """What SECURITY.md asks of the Envoy around the filter, pinned in the shipped example."""
    config = yaml.safe_load(PRODUCTION.read_text())
    listener = config["static_resources"]["listeners"][0]
    chain = listener["filter_chains"][0]
    hcm = chain["filters"][0]["typed_config"]
    # The filter runs first and directly before the router: nothing after it rewrites the
    # request it approved, and no route rewrites the path.
    assert [f["name"] for f in hcm["http_filters"]] == ["jira-entra-guard", "envoy.filters.http.router"]
    routes = [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert routes and all("prefix_rewrite" not in r.get("route", {}) and
                          "regex_rewrite" not in r.get("route", {}) for r in routes)
    # Bearer tokens arrive over TLS 1.2 or later.
    downstream = chain["transport_socket"]["typed_config"]
    assert downstream["@type"].endswith("DownstreamTlsContext")
    assert downstream["common_tls_context"]["tls_params"]["tls_minimum_protocol_version"] in ("TLSv1_2", "TLSv1_3")
    # Request-head limits as documented: 32 KiB of headers, at most 100 of them.
    assert hcm["max_request_headers_kb"] == 32
    assert hcm["common_http_protocol_options"]["max_headers_count"] == 100
    # Jira is reached over TLS with the server's certificate validated against a CA and a name.
    jira = next(c for c in config["static_resources"]["clusters"] if c["name"] == "jira")
    tls = jira["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("UpstreamTlsContext")
    assert tls["common_tls_context"]["tls_params"]["tls_minimum_protocol_version"] in ("TLSv1_2", "TLSv1_3")
    validation = tls["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"]["filename"]
    host = jira["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["address"]
    assert tls["sni"] == host
    assert validation["match_typed_subject_alt_names"] == [{"san_type": "DNS", "matcher": {"exact": host}}]


@pytest.mark.parametrize("path", list(JWKS_CLUSTERS), ids=lambda p: p.name)
def test_deployment_carries_the_plugin_configuration_the_tests_run(path):
    """The same document as envoy.yaml's, except the key-set cluster each platform names."""
    shipped = s.shipped_plugin_config()
    carried = plugin_configs()[path]
    assert [t["jwks"]["cluster"] for t in carried["tenants"]] == [JWKS_CLUSTERS[path]] * len(carried["tenants"])
    expected = copy.deepcopy(shipped)
    for tenant in expected["tenants"]:
        tenant["jwks"]["cluster"] = JWKS_CLUSTERS[path]
    assert carried == expected, (
        f"{path.relative_to(s.ROOT)} no longer carries envoy.yaml's plugin configuration; "
        "update it (only tenants[*].jwks.cluster differs)")


def test_production_plugin_configuration_is_envoy_yamls_exactly():
    assert plugin_configs()[PRODUCTION] == s.shipped_plugin_config()


def test_every_upstream_credential_variable_reaches_the_vm_from_the_host():
    variables = upstream_credential_variables(s.shipped_plugin_config())
    assert variables, "the shipped configuration maps a client to a Jira credential"
    production = production_wasm_filter(yaml.safe_load(PRODUCTION.read_text()))["vm_config"]
    assert set(production["environment_variables"]["host_env_keys"]) >= variables
    assert "key_values" not in production["environment_variables"], "no credential literals in production"
    istio = documents(ISTIO)["WasmPlugin"]["spec"]["vmConfig"]["env"]
    assert {e["name"] for e in istio if e.get("valueFrom") == "HOST"} >= variables
    gateway = documents(ENVOY_GATEWAY)["EnvoyExtensionPolicy"]["spec"]["wasm"][0]
    assert set(gateway["env"]["hostKeys"]) >= variables


def test_istio_manifest_fails_closed_before_authentication_and_reaches_entra_over_tls():
    docs = documents(ISTIO)
    plugin = docs["WasmPlugin"]["spec"]
    assert plugin["url"].startswith("oci://")
    assert (plugin["phase"], plugin["failStrategy"]) == ("AUTHN", "FAIL_CLOSE")
    assert [m["mode"] for m in plugin["match"]] == ["SERVER"]
    entry = docs["ServiceEntry"]["spec"]
    assert entry["hosts"] == ["login.microsoftonline.com"] and entry["location"] == "MESH_EXTERNAL"
    assert [p["number"] for p in entry["ports"]] == [443]
    tls = docs["DestinationRule"]["spec"]["trafficPolicy"]["portLevelSettings"][0]
    assert tls["port"]["number"] == 443
    assert (tls["tls"]["mode"], tls["tls"]["sni"]) == ("SIMPLE", "login.microsoftonline.com")


def test_envoy_gateway_manifest_fails_closed_and_builds_the_named_jwks_cluster():
    docs = documents(ENVOY_GATEWAY)
    policy = docs["EnvoyExtensionPolicy"]["spec"]
    wasm = policy["wasm"][0]
    assert (wasm["rootID"], wasm["failOpen"], wasm["code"]["type"]) == ("jira-entra-guard", False, "Image")
    # The cluster name httproute/<namespace>/<route>/rule/<index> must match the route.
    kind, namespace, name, rule, index = JWKS_CLUSTERS[ENVOY_GATEWAY].split("/")
    assert (kind, rule) == ("httproute", "rule")
    route = docs[f"HTTPRoute/{name}"]
    assert route["metadata"]["namespace"] == namespace
    assert route["spec"]["rules"][int(index)]["backendRefs"][0]["name"] == docs["Backend"]["metadata"]["name"]
    endpoint = docs["Backend"]["spec"]["endpoints"][0]["fqdn"]
    assert (endpoint["hostname"], endpoint["port"]) == ("login.microsoftonline.com", 443)
    assert docs["BackendTLSPolicy"]["spec"]["validation"]["hostname"] == "login.microsoftonline.com"
    # The guard also covers the route that only exists for its cluster.
    assert {t["name"] for t in policy["targetRefs"]} == {"jira", "entra-jwks"}


def schema_validator():
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_shipped_plugin_configuration_matches_the_json_schema():
    validator = schema_validator()
    configs = {"envoy.yaml": s.shipped_plugin_config(),
               **{str(p.relative_to(s.ROOT)): c for p, c in plugin_configs().items()}}
    for name, config in configs.items():
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(config)]
        assert errors == [], name


def test_json_schema_refuses_what_the_filter_refuses():
    validator = schema_validator()

    def refused(mutate) -> bool:
        config = s.shipped_plugin_config()
        mutate(config)
        return any(True for _ in validator.iter_errors(config))

    assert refused(lambda c: c.update(tenant=[]))  # a typo: unknown field
    assert refused(lambda c: c["tenants"][0].update(tenant_id="abc"))
    assert refused(lambda c: c["tenants"][0].update(tenant_id="{72f988bf-86f1-41af-91ab-2d7cd011db47}"))
    assert refused(lambda c: c["clients"][0]["allow"][0].update(methods=["get"]))
    assert refused(lambda c: c["clients"][0]["allow"][0].update(projects=["ops"]))
    assert refused(lambda c: c.update(clock_skew_seconds=601))
    assert refused(lambda c: c.update(mode="permissive"))
    assert refused(lambda c: c["clients"][0].update(allow=[]))
    assert not refused(lambda c: c["tenants"][0].update(tenant_id=s.TENANT.upper()))
    assert not refused(lambda c: c.update(mode=None, public_paths=None))


def cli() -> Path:
    """The CLI binary of this workspace (built by `cargo test --workspace`; built here if not)."""
    if not CLI.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "jira-entra-guard-cli", "--locked"], cwd=s.ROOT, check=True)
    return CLI


@pytest.mark.parametrize("path", [ISTIO, ENVOY_GATEWAY], ids=lambda p: p.name)
def test_filter_accepts_the_plugin_configuration_of_the_kubernetes_manifests(path, workdir):
    """The manifests' YAML objects reach the filter as JSON; its own code (through the CLI) must
    accept them, with placeholders for the Jira credentials."""
    document = workdir / f"{path.stem}-plugin-config.json"
    document.write_text(json.dumps(plugin_configs()[path]))
    out = subprocess.run([str(cli()), "validate", str(document), "--ignore-missing-env"],
                         capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                              if not k.startswith("JIRA_PAT_")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: ")


def test_cli_validates_the_production_envoy_file_without_its_secrets():
    out = subprocess.run([str(cli()), "validate", str(PRODUCTION), "--ignore-missing-env"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'environment variable "JIRA_PAT_LEGACY_SYNC" is not set; a placeholder was used' in out.stderr


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(layout: Path, descriptor: dict) -> bytes:
    """The blob a descriptor names, checked against the descriptor's digest and size."""
    algorithm, hexdigest = descriptor["digest"].split(":")
    assert algorithm == "sha256" and re.fullmatch(r"[0-9a-f]{64}", hexdigest)
    data = (layout / "blobs" / "sha256" / hexdigest).read_bytes()
    assert sha256(data) == descriptor["digest"], "blob content does not match its digest"
    assert len(data) == descriptor["size"], "blob size does not match its descriptor"
    return data


def build_layout(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scripts/oci-image.sh", "--out", str(out), "--wasm", str(s.WASM), *args],
                          cwd=s.ROOT, capture_output=True, text=True, check=True)


def test_oci_layout_holds_the_built_module_in_both_variants(workdir):
    layout = workdir / "oci-both"
    build_layout(layout, "--tag", "9.9.9-test")
    module = s.WASM.read_bytes()
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    by_name = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    assert set(by_name) == {"9.9.9-test", "9.9.9-test-compat"}
    referenced = set()

    def load(descriptor):
        referenced.add(descriptor["digest"])
        return blob(layout, descriptor)

    # The Wasm artifact variant: the runtime config, then the raw module.
    descriptor = by_name["9.9.9-test"]
    assert descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest = json.loads(load(descriptor))
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    runtime = json.loads(load(manifest["config"]))
    assert runtime["type"] == "envoy_proxy" and runtime["config"]["root_ids"] == ["jira-entra-guard"]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.module.wasm.config.v1+json", "application/vnd.module.wasm.content.layer.v1+wasm"]
    assert load(manifest["layers"][0]) == json.dumps(runtime, separators=(",", ":")).encode()
    assert load(manifest["layers"][1]) == module

    # The compat variant: one gzipped tar layer holding plugin.wasm.
    manifest = json.loads(load(by_name["9.9.9-test-compat"]))
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    [layer] = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    tar_bytes = gzip.decompress(load(layer))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        assert archive.getnames() == ["plugin.wasm"]
        assert archive.extractfile("plugin.wasm").read() == module
    config = json.loads(load(manifest["config"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [sha256(tar_bytes)]}

    stored = {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert stored == referenced, "the layout holds blobs no manifest names"


def test_oci_layout_is_reproducible_and_can_hold_one_variant(workdir):
    first, second, single = workdir / "oci-a", workdir / "oci-b", workdir / "oci-single"
    build_layout(first)
    build_layout(second)
    assert (first / "index.json").read_bytes() == (second / "index.json").read_bytes()
    build_layout(single, "--variant", "compat", "--tag", "1.2.3")
    index = json.loads((single / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["1.2.3"]
    manifest = json.loads(blob(single, index["manifests"][0]))
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"


def test_oci_script_refuses_a_file_that_is_not_a_module(workdir):
    bogus = workdir / "not-a-module.wasm"
    bogus.write_bytes(b"#!/bin/sh\n")
    out = subprocess.run(["scripts/oci-image.sh", "--out", str(workdir / "oci-bogus"), "--wasm", str(bogus)],
                         cwd=s.ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "is not a WebAssembly module" in out.stderr
    assert not (workdir / "oci-bogus").exists()
