#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a while: `scripts/fuzz.sh [seconds-per-target]
# [target...]` (default 60 seconds, every target). cargo-fuzz (libFuzzer) is installed from
# crates.io when missing.
#
# The checked-in seeds (fuzz/corpus/<target>) are only read; what the fuzzer finds goes to
# fuzz/target/corpus/<target> (not checked in) and is reused by the next run. A crash stops the
# script with a failure and leaves the reproducer in fuzz/artifacts/<target>/: turn it into a
# regression test (`cargo fuzz fmt --fuzz-dir fuzz <target> <file>` shows the input).
#
# How the targets are built. By default: optimised, without AddressSanitizer, overflow checks
# and comparison tracing, with the project's pinned toolchain, in fuzz/target/plain.
# token_verify and jwks_parse spend their time in RSA arithmetic (a signature per input; key
# construction and verification per key), where that instrumentation costs ~0.3 s per signature
# and leaves a few inputs a second; the core is `forbid(unsafe_code)` and the targets'
# invariants are assertions, which need no sanitizer; and one build for all five keeps this step
# short in scripts/test.sh. FUZZ_ASAN=1 builds config_parse, path_acl and json_strict with cargo-fuzz's
# default instead (AddressSanitizer, debug assertions, comparison tracing), which needs the
# nightly toolchain: that is how their long runs in docs/hardening.md were made.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(token_verify jwks_parse config_parse path_acl json_strict)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# The cargo-fuzz command line (toolchain and build flags) of a target.
fuzz_command() {
  case "$1" in
    config_parse | path_acl | json_strict)
      if [ "${FUZZ_ASAN:-0}" = 1 ]; then
        if ! cargo +nightly --version >/dev/null 2>&1; then
          echo "fuzz: FUZZ_ASAN=1 needs the nightly toolchain (cargo +nightly)" >&2
          exit 1
        fi
        echo "cargo +nightly fuzz run"
        return
      fi
      ;;
  esac
  echo "cargo fuzz run -O --sanitizer none --no-trace-compares --target-dir fuzz/target/plain"
}

for target in "${targets[@]}"; do
  command=$(fuzz_command "$target")
  work=fuzz/target/corpus/$target
  mkdir -p "$work"
  echo "fuzz: $target for ${seconds}s"
  log=fuzz/target/$target.log
  # shellcheck disable=SC2086 # the command is words
  if ! $command --fuzz-dir fuzz "$target" "$work" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/, log $log)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
  echo "fuzz: $target ok: $runs executions in ${seconds}s, $cov, corpus $(ls "$work" | wc -l) entries"
done
