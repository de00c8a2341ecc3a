#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing (scripts/setup.sh), then
# format, lint (host and wasm32), unit tests natively and inside a WASI runtime, the alert rules'
# unit tests (promtool), the release build and its import check, the local stack's self-check,
# and the end-to-end tests that run the built .wasm in a real Envoy (with the deployment files
# and the OCI packaging).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup"
scripts/setup.sh

step "format"
cargo fmt --all --check

step "lint (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "lint (wasm32-wasip1)"
# The CLI (cli/) is a host tool: it never runs inside Envoy.
cargo clippy --workspace --exclude jira-entra-guard-cli --target wasm32-wasip1 --locked -- -D warnings

step "unit tests (native)"
cargo test --workspace --locked

step "unit tests of the core inside Wasm (node:wasi)"
cargo test -p jira-entra-guard-core --target wasm32-wasip1 --locked

step "alert rules: promtool check and unit tests (deploy/observability/)"
promtool check rules deploy/observability/alerts.yaml
promtool test rules deploy/observability/alerts.test.yaml

step "fuzzing: every cargo-fuzz target for 30s (docs/hardening.md)"
scripts/fuzz.sh 30

step "release build"
scripts/build.sh
node scripts/check-wasm-imports.mjs target/wasm32-wasip1/release/jira_entra_guard.wasm

step "local stack self-check"
.venv/bin/python stack/selfcheck.py

step "end-to-end tests in a real Envoy"
.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider "$@"

step "README command 1 (the demo), non-interactive"
scripts/demo.sh --check
