#!/usr/bin/env bash
# Generates the demo client credentials used by the local stack and the tests:
# for every client an unencrypted RSA-2048 private key (PKCS#8 PEM, NAME.key)
# and a self-signed certificate (CN=NAME, valid 10 years, NAME.crt).
#
# DEMO ONLY: these keys are published in the repository and must never be
# registered with a real Entra ID tenant.
#
# Usage: stack/pki/make-client-certs.sh [--force]
#   Existing files are kept unless --force is given.
set -euo pipefail

cd "$(dirname "$0")"

CLIENTS=(reporting-bot ci-pipeline legacy-sync intruder partner-sync)
FORCE=0
if [[ "${1:-}" == "--force" ]]; then
  FORCE=1
fi

for name in "${CLIENTS[@]}"; do
  if [[ $FORCE -eq 0 && -f "$name.key" && -f "$name.crt" ]]; then
    echo "keeping existing $name.key / $name.crt"
    continue
  fi
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -pkeyopt rsa_keygen_pubexp:65537 -out "$name.key" 2>/dev/null
  openssl req -x509 -new -sha256 -key "$name.key" -subj "/CN=$name" \
    -days 3650 -out "$name.crt"
  chmod 0644 "$name.key" "$name.crt"
  echo "generated $name.key / $name.crt"
done
