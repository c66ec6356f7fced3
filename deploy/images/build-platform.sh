#!/usr/bin/env bash
# Builds whisk/platform:latest locally (no registry): one image holding the `whisk` binary
# (every role: controller, invoker, directory, gateway), the action proxy, and the services
# of distributed mode — tansu (Kafka protocol), redis-server and node + pouchdb-server
# (CouchDB protocol) — on the whisk/python3base image of build.sh. docker-compose.yml runs
# each service from it. Prints the image id.
#
# Needs: docker (running daemon), cargo, Debian's redis-server and nodejs, and the tansu and
# pouchdb-server caches of scripts/kafka.sh and scripts/couchdb.sh (installed if missing).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { echo "build-platform.sh: $*" >&2; }

bash "$here/build-actions.sh"   # the python base and both action images (stems of both kinds)
command -v redis-server >/dev/null || { log "installing redis-server"; apt-get install -y -q redis-server >&2; }
command -v node >/dev/null || { log "installing nodejs"; apt-get install -y -q nodejs npm >&2; }
# shellcheck source=../../scripts/kafka.sh
source "$repo/scripts/kafka.sh"
# shellcheck source=../../scripts/couchdb.sh
source "$repo/scripts/couchdb.sh"
tansu="$(kafka_install)"
couchdb__settings
couchdb__install
pouch="${WHISK_CACHE:-$HOME/.cache/whisk}/pouchdb-server"
[ -d "$pouch/node_modules/pouchdb-server" ] || { log "pouchdb-server is not installed in $pouch"; exit 1; }

log "building whisk and whisk-proxy (release)"
(cd "$repo" && cargo build --release -q -p whisk-cli -p whisk-runtime >&2)

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/opt"
target="${CARGO_TARGET_DIR:-$repo/target}"
cp "$target/release/whisk" "$target/release/whisk-proxy" "$root/usr/local/bin/"
cp "$tansu" "$root/usr/local/bin/tansu"
cp "$(command -v redis-server)" "$root/usr/local/bin/redis-server"
cp "$(readlink -f "$(command -v node)")" "$root/usr/local/bin/node"
cp -r "$pouch" "$root/opt/pouchdb-server"
# Every shared library the binaries and native node modules need, at their own paths.
libs() { { ldd "$1" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'; }
{
  for b in "$root"/usr/local/bin/*; do libs "$b"; done
  find "$root/opt" -name '*.node' | while read -r m; do libs "$m"; done
} | sort -u | while read -r lib; do
  [ -e "$lib" ] || continue
  # The base links /lib and /lib64 into /usr/lib: put each library under its real folder.
  real="$(readlink -f "$lib")"
  dir="$(readlink -f "$(dirname "$lib")")"
  mkdir -p "$root$dir"
  cp "$real" "$root$dir/$(basename "$lib")"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM whisk/python3base:latest
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin WHISK_PYTHON=/usr/bin/python3
ENTRYPOINT ["/usr/local/bin/whisk"]
DOCKERFILE
log "docker build whisk/platform"
DOCKER_BUILDKIT=0 docker build -q -t whisk/platform:latest "$ctx"
