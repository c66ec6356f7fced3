#!/usr/bin/env bash
# A CouchDB-compatible server for development, tests and CI: pouchdb-server from npm.
#
#   scripts/couchdb.sh up     install (once, into the cache) and start it; create the admin
#   scripts/couchdb.sh down   stop exactly the server `up` started (its pid file)
#   scripts/couchdb.sh env    print the settings a CouchStore needs, as `export` lines
#
# Sourcing the script defines couchdb_up, couchdb_down and couchdb_env without running any.
#
# Settings (environment):
#   WHISK_CACHE              install cache (default ~/.cache/whisk); the server goes to
#                            $WHISK_CACHE/pouchdb-server
#   WHISK_SERVICES_DIR       state folder (default .whisk/services); data, config, logs and
#                            pid file under $WHISK_SERVICES_DIR/couchdb/
#   WHISK_COUCHDB_PORT       port on 127.0.0.1 (default 5984)
#   WHISK_COUCHDB_USER       admin user created on first start (default whisk)
#   WHISK_COUCHDB_PASSWORD   its password (default whisk)
#   WHISK_COUCHDB_IN_MEMORY  1: keep databases in memory (lost on restart); default on disk
#
# Needs Node.js and npm (Debian packages nodejs, npm). Idempotent: `up` on a running server
# only checks it; `down` on a stopped one does nothing.

POUCHDB_SERVER_VERSION="4.2.0"

couchdb__settings() {
  COUCHDB_CACHE="${WHISK_CACHE:-$HOME/.cache/whisk}/pouchdb-server"
  COUCHDB_DIR="${WHISK_SERVICES_DIR:-.whisk/services}/couchdb"
  COUCHDB_PORT="${WHISK_COUCHDB_PORT:-5984}"
  COUCHDB_USER="${WHISK_COUCHDB_USER:-whisk}"
  COUCHDB_PASSWORD="${WHISK_COUCHDB_PASSWORD:-whisk}"
  COUCHDB_URL="http://127.0.0.1:${COUCHDB_PORT}"
  COUCHDB_BIN="$COUCHDB_CACHE/node_modules/pouchdb-server/bin/pouchdb-server"
}

# couchdb__http METHOD PATH [BODY] [USER:PASSWORD] -> prints the HTTP status (000 when the
# server cannot be reached). Node, not curl: Node is needed anyway.
couchdb__http() {
  node -e '
    const [method, url, body, auth] = process.argv.slice(1);
    const headers = {"content-type": "application/json"};
    if (auth) headers.authorization = "Basic " + Buffer.from(auth).toString("base64");
    const req = require("http").request(url, {method, headers, timeout: 2000}, (res) => {
      res.resume();
      res.on("end", () => console.log(res.statusCode));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => console.log("000"));
    if (body) req.write(body);
    req.end();
  ' "$1" "${COUCHDB_URL}$2" "${3:-}" "${4:-}"
}

couchdb__running() {
  local pid
  [ -f "$COUCHDB_DIR/pid" ] || return 1
  pid="$(cat "$COUCHDB_DIR/pid")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q pouchdb-server
}

couchdb__install() {
  local installed=""
  if [ -f "$COUCHDB_CACHE/node_modules/pouchdb-server/package.json" ]; then
    installed="$(node -p "require('$COUCHDB_CACHE/node_modules/pouchdb-server/package.json').version")"
  fi
  if [ "$installed" = "$POUCHDB_SERVER_VERSION" ] && [ -f "$COUCHDB_BIN" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || {
    echo "couchdb.sh: npm is missing (apt-get install nodejs npm)" >&2
    return 1
  }
  echo "couchdb.sh: installing pouchdb-server@$POUCHDB_SERVER_VERSION into $COUCHDB_CACHE" >&2
  mkdir -p "$COUCHDB_CACHE"
  # leveldown ships prebuilt binaries in its npm package: no install script is needed.
  npm install --prefix "$COUCHDB_CACHE" --no-audit --no-fund --loglevel=error \
    "pouchdb-server@$POUCHDB_SERVER_VERSION" >&2
}

couchdb_up() {
  couchdb__settings
  couchdb__install || return 1
  mkdir -p "$COUCHDB_DIR/data"
  COUCHDB_DIR="$(cd "$COUCHDB_DIR" && pwd)"
  local i
  if ! couchdb__running; then
    rm -f "$COUCHDB_DIR/pid"
    if [ "$(couchdb__http GET /)" != "000" ]; then
      echo "couchdb.sh: something else listens on $COUCHDB_URL; set WHISK_COUCHDB_PORT" >&2
      return 1
    fi
    # Quiet log (every request at info level slows the server down).
    [ -f "$COUCHDB_DIR/config.json" ] || echo '{"log": {"level": "warning"}}' >"$COUCHDB_DIR/config.json"
    local args=(--port "$COUCHDB_PORT" --host 127.0.0.1 --dir "$COUCHDB_DIR/data"
      --config "$COUCHDB_DIR/config.json" --no-stdout-logs --no-color)
    [ "${WHISK_COUCHDB_IN_MEMORY:-0}" = 1 ] && args+=(--in-memory)
    # Own session, so that the server outlives this shell; log.txt lands in the state folder.
    # Every descriptor redirected: a caller reading this script's output is not kept waiting.
    (cd "$COUCHDB_DIR" && exec setsid sh -c 'echo $$ >pid; exec node "$@"' sh "$COUCHDB_BIN" "${args[@]}") \
      >"$COUCHDB_DIR/server.log" 2>&1 </dev/null &
    for i in $(seq 1 50); do
      [ -s "$COUCHDB_DIR/pid" ] && break
      sleep 0.1
    done
  fi
  local status=000
  for i in $(seq 1 150); do
    status="$(couchdb__http GET /)"
    [ "$status" = 200 ] && break
    if ! couchdb__running; then
      echo "couchdb.sh: pouchdb-server exited; see $COUCHDB_DIR/server.log:" >&2
      tail -20 "$COUCHDB_DIR/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  if [ "$status" != 200 ]; then
    echo "couchdb.sh: pouchdb-server does not answer on $COUCHDB_URL" >&2
    return 1
  fi
  local auth="$COUCHDB_USER:$COUCHDB_PASSWORD"
  if [ "$(couchdb__http GET /_session "" "$auth")" != 200 ]; then
    # Admin party (no admin yet): create ours. (`/_config`, as pouchdb-server serves it.)
    couchdb__http PUT "/_config/admins/$COUCHDB_USER" "\"$COUCHDB_PASSWORD\"" >/dev/null
    if [ "$(couchdb__http GET /_session "" "$auth")" != 200 ]; then
      echo "couchdb.sh: cannot log in as $COUCHDB_USER (an admin with another password exists in $COUCHDB_DIR/config.json?)" >&2
      return 1
    fi
  fi
  echo "couchdb.sh: pouchdb-server up on $COUCHDB_URL (pid $(cat "$COUCHDB_DIR/pid"), state in $COUCHDB_DIR)" >&2
}

couchdb_down() {
  couchdb__settings
  if couchdb__running; then
    local pid i
    pid="$(cat "$COUCHDB_DIR/pid")"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      [ -e "/proc/$pid" ] || break
      sleep 0.1
    done
    [ -e "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
    echo "couchdb.sh: stopped pouchdb-server (pid $pid)" >&2
  fi
  rm -f "$COUCHDB_DIR/pid"
}

couchdb_env() {
  couchdb__settings
  echo "export WHISK_COUCHDB_URL=$COUCHDB_URL"
  echo "export WHISK_COUCHDB_USER=$COUCHDB_USER"
  echo "export WHISK_COUCHDB_PASSWORD=$COUCHDB_PASSWORD"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    up) couchdb_up ;;
    down) couchdb_down ;;
    env) couchdb_env ;;
    *)
      echo "usage: $0 up|down|env" >&2
      exit 2
      ;;
  esac
fi
