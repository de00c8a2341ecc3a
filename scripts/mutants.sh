#!/usr/bin/env bash
# Mutation testing of the security-critical core files: `scripts/mutants.sh [file...]` (default:
# token/{verify,claims,jws,bearer,strict_json}.rs, policy/{acl,jql,scope,strict_json}.rs, hex.rs,
# path.rs, keys/{jwks,lifecycle}.rs, cloud.rs, decide.rs, outcome.rs, held_requests.rs, reply.rs,
# audit.rs, metrics.rs, request.rs, keys/fixed.rs). cargo-mutants is installed from crates.io when missing.
#
# Each file is run on its own, one mutant at a time, against the core crate's tests only (unit,
# Wycheproof and fuzz-regression tests): the shell and the CLI cannot catch a core mutant the
# core tests miss, and building them would multiply the time. Dependencies are built optimised
# (the `mutants` profile in Cargo.toml) so the RSA arithmetic of the tests is fast, while the
# mutated crate itself is built without optimisation and so rebuilds quickly for each mutant.
#
# Results go to target/mutants/<path>/mutants.out, <path> being the file's path under core/src
# with `/` written `-` and without `.rs` (token-strict_json, policy-strict_json, keys-jwks), so
# files that share a name keep their own results: caught.txt, missed.txt, timeout.txt and
# unviable.txt. The script fails when a mutant survives that is not listed in
# docs/hardening.md's table of equivalent and message-text-only mutants.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
  cargo install cargo-mutants --locked
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(
    core/src/hex.rs
    core/src/token/verify.rs core/src/token/claims.rs core/src/token/jws.rs
    core/src/token/bearer.rs core/src/token/strict_json.rs core/src/policy/acl.rs
    core/src/policy/jql.rs core/src/policy/scope.rs core/src/policy/strict_json.rs
    core/src/path.rs core/src/keys/jwks.rs core/src/keys/lifecycle.rs core/src/cloud.rs
    core/src/decide.rs core/src/outcome.rs core/src/held_requests.rs core/src/reply.rs
    core/src/audit.rs core/src/metrics.rs core/src/request.rs core/src/keys/fixed.rs
  )
fi

accepted=docs/hardening.md
# One build directory for every run: the optimised dependencies are built once, not once for
# each file's copy of the tree.
export CARGO_TARGET_DIR="$PWD/target/mutants-build"
status=0
for file in "${files[@]}"; do
  name=${file#core/src/}
  name=${name%.rs}
  name=${name//\//-}
  out=target/mutants/$name
  mkdir -p "$out"
  echo "== $file"
  # Exit code 2: some mutants were missed (judged below against the accepted list); 3: some
  # timed out (a mutant that hangs the tests is caught). The core's tests take seconds, so
  # MUTANTS_TIMEOUT (seconds per mutant's test run, default 300) can be lowered so that mutants
  # which loop forever cost less time.
  cargo mutants --package jira-entra-guard-core --test-package jira-entra-guard-core \
    --file "$file" --profile mutants \
    --jobs 1 --timeout "${MUTANTS_TIMEOUT:-300}" --baseline skip --output "$out" --no-shuffle || { rc=$?; [ $rc -eq 2 ] || [ $rc -eq 3 ]; }
  missed=$out/mutants.out/missed.txt
  [ -f "$missed" ] || continue
  while IFS= read -r mutant; do
    [ -n "$mutant" ] || continue
    # The accepted list names a mutant by its file, line and replacement as cargo-mutants
    # prints it, without the column: `core/src/x.rs:12: replace > with >= in f`.
    key=$(printf '%s' "$mutant" | sed -E 's/^([^:]+:[0-9]+):[0-9]+:/\1:/')
    # (Markdown escapes `|` inside a table as `\|`.)
    if sed 's/\\|/|/g' "$accepted" | grep -qF -- "\`$key\`"; then
      echo "accepted: $mutant"
    else
      echo "SURVIVED: $mutant"
      status=1
    fi
  done <"$missed"
done
exit $status
