#!/usr/bin/env bash
# Renders nginx.conf.template into a scratch folder and runs nginx in the foreground, for the
# benchmark against the gateway (Debian: `apt-get install nginx-light` or `nginx`).
#
# usage: run.sh [-p HTTP_PORT] [-s HTTPS_PORT] [-c CERT_DIR] [-w WORKERS] [-l] CONTROLLER...
#   CONTROLLER is host:port (default 127.0.0.1:3233); CERT_DIR holds domain.crt/domain.key
#   (default certs/out, see certs/key_gen.sh); WORKERS defaults to auto; -l turns the access log
#   on (to PREFIX/access.log). PREFIX is $NGINX_PREFIX or a fresh temporary folder.
#   `run.sh -t ...` only checks the rendered configuration.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
http_port=8080
https_port=8443
cert_dir="$here/../../certs/out"
workers=auto
access_log=off
test_only=0
while getopts "p:s:c:w:lth" opt; do
  case "$opt" in
    p) http_port="$OPTARG" ;;
    s) https_port="$OPTARG" ;;
    c) cert_dir="$OPTARG" ;;
    w) workers="$OPTARG" ;;
    l) access_log=1 ;;
    t) test_only=1 ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
controllers=("$@")
[ ${#controllers[@]} -gt 0 ] || controllers=(127.0.0.1:3233)
cert_dir="$(cd "$cert_dir" && pwd)"
prefix="${NGINX_PREFIX:-$(mktemp -d /tmp/whisk-nginx.XXXXXX)}"
mkdir -p "$prefix"
if [ "$access_log" = 1 ]; then access_log="$prefix/access.log combined-upstream"; fi

servers=""
for c in "${controllers[@]}"; do servers+="        server $c;"$'\n'; done
conf="$prefix/nginx.conf"
# Each value is substituted literally (no sed metacharacters in paths and ports expected).
awk -v controllers="${servers%$'\n'}" -v http="$http_port" -v https="$https_port" \
    -v cert="$cert_dir/domain.crt" -v key="$cert_dir/domain.key" -v prefix="$prefix" \
    -v workers="$workers" -v alog="$access_log" '
  /^[[:space:]]*#/ { print; next }
  { gsub(/@CONTROLLERS@/, controllers); gsub(/@HTTP_PORT@/, http); gsub(/@HTTPS_PORT@/, https);
    gsub(/@CERT@/, cert); gsub(/@KEY@/, key); gsub(/@PREFIX@/, prefix);
    gsub(/@WORKERS@/, workers); gsub(/@ACCESS_LOG@/, alog); print }' \
  "$here/nginx.conf.template" > "$conf"
echo "nginx configuration: $conf" >&2
if [ "$test_only" = 1 ]; then
  exec nginx -t -p "$prefix" -c "$conf"
fi
exec nginx -p "$prefix" -c "$conf"
