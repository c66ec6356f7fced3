#!/usr/bin/env bash
# Builds the project's tansu broker: tansu 0.6.0 from crates.io with both storage engines
# (memory/S3 "dynostore" and SQLite "libsql") and the fetch patch in this folder, and installs
# it as $WHISK_CACHE/bin/tansu-whisk (default ~/.cache/whisk). About 13 minutes on 2 cores, once;
# a second run with the binary in place does nothing.
#
#   deploy/tansu/build.sh          build unless the cached binary is there; print its path
#
# The patch (tansu-storage-0.6.0.patch) fixes two costs of tansu 0.6.0's fetch, which decide the
# latency and the throughput of every invocation in distributed mode:
#   - a fetch that found data still slept out the rest of its max wait (fetch.wait.max.ms), so
#     every message waited that long, and a fetch waiting for data looked at the storage once;
#     now it answers at once, and a waiting fetch is woken by every produce to one of its
#     topics (and looks again every 25 ms at most);
#   - the memory engine listed every batch the partition held on each fetch, so fetches got
#     slower with every message kept; it now reads the batches from the fetch offset on directly.
# Both are upstream bugs, not whisk-rs choices; the patch is small enough to send upstream.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION=0.6.0
TANSU_SHA256=4fdd85473ec265140488cf8d55e82b844f5c051c8916fabdd4a71156ac053f6d
STORAGE_SHA256=720d2ed8e6010c70f7f06e5af5a7274ebbf6e42fdcd9e46de542b10dc4d2f35d
cache="${WHISK_CACHE:-$HOME/.cache/whisk}"
bin="$cache/bin/tansu-whisk"
# The patch's own hash is part of the stamp: a changed patch rebuilds.
stamp="$VERSION-$(sha256sum "$here/tansu-storage-$VERSION.patch" | cut -c1-16)"

log() { echo "tansu build: $*" >&2; }

# One build at a time (tests and scripts may ask at once); the second finds the first's binary.
mkdir -p "$cache/bin"
exec 9>"$cache/tansu-build.lock"
flock 9
if [ -x "$bin" ] && [ "$(cat "$bin.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "$bin"
  exit 0
fi
command -v cargo >/dev/null 2>&1 || { log "needs cargo (https://rustup.rs)"; exit 1; }
command -v patch >/dev/null 2>&1 || { log "needs patch (apt-get install patch)"; exit 1; }

src="$cache/tansu-src"
rm -rf "$src"
mkdir -p "$src"
fetch() { # name sha256
  local file="$src/$1-$VERSION.crate"
  curl -fsSL --retry 3 -o "$file" "https://static.crates.io/crates/$1/$1-$VERSION.crate"
  echo "$2  $file" | sha256sum -c --quiet -
  tar xzf "$file" -C "$src"
}
log "fetching tansu $VERSION and tansu-storage $VERSION from crates.io"
fetch tansu "$TANSU_SHA256"
fetch tansu-storage "$STORAGE_SHA256"
(cd "$src" && patch -s -p1 <"$here/tansu-storage-$VERSION.patch") \
  || { log "the patch does not apply"; exit 1; }
cat >>"$src/tansu-$VERSION/Cargo.toml" <<EOF

[patch.crates-io]
tansu-storage = { path = "../tansu-storage-$VERSION" }
EOF
log "building (cargo build --release --features dynostore,libsql; 10-15 minutes)"
# The shipped Cargo.lock pins every other dependency; only tansu-storage's source changes.
(cd "$src/tansu-$VERSION" && cargo build --quiet --release --features dynostore,libsql \
  --target-dir "$cache/tansu-target" >&2)
install -m 755 "$cache/tansu-target/release/tansu" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$stamp" >"$bin.stamp"
log "installed $bin"
# On CI the build is done once: its ~3 GB of objects would only take disk from the tests.
if [ -n "${CI:-}" ]; then rm -rf "$cache/tansu-target"; fi
echo "$bin"
