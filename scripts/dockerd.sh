#!/usr/bin/env bash
# Starts the Docker engine where it is installed but not running (one daemon per host: does
# nothing when `docker info` already answers), waits until it answers. Installs docker.io
# and docker-compose from Debian when missing.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io docker-compose
fi
docker info >/dev/null 2>&1 && exit 0
log="${TMPDIR:-/tmp}/whisk-dockerd.log"
echo "starting dockerd (log: $log)" >&2
($SUDO dockerd >"$log" 2>&1 &)
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "dockerd did not start:" >&2
tail -20 "$log" >&2
exit 1
