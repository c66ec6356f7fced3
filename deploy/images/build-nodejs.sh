#!/usr/bin/env bash
# Builds the Node.js action image whisk/nodejsaction:latest locally (no registry): Debian's
# node and the shared libraries it needs, plus the action proxy (family nodejs), on the
# whisk/python3base image of build.sh. Prints the image id. Needs docker, node, cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
log() { echo "build-nodejs.sh: $*" >&2; }

bash "$here/build.sh" >/dev/null   # the base image and a built whisk-proxy
command -v node >/dev/null || { log "installing nodejs"; apt-get install -y -q nodejs >&2; }
target="${CARGO_TARGET_DIR:-$repo/target}"
proxy="${WHISK_PROXY_BIN:-$target/release/whisk-proxy}"
[ -x "$proxy" ] || (cd "$repo" && cargo build --release -q -p whisk-runtime >&2)

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin"
cp "$(readlink -f "$(command -v node)")" "$root/usr/local/bin/node"
cp "$proxy" "$root/usr/local/bin/whisk-proxy"
for b in "$root"/usr/local/bin/*; do { ldd "$b" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'; done |
  sort -u | while read -r lib; do
    [ -e "$lib" ] || continue
    dir="$(readlink -f "$(dirname "$lib")")"
    mkdir -p "$root$dir"
    cp "$(readlink -f "$lib")" "$root$dir/$(basename "$lib")"
  done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM whisk/python3base:latest
COPY rootfs/ /
ENV WHISK_RUNTIME_FAMILY=nodejs \
    WHISK_NODE=/usr/local/bin/node \
    WHISK_PROXY_LISTEN=0.0.0.0:8080 \
    WHISK_PROXY_WORKDIR=/action \
    LANG=C.UTF-8
WORKDIR /action
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/whisk-proxy"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t whisk/nodejsaction:latest "$ctx"
