#!/usr/bin/env bash
# Runs the private Docker registry with the deployment's server certificate (the seed's
# run_registry.sh; port 444 as in the seed). The certificate must name the registry's host:
# `key_gen.sh node-0.example ...` first; nodes trust it after set_certs.sh node-0.example:444.
#
# usage: run_registry.sh [-o OUT] [-p PORT] [-n NAME]
#   OUT (with domain.crt and domain.key) defaults to certs/out beside this script.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
port=444
name=registry
while getopts "o:p:n:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    p) port="$OPTARG" ;;
    n) name="$OPTARG" ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
done
out="$(cd "$out" && pwd)"
for f in domain.crt domain.key; do
  [ -s "$out/$f" ] || { echo "run_registry.sh: $out/$f missing (run key_gen.sh first)" >&2; exit 1; }
done
docker rm -f "$name" >/dev/null 2>&1 || true
docker run -d --restart=always --name "$name" \
  -v "$out":/certs:ro \
  -e REGISTRY_HTTP_ADDR="0.0.0.0:$port" \
  -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt \
  -e REGISTRY_HTTP_TLS_KEY=/certs/domain.key \
  -p "$port:$port" registry:2
