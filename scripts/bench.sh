#!/usr/bin/env bash
# Benchmarks jira-entra-guard in Envoy against Envoy's native jwt_authn + rbac (bench/README.md).
#
#   scripts/bench.sh            full run: 3 rounds of 10 s runs per configuration, warm and cold
#   scripts/bench.sh --quick    smoke run: 1 round of 2 s runs, small token pools
#   scripts/bench.sh --core     only the native micro-benchmarks of the core (criterion)
#   scripts/bench.sh --host-costs   what Envoy charges per proxy-wasm host operation
#                               (bench/host_costs.py, ~5 min), next to the filter's warm cost
#
# Other options go to bench/run_bench.py (--duration, --rounds, --cold-tokens, --memory-tokens,
# --connections, --keep-workdir). Installs what it needs: wrk (apt), the project venv with Envoy
# (scripts/setup.sh), the release filter (scripts/build.sh) and the no-op baseline filter.
# Everything runs on 127.0.0.1; every process started is stopped at the end and on Ctrl-C.
# Exits 0 whatever the ratios: it measures, it does not judge.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--core" ]; then
  shift
  echo "bench: native micro-benchmarks of the core (bench/core-bench, criterion)"
  cd bench/core-bench
  exec cargo bench --bench decision "$@"
fi

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; then
    "${sudo_cmd[@]}" apt-get update
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
  fi
fi

scripts/setup.sh
scripts/build.sh

echo "bench: building the no-op baseline filter (bench/noop-filter)"
(cd bench/noop-filter && cargo build --release --target wasm32-wasip1)
noop=bench/noop-filter/target/wasm32-wasip1/release/bench_noop_filter.wasm
echo "built $noop ($(stat -c %s "$noop") bytes)"

if [ "${1:-}" = "--host-costs" ]; then
  shift
  echo "bench: building the host-cost probe (bench/host-cost-probe)"
  (cd bench/host-cost-probe && cargo build --release --target wasm32-wasip1)
  exec .venv/bin/python bench/host_costs.py "$@"
fi

exec .venv/bin/python bench/run_bench.py "$@"
