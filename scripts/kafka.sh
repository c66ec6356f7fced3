#!/usr/bin/env bash
# A Kafka-protocol broker for development, tests and CI: tansu (https://github.com/tansu-io/tansu),
# with in-memory storage or with SQLite storage in a file.
#
#   scripts/kafka.sh up       build tansu if missing, start it, wait until it accepts connections
#   scripts/kafka.sh down     stop the broker that `up` started (by its pid file)
#   scripts/kafka.sh env      print the environment that points whisk at it
#   scripts/kafka.sh status   say whether it runs
#   scripts/kafka.sh install  build tansu if missing and print the binary's path
#
# Settings (environment):
#   WHISK_CACHE         cache folder; the binary lives in $WHISK_CACHE/bin/tansu-whisk
#                       (default ~/.cache/whisk; built once by deploy/tansu/build.sh)
#   WHISK_SERVICES_DIR  state folder; pid and log under $WHISK_SERVICES_DIR/kafka/
#                       (default .whisk/services)
#   WHISK_KAFKA_HOST    listen address (default 127.0.0.1)
#   WHISK_KAFKA_PORT    listen port (default 9092)
#   WHISK_KAFKA_STORAGE memory (default) or sqlite
#   WHISK_TANSU_BIN     use this tansu binary instead of the cached one
#
# The broker is tansu 0.6.0 built from crates.io with both storage engines and a patch to its fetch
# (deploy/tansu/build.sh says what and why; 10-15 minutes with cargo, once per machine).
# Storage:
#   memory  memory://tansu/ (default): a restarted broker starts empty (no topics, offsets or
#           groups). The fastest: tests and benchmarks.
#   sqlite  sqlite://tansu.db in $WHISK_SERVICES_DIR/kafka/ (WAL; kept by `down`, delete the
#           folder to start empty): topics, messages, offsets and groups survive a restart.
#           About 1 ms more per message than memory.

# The functions (kafka_up, kafka_down, kafka_env, kafka_status, kafka_install) can be sourced
# by another script: `source scripts/kafka.sh` defines them without running anything.

kafka__cache() { echo "${WHISK_CACHE:-$HOME/.cache/whisk}"; }
kafka__dir() { echo "${WHISK_SERVICES_DIR:-.whisk/services}/kafka"; }
kafka__host() { echo "${WHISK_KAFKA_HOST:-127.0.0.1}"; }
kafka__port() { echo "${WHISK_KAFKA_PORT:-9092}"; }
kafka__log() { echo "kafka: $*" >&2; }
kafka__storage() { echo "${WHISK_KAFKA_STORAGE:-memory}"; }

# True when host:port accepts a TCP connection.
kafka__listening() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Pid from the pid file when that process still runs tansu.
kafka__pid() {
  local f pid
  f="$(kafka__dir)/tansu.pid"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q tansu || return 1
  echo "$pid"
}

# The project's tansu build (deploy/tansu/build.sh: cached, built once); prints its path.
kafka_install() {
  if [ -n "${WHISK_TANSU_BIN:-}" ]; then
    [ -x "$WHISK_TANSU_BIN" ] || { kafka__log "WHISK_TANSU_BIN=$WHISK_TANSU_BIN is not executable"; return 1; }
    echo "$WHISK_TANSU_BIN"
    return 0
  fi
  bash "$(dirname "${BASH_SOURCE[0]}")/../deploy/tansu/build.sh"
}

# Starts the broker unless it already runs; waits until the port accepts connections.
kafka_up() {
  local dir host port bin pid
  dir="$(kafka__dir)"; host="$(kafka__host)"; port="$(kafka__port)"
  if pid="$(kafka__pid)"; then
    kafka__log "already running (pid $pid) on $(cat "$dir/address" 2>/dev/null)"
    return 0
  fi
  if kafka__listening "$host" "$port"; then
    kafka__log "$host:$port is taken by another process; set WHISK_KAFKA_PORT"
    return 1
  fi
  local storage
  case "$(kafka__storage)" in
    memory) storage="memory://tansu/" ;;
    sqlite) storage="sqlite://tansu.db" ;; # relative to the broker's working folder, $dir
    *) kafka__log "WHISK_KAFKA_STORAGE must be memory or sqlite, not $(kafka__storage)"; return 1 ;;
  esac
  bin="$(kafka_install)" || return 1
  mkdir -p "$dir"
  (cd "$dir" && exec setsid "$bin" broker \
    --storage-engine "$storage" \
    --listener-url "tcp://$host:$port" \
    --advertised-listener-url "tcp://$host:$port" \
    </dev/null >tansu.log 2>&1) &
  pid=$!
  echo "$pid" >"$dir/tansu.pid"
  echo "$host:$port" >"$dir/address"
  local i
  for i in $(seq 1 200); do
    if kafka__listening "$host" "$port"; then
      kafka__log "up (pid $pid, $storage) on $host:$port, log $dir/tansu.log"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  kafka__log "tansu did not start listening on $host:$port; last lines of $dir/tansu.log:"
  tail -n 20 "$dir/tansu.log" >&2
  kill "$pid" 2>/dev/null
  rm -f "$dir/tansu.pid"
  return 1
}

# Stops the broker that kafka_up started; nothing else.
kafka_down() {
  local dir pid i
  dir="$(kafka__dir)"
  if ! pid="$(kafka__pid)"; then
    rm -f "$dir/tansu.pid"
    kafka__log "not running"
    return 0
  fi
  kill "$pid"
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$dir/tansu.pid"
  kafka__log "stopped (pid $pid)"
}

kafka_env() {
  echo "export WHISK_KAFKA_BROKERS=$(kafka__host):$(kafka__port)"
}

kafka_status() {
  local pid
  if pid="$(kafka__pid)"; then
    echo "kafka: running (pid $pid) on $(cat "$(kafka__dir)/address" 2>/dev/null)"
  else
    echo "kafka: stopped"
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  case "${1:-}" in
    up) kafka_up ;;
    down) kafka_down ;;
    env) kafka_env ;;
    status) kafka_status ;;
    install) kafka_install ;;
    *) echo "usage: $0 up|down|env|status|install" >&2; exit 2 ;;
  esac
fi
