#!/usr/bin/env bash
# Builds every action image the project uses — one per runtime family of
# whisk_core::kinds::KINDS: whisk/python3action (build.sh), whisk/nodejsaction
# (build-nodejs.sh), whisk/nativeaction (build-native.sh) — when missing or out of date. The
# Docker tests call it once per test binary; the scripts themselves lock, so concurrent
# callers build once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$here/build.sh" >/dev/null
bash "$here/build-nodejs.sh" >/dev/null
bash "$here/build-native.sh" >/dev/null
echo "build-actions.sh: whisk/python3action, whisk/nodejsaction and whisk/nativeaction are up to date" >&2
