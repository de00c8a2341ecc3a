#!/usr/bin/env bash
# Builds the release filter: target/wasm32-wasip1/release/jira_entra_guard.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-wasip1 -p jira-entra-guard
wasm=target/wasm32-wasip1/release/jira_entra_guard.wasm
echo "built $wasm ($(stat -c %s "$wasm") bytes)"
