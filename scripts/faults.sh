#!/usr/bin/env bash
# The fault matrix (crates/cli/tests/faults.rs): the distributed platform — broker on SQLite
# storage, CouchDB, Redis, a directory, a controller and two invokers as separate processes —
# under a steady mixed load while each part in turn is SIGKILLed and started again (an invoker
# is also frozen with SIGSTOP past its health timeout). Prints, per fault: accepted, completed,
# errored, refused, lost (must be 0), run twice (must be 0) and the recovery time.
#
#   scripts/faults.sh                      10 s of load on each side of every fault
#   WHISK_FAULT_LOAD_SECS=60 scripts/faults.sh
#
# `bash scripts/test.sh` runs the same matrix with 3 s of load (the test's default). Needs what
# scripts/test.sh installs (the tansu build, pouchdb-server via scripts/services.sh, Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
export WHISK_FAULT_LOAD_SECS="${WHISK_FAULT_LOAD_SECS:-10}"
exec cargo test -p whisk-cli --test faults -- --nocapture
