#!/usr/bin/env bash
# The local stack, from nothing: installs what is missing, builds the filter, starts the Entra ID
# emulator (https://127.0.0.1:8090, certificate from the local CA stack/tls/ca.crt), the Jira
# stand-in (127.0.0.1:8091) and Envoy with envoy.yaml (127.0.0.1:10000, admin 127.0.0.1:9901),
# then shows service clients (MSAL) calling Jira through the filter. It keeps running until
# Ctrl-C; `--check` runs the demonstration and stops. `--observe` also starts Prometheus
# (127.0.0.1:9090) scraping Envoy with the shipped alert rules (deploy/observability/), and
# prints queries to try.
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
observe=false
for arg in "$@"; do
  case "$arg" in
    --check) check_only=true ;;
    --observe) observe=true ;;
    *) echo "usage: scripts/demo.sh [--check] [--observe]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh
scripts/build.sh

PY=.venv/bin/python
logs=$(mktemp -d /tmp/jira-entra-guard-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1; logs in $logs" >&2
  exit 1
}

$PY stack/entra_emulator.py --config stack/entra-emulator.json --port 8090 >"$logs/entra.log" 2>&1 &
pids+=($!)
$PY stack/jira_standin.py --port 8091 >"$logs/jira.log" 2>&1 &
pids+=($!)
wait_port 8090; wait_port 8091
# Envoy starts once the emulator listens: the filter fetches its key sets on its first ticks.
.venv/bin/envoy -c envoy.yaml --use-dynamic-base-id -l info >"$logs/envoy.log" 2>&1 &
pids+=($!)
wait_port 10000

if $observe; then
  # Prometheus with its own configuration and data in the log directory: Envoy's admin
  # /stats/prometheus every 5 s, the shipped alert rules evaluated as often.
  cat >"$logs/prometheus.yml" <<EOF_PROM
global: {scrape_interval: 5s, evaluation_interval: 5s}
rule_files: ["$PWD/deploy/observability/alerts.yaml"]
scrape_configs:
- job_name: jira-entra-guard
  metrics_path: /stats/prometheus
  static_configs: [{targets: ["127.0.0.1:9901"]}]
EOF_PROM
  prometheus --config.file="$logs/prometheus.yml" --storage.tsdb.path="$logs/prometheus-data" \
    --web.listen-address=127.0.0.1:9090 --log.level=warn >"$logs/prometheus.log" 2>&1 &
  pids+=($!)
  wait_port 9090
fi

TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
CA=stack/tls/ca.crt

# The demonstration starts once the filter holds the tenant's keys (its usable_keys gauge), so
# that a first fetch that failed and waits for its retry does not answer the first call 503.
for _ in $(seq 1 300); do
  curl -s http://127.0.0.1:9901/stats/prometheus \
    | grep -Eq "^jira_entra_guard_usable_keys\{tenant=\"$TENANT\"\} [1-9]" && break
  sleep 0.1
done
if ! curl -s http://127.0.0.1:9901/stats/prometheus \
    | grep -Eq "^jira_entra_guard_usable_keys\{tenant=\"$TENANT\"\} [1-9]"; then
  echo "demo: the filter holds no key set for tenant $TENANT after 30 s; logs in $logs" >&2
  exit 1
fi
client() { # name app-id method path [client options]
  $PY stack/jira_client.py --authority https://127.0.0.1:8090 --tenant "$TENANT" \
    --client-id "$2" --cert "stack/pki/$1.crt" --key "stack/pki/$1.key" \
    --scope api://jira-gateway/.default --jira http://127.0.0.1:10000 "$3" "$4" "${@:5}"
}
expect() { # expected-status description command...
  local want=$1 what=$2; shift 2
  echo
  echo "--- $what (expect HTTP $want)"
  local out; out=$("$@" 2>&1 || true)
  echo "$out"
  if ! grep -q "HTTP $want" <<<"$out"; then
    echo "demo: expected HTTP $want; logs in $logs" >&2
    exit 1
  fi
}

echo "Entra ID emulator: https://127.0.0.1:8090, certificate issued by the local CA $PWD/$CA"
echo "  Point a client at it: REQUESTS_CA_BUNDLE=$PWD/$CA (MSAL, Azure Identity, requests),"
echo "  curl --cacert $CA, or SSL_CERT_FILE=$PWD/$CA (Python's ssl, OpenSSL-based tools)."

expect 200 "reporting-bot gets a token with MSAL and its certificate, and reads Jira" \
  client reporting-bot 3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01 GET /rest/api/2/myself
expect 200 "ci-pipeline sends its certificate (MSAL signs PS256 with x5c) and reads OPS-1" \
  client ci-pipeline 8d1e7c62-2f4b-4d57-8a0e-7c0a55a1b202 GET /rest/api/2/issue/OPS-1 --send-x5c
expect 401 "the same call without a token" \
  curl -s -w '\nHTTP %{http_code}\n' http://127.0.0.1:10000/rest/api/2/myself
expect 403 "reporting-bot tries to create an issue (method not in its ACL)" \
  client reporting-bot 3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01 POST /rest/api/2/issue
expect 403 "reporting-bot asks for a path outside its ACL" \
  client reporting-bot 3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01 GET /rest/api/2/serverInfo
expect 403 "intruder has a valid Entra token but is not a configured client" \
  client intruder 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01 GET /rest/api/2/myself

echo
echo "All demonstrated. Logs: $logs"
if $observe; then
  # The demonstration's decisions, as Prometheus has them (scraped every 5 s).
  query() { curl -s --get --data-urlencode "query=$1" http://127.0.0.1:9090/api/v1/query; }
  for _ in $(seq 1 60); do
    grep -q '"reason":"acl"' <<<"$(query jira_entra_guard_denied_total)" && break
    sleep 0.5
  done
  if ! grep -q '"reason":"acl"' <<<"$(query jira_entra_guard_denied_total)"; then
    echo "demo: Prometheus has not scraped the filter's stats; logs in $logs" >&2
    exit 1
  fi
  cat <<EOF_OBSERVE

Prometheus                  http://127.0.0.1:9090   (alerts: http://127.0.0.1:9090/alerts)
  Queries to try (Graph tab; the dashboard deploy/observability/dashboard.json has them all):
    sum by (reason) (rate(jira_entra_guard_denied_total[1m]))         denials by reason
    sum by (cause) (jira_entra_guard_invalid_token_total)             refused tokens by cause
    jira_entra_guard_key_set_age_seconds                              key-set age per tenant
    jira_entra_guard_usable_keys                                      usable keys per tenant
    sum by (outcome) (jira_entra_guard_key_fetch_total)               key-set fetches
    sum(rate(jira_entra_guard_token_cache_total{result="hit"}[1m]))
      / sum(rate(jira_entra_guard_token_cache_total[1m]))             token cache hit ratio
EOF_OBSERVE
fi
if $check_only; then exit 0; fi
cat <<EOF2

Running (Ctrl-C stops everything):
  Jira through the filter   http://127.0.0.1:10000   (try: curl -i http://127.0.0.1:10000/status)
  Envoy admin               http://127.0.0.1:9901
  Entra ID emulator         https://127.0.0.1:8090/$TENANT/v2.0/.well-known/openid-configuration
                            (curl --cacert $CA ...; the CA to trust: $PWD/$CA)
  Jira stand-in (direct)    http://127.0.0.1:8091
  A client call:            $PY stack/jira_client.py --authority https://127.0.0.1:8090 --tenant $TENANT \\
                              --client-id 3c5a0b5e-6b63-4b1b-9a39-0f0d2f0c1a01 --cert stack/pki/reporting-bot.crt \\
                              --key stack/pki/reporting-bot.key --scope api://jira-gateway/.default \\
                              --jira http://127.0.0.1:10000 GET /rest/api/2/search
EOF2
wait
