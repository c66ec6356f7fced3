#!/usr/bin/env bash
# Builds the Node.js action image whisk/nodejsaction:latest locally (no registry): Debian's
# node and the shared libraries it needs, plus the action proxy (family nodejs), on the
# whisk/python3base image of build.sh. Runs as the unprivileged user `action` (uid 1000) as
# the Python image does. Prints the image id on stdout. Needs docker, node (installed from
# Debian when missing), cargo.
#
# Idempotent and safe to run concurrently, as build.sh: the image carries a label with a hash
# of its inputs (node, the proxy, the base image, this script); an image with the same inputs
# is not rebuilt, and one build runs at a time under a lock. FORCE=1 rebuilds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="whisk/nodejsaction"
log() { echo "build-nodejs.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

bash "$here/build.sh" >/dev/null   # the base image and a built whisk-proxy
exec 9>"${TMPDIR:-/tmp}/whisk-image-nodejsaction.lock"
flock 9
command -v node >/dev/null || { log "installing nodejs"; apt-get install -y -q nodejs >&2; }
target="${CARGO_TARGET_DIR:-$repo/target}"
proxy="${WHISK_PROXY_BIN:-$target/release/whisk-proxy}"
[ -x "$proxy" ] || (cd "$repo" && cargo build --release -q -p whisk-runtime >&2)
node_bin="$(readlink -f "$(command -v node)")"

base_id="$(docker image inspect -f '{{.Id}}' whisk/python3base:latest)"
inputs="$( { sha256sum "$node_bin" "$proxy" "$0" | cut -d' ' -f1; echo "$base_id"; } \
           | sha256sum | cut -c1-16)"
if [ -z "${FORCE:-}" ] && \
   [ "$(docker image inspect -f '{{index .Config.Labels "whisk.inputs"}}' "$image:latest" 2>/dev/null)" = "$inputs" ]; then
    log "$image:latest is up to date (inputs $inputs)"
    docker image inspect -f '{{.Id}}' "$image:latest"
    exit 0
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin"
cp "$node_bin" "$root/usr/local/bin/node"
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
    HOME=/tmp \
    LANG=C.UTF-8
WORKDIR /action
EXPOSE 8080
# The unprivileged user of the base (uid 1000, owner of /action); never root.
USER 1000:1000
ARG INPUTS=unknown
LABEL org.opencontainers.image.title="whisk/nodejsaction" whisk.inputs="${INPUTS}"
ENTRYPOINT ["/usr/local/bin/whisk-proxy"]
DOCKERFILE
log "building $image:latest"
DOCKER_BUILDKIT=0 docker build -q --build-arg "INPUTS=$inputs" -t "$image:latest" "$ctx" >/dev/null
docker run --rm --network none --entrypoint /usr/local/bin/node "$image:latest" \
    -e 'if (process.getuid() !== 1000) process.exit(1)' \
    || die "$image:latest: node does not start inside the image (as uid 1000)"
id="$(docker image inspect -f '{{.Id}}' "$image:latest")"
log "built $image:latest ($id)"
echo "$id"
