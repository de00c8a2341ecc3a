#!/usr/bin/env bash
# Cargo runner for wasm32-wasip1 (see .cargo/config.toml): runs the module under Node's WASI.
exec node --no-warnings "$(dirname "$0")/wasi-runner.mjs" "$@"
