#!/usr/bin/env bash
# Packages the release filter as an OCI image layout that Istio (WasmPlugin `url: oci://...`)
# and Envoy Gateway (EnvoyExtensionPolicy `code.type: Image`) pull, without Docker:
#
#   DIR/oci-layout, DIR/index.json, DIR/blobs/sha256/<digest>
#
# Two images, named in index.json by `org.opencontainers.image.ref.name`:
#   TAG         the Wasm artifact ("oci") variant: config and first layer the runtime config
#               (application/vnd.module.wasm.config.v1+json), second layer the raw module
#               (application/vnd.module.wasm.content.layer.v1+wasm);
#   TAG-compat  the "compat" variant, an ordinary OCI image whose single layer is a gzipped tar
#               holding plugin.wasm, for registries that refuse custom media types.
# Both are reproducible: the same .wasm gives the same digests.
#
# Usage: scripts/oci-image.sh [--out DIR] [--tag TAG] [--wasm FILE] [--variant both|oci|compat]
#   --out      layout directory, replaced if it exists (default target/oci/jira-entra-guard)
#   --tag      reference name (default: the crate version, e.g. 0.1.0)
#   --wasm     module to package (default: the release build, built if missing)
#   --variant  which image(s) to put in the layout (default both; `crane push` wants one)
#
# Pushing (docs/operations-tools.md):
#   oras cp --from-oci-layout DIR:TAG registry.example.com/jira-entra-guard:TAG
#   skopeo copy oci:DIR:TAG-compat docker://registry.example.com/jira-entra-guard:TAG
#   crane push DIR registry.example.com/jira-entra-guard:TAG   (a layout with one image)
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/oci/jira-entra-guard
tag=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
wasm=target/wasm32-wasip1/release/jira_entra_guard.wasm
variant=both
default_wasm=1

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --wasm) wasm=${2:?--wasm needs a file}; default_wasm=0; shift 2 ;;
    --variant) variant=${2:?--variant needs both, oci or compat}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "oci-image: unknown argument $1" >&2; usage ;;
  esac
done
case "$variant" in both|oci|compat) ;; *) echo "oci-image: --variant must be both, oci or compat" >&2; exit 2 ;; esac
# A reference name may not contain characters a registry tag cannot have.
if ! [[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
  echo "oci-image: $tag is not a valid tag" >&2
  exit 2
fi
if [ ! -f "$wasm" ]; then
  if [ "$default_wasm" = 1 ]; then
    scripts/build.sh
  else
    echo "oci-image: $wasm does not exist" >&2
    exit 2
  fi
fi
if [ "$(head -c 4 "$wasm" | od -An -tx1 | tr -d ' \n')" != "0061736d" ]; then
  echo "oci-image: $wasm is not a WebAssembly module" >&2
  exit 2
fi

rm -rf "$out"
mkdir -p "$out/blobs/sha256"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Stores a file as a blob; sets $digest (sha256:...) and $size.
put_blob() {
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  install -m 0644 "$1" "$out/blobs/sha256/$hex"
  digest="sha256:$hex"
  size=$(stat -c %s "$1")
}

manifests=()

# The Wasm artifact variant. The runtime config is both the manifest's config and its first
# layer: Istio's and Envoy Gateway's fetchers expect exactly two layers in this variant.
oci_variant() {
  printf '%s' '{"type":"envoy_proxy","abiVersions":["proxy_abi_version_0_2_1"],"config":{"root_ids":["jira-entra-guard"]}}' \
    > "$work/runtime-config.json"
  put_blob "$work/runtime-config.json"
  local config_digest=$digest config_size=$size
  put_blob "$wasm"
  local wasm_digest=$digest wasm_size=$size
  printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.module.wasm.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.module.wasm.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size,\"annotations\":{\"org.opencontainers.image.title\":\"runtime-config.json\"}},{\"mediaType\":\"application/vnd.module.wasm.content.layer.v1+wasm\",\"digest\":\"$wasm_digest\",\"size\":$wasm_size,\"annotations\":{\"org.opencontainers.image.title\":\"plugin.wasm\"}}],\"annotations\":{\"org.opencontainers.image.title\":\"jira-entra-guard\",\"org.opencontainers.image.version\":\"$tag\"}}" \
    > "$work/manifest-oci.json"
  put_blob "$work/manifest-oci.json"
  manifests+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$digest\",\"size\":$size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$tag\"}}")
  echo "oci-image: $tag         $digest (Wasm artifact variant)"
}

# The compat variant: a tar with plugin.wasm, fixed owner and time so the digest is stable.
compat_variant() {
  mkdir -p "$work/rootfs"
  cp "$wasm" "$work/rootfs/plugin.wasm"
  chmod 0644 "$work/rootfs/plugin.wasm"
  tar --format=ustar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$work/rootfs" -cf "$work/layer.tar" plugin.wasm
  local diff_id
  diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
  gzip -n -9 -c "$work/layer.tar" > "$work/layer.tar.gz"
  put_blob "$work/layer.tar.gz"
  local layer_digest=$digest layer_size=$size
  printf '%s' "{\"architecture\":\"wasm\",\"os\":\"wasip1\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$diff_id\"]}}" \
    > "$work/config-compat.json"
  put_blob "$work/config-compat.json"
  local config_digest=$digest config_size=$size
  printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$layer_digest\",\"size\":$layer_size}],\"annotations\":{\"module.wasm.image/variant\":\"compat\",\"org.opencontainers.image.title\":\"jira-entra-guard\",\"org.opencontainers.image.version\":\"$tag\"}}" \
    > "$work/manifest-compat.json"
  put_blob "$work/manifest-compat.json"
  local name=$tag-compat
  [ "$variant" = compat ] && name=$tag
  manifests+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$digest\",\"size\":$size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$name\"}}")
  echo "oci-image: $name  $digest (compat variant)"
}

case "$variant" in
  both) oci_variant; compat_variant ;;
  oci) oci_variant ;;
  compat) compat_variant ;;
esac

printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
joined=$(IFS=,; printf '%s' "${manifests[*]}")
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$joined]}" \
  > "$out/index.json"
echo "oci-image: layout in $out"
