#!/usr/bin/env bash
# Makes the certificates of a deployment (the seed's key_gen.sh, with a CA instead of one
# self-signed certificate):
#   OUT/ca.crt, OUT/ca.key          the private CA (reused when present: clients keep trusting it)
#   OUT/domain.crt, OUT/domain.key  a server certificate for HOST... (chain: server, then CA)
# The gateway serves domain.crt/domain.key; the private registry (run_registry.sh) too; clients
# trust ca.crt (`whisk --cacert OUT/ca.crt`, docker via set_certs.sh) or skip checks (`-i`).
#
# Tool: `whisk certs` (rcgen, no openssl needed) when the whisk binary has it, else openssl.
# Force one with CERT_TOOL=whisk|openssl. Keys are ECDSA P-256 either way.
#
# usage: key_gen.sh [-o OUT] [-d DAYS] [-n CA_NAME] [HOST...]
#   OUT defaults to certs/out beside this script; DAYS to 825; HOST to $(hostname -f),
#   localhost and 127.0.0.1. Hosts may be DNS names or IP addresses.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"
days=825
ca_name="whisk-rs CA"
while getopts "o:d:n:h" opt; do
  case "$opt" in
    o) out="$OPTARG" ;;
    d) days="$OPTARG" ;;
    n) ca_name="$OPTARG" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
hosts=("$@")
if [ ${#hosts[@]} -eq 0 ]; then
  hosts=("$(hostname -f 2>/dev/null || hostname)" localhost 127.0.0.1)
fi
case "$days" in ''|*[!0-9]*) echo "key_gen.sh: DAYS must be a number" >&2; exit 2 ;; esac

tool="${CERT_TOOL:-}"
whisk_bin="${WHISK:-whisk}"
if [ -z "$tool" ]; then
  if command -v "$whisk_bin" >/dev/null 2>&1 && "$whisk_bin" certs --help >/dev/null 2>&1; then
    tool=whisk
  else
    tool=openssl
  fi
fi

mkdir -p "$out"
case "$tool" in
  whisk)
    "$whisk_bin" certs --out "$out" --days "$days" --ca-name "$ca_name" "${hosts[@]}"
    ;;
  openssl)
    command -v openssl >/dev/null || { echo "key_gen.sh: neither 'whisk certs' nor openssl found" >&2; exit 1; }
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    umask 077
    if [ ! -s "$out/ca.crt" ] || [ ! -s "$out/ca.key" ]; then
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key"
      ca_days=$(( days > 3650 ? days : 3650 ))
      openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$ca_days" \
        -subj "/CN=$ca_name/O=whisk-rs" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$out/ca.crt"
      chmod 644 "$out/ca.crt"
    fi
    san=""
    for h in "${hosts[@]}"; do
      if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
    done
    cat > "$tmp/ext.cnf" <<EXT
subjectAltName=${san%,}
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/domain.key"
    openssl req -new -key "$tmp/domain.key" -subj "/CN=${hosts[0]}" -out "$tmp/domain.csr"
    openssl x509 -req -in "$tmp/domain.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
      -extfile "$tmp/ext.cnf" -out "$tmp/leaf.crt" 2>/dev/null
    cat "$tmp/leaf.crt" "$out/ca.crt" > "$tmp/domain.crt"
    chmod 644 "$tmp/domain.crt"
    # Rename into place: a gateway reloading on SIGHUP never reads half a file.
    mv "$tmp/domain.key" "$out/domain.key"
    mv "$tmp/domain.crt" "$out/domain.crt"
    ;;
  *) echo "key_gen.sh: CERT_TOOL must be whisk or openssl" >&2; exit 2 ;;
esac
echo "certificates in $out (tool: $tool; hosts: ${hosts[*]})"
