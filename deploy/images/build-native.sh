#!/usr/bin/env bash
# Builds the native action image whisk/nativeaction:latest locally (no registry): the action
# proxy (family native: the action is an executable, OpenWhisk's dockerskeleton style), a
# POSIX shell as /bin/sh and a few Debian tools for shell-script actions, on the
# whisk/python3base image of build.sh (which also gives python3 to `#!/usr/bin/python3`
# executables). Runs as the unprivileged user `action` (uid 1000) as the other images do.
# Prints the image id on stdout. Needs docker and cargo.
#
# Idempotent and safe to run concurrently, as build.sh: the image carries a label with a hash
# of its inputs (the tools, the proxy, the base image, this script); an image with the same
# inputs is not rebuilt, and one build runs at a time under a lock. FORCE=1 rebuilds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="whisk/nativeaction"
log() { echo "build-native.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

bash "$here/build.sh" >/dev/null   # the base image and a built whisk-proxy
exec 9>"${TMPDIR:-/tmp}/whisk-image-nativeaction.lock"
flock 9
target="${CARGO_TARGET_DIR:-$repo/target}"
proxy="${WHISK_PROXY_BIN:-$target/release/whisk-proxy}"
[ -x "$proxy" ] || (cd "$repo" && cargo build --release -q -p whisk-runtime >&2)
# dash is /bin/sh; the rest are what shell-script actions commonly call.
tools=()
for t in dash env cat echo printf head tail tr cut sed grep sleep date wc base64 ls mkdir rm; do
    p="/usr/bin/$t"
    [ -x "$p" ] || die "$p not found (Debian's dash, coreutils, sed and grep)"
    tools+=("$(readlink -f "$p")")
done

base_id="$(docker image inspect -f '{{.Id}}' whisk/python3base:latest)"
inputs="$( { sha256sum "${tools[@]}" "$proxy" "$0" | cut -d' ' -f1; echo "$base_id"; } \
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
mkdir -p "$root/usr/bin" "$root/usr/local/bin"
cp "$proxy" "$root/usr/local/bin/whisk-proxy"
for t in "${tools[@]}"; do cp "$t" "$root/usr/bin/$(basename "$t")"; done
ln -s dash "$root/usr/bin/sh"
# As on the host (merged /usr): /bin is usr/bin, so `#!/bin/sh` finds dash.
ln -s usr/bin "$root/bin"
for b in "$root"/usr/bin/* "$root"/usr/local/bin/*; do
    [ -L "$b" ] && continue
    { ldd "$b" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
done | sort -u | while read -r lib; do
    [ -e "$lib" ] || continue
    dir="$(readlink -f "$(dirname "$lib")")"
    mkdir -p "$root$dir"
    cp "$(readlink -f "$lib")" "$root$dir/$(basename "$lib")"
done
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM whisk/python3base:latest
COPY rootfs/ /
ENV WHISK_RUNTIME_FAMILY=native \
    WHISK_PROXY_LISTEN=0.0.0.0:8080 \
    WHISK_PROXY_WORKDIR=/action \
    PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    LANG=C.UTF-8
WORKDIR /action
EXPOSE 8080
# The unprivileged user of the base (uid 1000, owner of /action); never root.
USER 1000:1000
ARG INPUTS=unknown
LABEL org.opencontainers.image.title="whisk/nativeaction" whisk.inputs="${INPUTS}"
ENTRYPOINT ["/usr/local/bin/whisk-proxy"]
DOCKERFILE
log "building $image:latest"
DOCKER_BUILDKIT=0 docker build -q --build-arg "INPUTS=$inputs" -t "$image:latest" "$ctx" >/dev/null
docker run --rm --network none --entrypoint /bin/sh "$image:latest" \
    -c 'test "$(echo ok | cat)" = ok && grep -q "^Uid:[[:space:]]*1000[[:space:]]" /proc/self/status' \
    || die "$image:latest: /bin/sh does not run inside the image (as uid 1000)"
id="$(docker image inspect -f '{{.Id}}' "$image:latest")"
log "built $image:latest ($id)"
echo "$id"
