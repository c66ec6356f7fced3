#!/usr/bin/env bash
# Makes this node trust the deployment's CA (the seed's set_certs.sh). Run as root on every
# node (cert_dist.sh does it over ssh):
#   - docker: /etc/docker/certs.d/REGISTRY/ca.crt, so `docker pull REGISTRY/image` works with
#     the private registry of run_registry.sh (REGISTRY = host:port, e.g. node-0.example:444);
#   - with -s, the system store too (/usr/local/share/ca-certificates + update-ca-certificates),
#     so that curl, the wsk CLI and the openwhisk npm client trust the gateway without -i.
#
# usage: set_certs.sh [-c CA_CRT] [-s] REGISTRY...
#   CA_CRT defaults to out/ca.crt beside this script, else ca.crt beside it (as copied by
#   cert_dist.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ca=""
system=0
while getopts "c:sh" opt; do
  case "$opt" in
    c) ca="$OPTARG" ;;
    s) system=1 ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ -z "$ca" ]; then
  if [ -s "$here/out/ca.crt" ]; then ca="$here/out/ca.crt"; else ca="$here/ca.crt"; fi
fi
[ -s "$ca" ] || { echo "set_certs.sh: no CA certificate at $ca (run key_gen.sh first)" >&2; exit 1; }
[ $# -gt 0 ] || [ "$system" -eq 1 ] || { echo "usage: set_certs.sh [-c CA_CRT] [-s] REGISTRY..." >&2; exit 2; }

for registry in "$@"; do
  dir="/etc/docker/certs.d/$registry"
  mkdir -p "$dir"
  install -m 644 "$ca" "$dir/ca.crt"
  echo "docker trusts $registry"
done
if [ "$system" -eq 1 ]; then
  install -D -m 644 "$ca" /usr/local/share/ca-certificates/whisk-rs-ca.crt
  update-ca-certificates >/dev/null
  echo "system store trusts $ca"
fi
