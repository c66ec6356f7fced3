#!/usr/bin/env bash
# Sends the CA certificate to the nodes and makes them trust it (the seed's cert_dist.sh).
# Only ca.crt and set_certs.sh travel: private keys stay on this node.
#
# usage: cert_dist.sh [-o OUT] [-u USER] [-r REGISTRY] [-s] NODE...
#   OUT defaults to certs/out beside this script; REGISTRY (host:port of run_registry.sh) to
#   $(hostname -f):444; -s also installs the CA in each node's system store. NODE... defaults to
#   $NODES (space separated). Needs ssh access and sudo on the nodes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
user="${USER:-$(id -un)}"
registry="$(hostname -f 2>/dev/null || hostname):444"
system=""
while getopts "o:u:r:sh" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    u) user="$OPTARG" ;;
    r) registry="$OPTARG" ;;
    s) system="-s" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
nodes=("$@")
if [ ${#nodes[@]} -eq 0 ]; then read -r -a nodes <<< "${NODES:-}"; fi
[ ${#nodes[@]} -gt 0 ] || { echo "cert_dist.sh: no nodes given (arguments or NODES)" >&2; exit 2; }
[ -s "$out/ca.crt" ] || { echo "cert_dist.sh: $out/ca.crt missing (run key_gen.sh first)" >&2; exit 1; }

for node in "${nodes[@]}"; do
  echo "== $node"
  ssh "$user@$node" 'mkdir -p ~/whisk-certs'
  scp -q "$out/ca.crt" "$here/set_certs.sh" "$user@$node:whisk-certs/"
  ssh "$user@$node" "sudo bash ~/whisk-certs/set_certs.sh -c ~/whisk-certs/ca.crt $system '$registry'"
done
