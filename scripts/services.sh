#!/usr/bin/env bash
# The real services of distributed mode, for developers, tests and CI alike:
# a Kafka-protocol broker (tansu), a CouchDB-compatible server (pouchdb-server) and Redis.
#
#   scripts/services.sh up     install what is missing, start all three, wait until they answer
#   scripts/services.sh down   stop exactly what `up` started (pid files)
#   scripts/services.sh env    print the settings that point whisk at them
#
# State, logs and pid files live under $WHISK_SERVICES_DIR (default .whisk/services);
# ports: WHISK_KAFKA_PORT (9092), WHISK_COUCHDB_PORT (5984), WHISK_REDIS_PORT (6379).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=kafka.sh
source "$here/kafka.sh"
# shellcheck source=couchdb.sh
source "$here/couchdb.sh"

redis__dir() { echo "${WHISK_SERVICES_DIR:-.whisk/services}/redis"; }
redis__port() { echo "${WHISK_REDIS_PORT:-6379}"; }

redis_up() {
  if ! command -v redis-server >/dev/null 2>&1; then
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q redis-server
  fi
  local dir; dir="$(redis__dir)"; mkdir -p "$dir"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then return 0; fi
  redis-server --port "$(redis__port)" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --daemonize yes --pidfile "$(cd "$dir" && pwd)/pid" --logfile "$(cd "$dir" && pwd)/redis.log"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$(redis__port)") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "redis: did not start (see $dir/redis.log)" >&2; return 1
}

redis_down() {
  local pidfile; pidfile="$(redis__dir)/pid"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
}

case "${1:-}" in
  up) kafka_up; couchdb_up; redis_up ;;
  down) kafka_down || true; couchdb_down || true; redis_down ;;
  env)
    kafka_env
    couchdb_env
    echo "WHISK_DIRECTORY__REDIS_URL=redis://127.0.0.1:$(redis__port)"
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
