#!/usr/bin/env bash
# Soak run (not part of scripts/test.sh): one Envoy with the filter under mixed wrk load for a
# bounded time while the emulator rotates keys and its key server fails in turn. Installs wrk
# when it is missing, builds the module, then runs scripts/soak.py with the arguments given
# (--duration SECONDS, --phase-seconds, --connections, --max-requests; see --help).
# Exits non-zero on any wrong decision. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "soak: installing wrk" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq wrk
fi
if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/envoy ]; then
  scripts/setup.sh
fi
scripts/build.sh
exec .venv/bin/python scripts/soak.py "$@"
