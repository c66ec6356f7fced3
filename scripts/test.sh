#!/usr/bin/env bash
# Runs every test of the workspace. Installs what the tests need when it is missing
# (Debian's python3, Node.js, Redis, Docker, bubblewrap and build tools; the pinned `openwhisk` npm
# client and Serverless Framework; the project's tansu build, deploy/tansu/build.sh, into
# ~/.cache/whisk once;
# pouchdb-server is fetched by the tests through scripts/services.sh), starts dockerd when none
# runs, then runs the lints and `cargo test` over the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/python3 ] || missing+=(python3)
# tansu (the Kafka-protocol broker) is built from crates.io sources with a patch; librdkafka is
# built from source.
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v patch >/dev/null 2>&1 || missing+=(patch)
command -v make >/dev/null 2>&1 || missing+=(build-essential)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# The process runtime sandboxes every action with bubblewrap (crates/invoker/src/sandbox.rs).
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
# The ansible cluster test (scripts/cluster-test.sh) installs ansible from PyPI into a venv.
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
# The web console's test drives Debian's headless Chromium (crates/console/tests/browser.rs).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Prometheus scrapes every service in crates/cli/tests/metrics.rs (promtool checks /metrics).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# The Docker runtime's tests need a daemon: start one when none answers (never a second one).
bash scripts/dockerd.sh

(cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error)
# The Serverless Framework 3 and its OpenWhisk plugin, pinned (crates/cli/tests/serverless.rs).
(cd tests/serverless && npm ci --no-audit --no-fund --loglevel=error)

# The broker, built once per machine (10-15 minutes the first time), before any test needs it.
bash scripts/kafka.sh install >/dev/null

# CI builds once: incremental data would only double the target folder's size.
[ -z "${CI:-}" ] || export CARGO_INCREMENTAL=0
echo "disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free for the build"

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --no-fail-fast "$@"
