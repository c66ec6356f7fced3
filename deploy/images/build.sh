#!/usr/bin/env bash
# Builds the Python action image whisk/python3action:latest locally, without any registry:
#
#   1. builds the action proxy (cargo build --release -p whisk-runtime), unless
#      WHISK_PROXY_BIN names a binary already built;
#   2. copies Debian's python3, its standard library (/usr/lib/python3.11) and every shared
#      library that python3, its extension modules and the proxy link against into a folder,
#      and `docker import`s it as whisk/python3base:<inputs>;
#   3. builds Dockerfile.python3action FROM that base (adds the proxy and the peers library).
#
# Idempotent: the final image carries a label with a hash of its inputs; when an image with
# the same inputs exists, nothing is rebuilt. Safe to run concurrently (tests of several
# binaries do): one build at a time under a lock, the others then find it up to date. Prints
# the image id on stdout (progress goes to stderr). Needs: docker (a running daemon), python3
# from Debian, cargo (unless WHISK_PROXY_BIN is set). Never pulls.
#
# The image runs its proxy as the unprivileged user `action` (uid and gid 1000), whose
# workdir /action it owns; the invoker adds a read-only root, tmpfs /tmp and /action, and
# drops every capability (docs/security.md, "Docker actions").
#
# Environment: WHISK_IMAGE (default whisk/python3action), WHISK_PYTHON_BIN (/usr/bin/python3),
# WHISK_PROXY_BIN (default: build it), FORCE=1 to rebuild.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="${WHISK_IMAGE:-whisk/python3action}"
python_bin="${WHISK_PYTHON_BIN:-/usr/bin/python3}"
log() { echo "build.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker is not installed (apt-get install -y docker.io)"
docker info >/dev/null 2>&1 || die "no Docker daemon reachable (start dockerd)"
[ -x "$python_bin" ] || die "$python_bin not found (apt-get install -y python3)"

# One build at a time (the lock is released when this script exits).
exec 9>"${TMPDIR:-/tmp}/whisk-image-python3action.lock"
flock 9

python_real="$(readlink -f "$python_bin")"
pyver="$("$python_real" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
stdlib="/usr/lib/python$pyver"
[ -d "$stdlib" ] || die "$stdlib not found: $python_bin must be Debian's python3"
"$python_real" -c 'import json' 2>/dev/null || die "$python_bin lacks json (install python3, not python3-minimal)"

if [ -n "${WHISK_PROXY_BIN:-}" ]; then
    proxy="$WHISK_PROXY_BIN"
else
    log "building whisk-proxy (cargo build --release -p whisk-runtime)"
    (cd "$repo" && cargo build --release -p whisk-runtime >&2)
    proxy="${CARGO_TARGET_DIR:-$repo/target}/release/whisk-proxy"
fi
[ -x "$proxy" ] || die "action proxy binary $proxy not found"
peers_py="$repo/crates/runtime/python/whisk_peers.py"

inputs="$( { sha256sum "$python_real" "$proxy" "$peers_py" "$here/Dockerfile.python3action" "$0" \
             | cut -d' ' -f1; echo "$pyver"; } | sha256sum | cut -c1-16)"
if [ -z "${FORCE:-}" ] && \
   [ "$(docker image inspect -f '{{index .Config.Labels "whisk.inputs"}}' "$image:latest" 2>/dev/null)" = "$inputs" ]; then
    log "$image:latest is up to date (inputs $inputs)"
    docker image inspect -f '{{.Id}}' "$image:latest"
    exit 0
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
mkdir -p "$root/usr/bin" "$root/tmp" "$root/action" "$root/etc" "$root/usr/lib/python3/dist-packages"
chmod 1777 "$root/tmp"

log "staging python $pyver from $python_real"
cp -a "$python_real" "$root/usr/bin/python$pyver"
ln -s "python$pyver" "$root/usr/bin/python3"
mkdir -p "$root/usr/lib"
tar -C / --exclude='__pycache__' --exclude="${stdlib#/}/test" --exclude="${stdlib#/}/idlelib" \
    --exclude="${stdlib#/}/tkinter" --exclude="${stdlib#/}/ensurepip" -cf - "${stdlib#/}" \
    | tar -C "$root" -xf -

# Every shared library needed by python3, its extension modules and the proxy, with the
# dynamic loader itself (ldd prints "name => /path (addr)" or "/path (addr)").
libs="$( { ldd "$python_real"; ldd "$proxy" || true;
           find "$stdlib/lib-dynload" -name '*.so' -exec ldd {} \; ; } 2>/dev/null \
         | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u)"
for lib in $libs; do
    [ -e "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
    # The loader is found by its canonical path too.
    real="$(readlink -f "$lib")"
    if [ "$real" != "$lib" ]; then mkdir -p "$root$(dirname "$real")"; cp -L "$lib" "$root$real"; fi
done
# /lib64 and /lib are symlinks into /usr on Debian 12 (merged /usr): recreate them.
for l in /lib /lib64; do
    if [ -L "$l" ] && [ ! -e "$root$l" ]; then ln -s "$(readlink "$l")" "$root$l";
    elif [ -L "$l" ] && [ -d "$root$l" ] && [ ! -L "$root$l" ]; then
        target="$(readlink -f "$l")"; mkdir -p "$root$target"
        cp -a "$root$l/." "$root$target/"; rm -rf "${root:?}$l"; ln -s "$(readlink "$l")" "$root$l"
    fi
done
printf 'root:x:0:0:root:/root:/bin/false\naction:x:1000:1000:action:/tmp:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\naction:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
printf '127.0.0.1 localhost\n' > "$root/etc/hosts"

base="whisk/python3base:$inputs"
log "importing $base"
# Everything belongs to root but the proxy's workdir, which belongs to `action`.
tar -C "$root" --numeric-owner --owner=0 --group=0 --exclude=./action -cf "$stage/rootfs.tar" .
tar -C "$root" --numeric-owner --owner=1000 --group=1000 -rf "$stage/rootfs.tar" ./action
docker import - "$base" < "$stage/rootfs.tar" >/dev/null
docker tag "$base" whisk/python3base:latest

ctx="$stage/ctx"
mkdir -p "$ctx"
cp "$proxy" "$ctx/whisk-proxy"
cp "$peers_py" "$ctx/whisk_peers.py"
cp "$here/Dockerfile.python3action" "$ctx/Dockerfile"
log "building $image:latest"
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$base" --build-arg "INPUTS=$inputs" \
    -t "$image:latest" "$ctx" >/dev/null
id="$(docker image inspect -f '{{.Id}}' "$image:latest")"
docker run --rm --network none --entrypoint /usr/bin/python3 "$image:latest" \
    -c 'import json, os, socket, urllib.request; assert os.getuid() == 1000' \
    || die "$image:latest: python3 does not start inside the image (as uid 1000)"
log "built $image:latest ($id)"
echo "$id"
