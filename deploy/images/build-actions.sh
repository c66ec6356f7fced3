#!/usr/bin/env bash
# Builds every action image the project uses — whisk/python3action (build.sh) and
# whisk/nodejsaction (build-nodejs.sh) — when missing or out of date. The Docker tests call it
# once per test binary; the scripts themselves lock, so concurrent callers build once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/build.sh" >/dev/null
bash "$here/build-nodejs.sh" >/dev/null
echo "build-actions.sh: whisk/python3action and whisk/nodejsaction are up to date" >&2
