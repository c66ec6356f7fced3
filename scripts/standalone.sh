#!/usr/bin/env bash
# Runs `whisk standalone` (every role in one process, embedded database, actions as local
# processes in a bubblewrap sandbox; API on http://127.0.0.1:3233 with the well-known guest
# key). Installs bubblewrap from Debian when it is missing — the process runtime refuses to run
# other people's code unsandboxed — then builds and starts the platform. Flags are passed on:
#   bash scripts/standalone.sh --runtime docker
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bwrap >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing bubblewrap (the actions' sandbox)" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q bubblewrap
fi
exec cargo run --release -p whisk-cli -- standalone "$@"
