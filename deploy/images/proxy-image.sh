# Shared by the action images built on whisk/python3base (build-nodejs.sh, build-native.sh):
# sourced, not run. Each script stages a rootfs/ with its runtime's files and the action proxy,
# then calls these in turn:
#
#   proxy_image_setup IMAGE      builds the base (build.sh), takes IMAGE's build lock, sets
#                                $proxy (the release whisk-proxy) and $log_name
#   proxy_image_inputs FILE...   sets $inputs: a hash of FILEs, the proxy, the base, the script
#   proxy_image_current          prints the image id and exits when IMAGE has those inputs
#   proxy_image_stage            sets $ctx (removed on exit) and $root (its rootfs/), holding
#                                the proxy at /usr/local/bin/whisk-proxy
#   proxy_image_libs             copies every shared library of rootfs' binaries into rootfs
#   proxy_image_build FAMILY [KEY=VALUE...]
#                                builds IMAGE: rootfs/ over the base, the proxy of FAMILY as
#                                entry point, run as the unprivileged user `action` (uid 1000),
#                                with the extra environment given
#   proxy_image_check PROGRAM ARG...
#                                checks the image runs PROGRAM, prints its id
#
# Idempotent and safe to run concurrently: the image carries a label with the hash of its
# inputs, an image with the same inputs is not rebuilt, and one build runs at a time under a
# lock. FORCE=1 rebuilds.

proxy_image_setup() {
    image="$1"
    here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
    repo="$(cd "$here/../.." && pwd)"
    log_name="$(basename "${BASH_SOURCE[1]}")"
    bash "$here/build.sh" >/dev/null   # the base image and a built whisk-proxy
    exec 9>"${TMPDIR:-/tmp}/whisk-image-${image#*/}.lock"
    flock 9
    local target="${CARGO_TARGET_DIR:-$repo/target}"
    proxy="${WHISK_PROXY_BIN:-$target/release/whisk-proxy}"
    [ -x "$proxy" ] || (cd "$repo" && cargo build --release -q -p whisk-runtime >&2)
}

log() { echo "$log_name: $*" >&2; }
die() { log "error: $*"; exit 1; }

proxy_image_inputs() {
    local base_id
    base_id="$(docker image inspect -f '{{.Id}}' whisk/python3base:latest)"
    inputs="$( { sha256sum "$@" "$proxy" "${BASH_SOURCE[1]}" "${BASH_SOURCE[0]}" | cut -d' ' -f1;
                 echo "$base_id"; } | sha256sum | cut -c1-16)"
}

proxy_image_current() {
    if [ -z "${FORCE:-}" ] && \
       [ "$(docker image inspect -f '{{index .Config.Labels "whisk.inputs"}}' "$image:latest" 2>/dev/null)" = "$inputs" ]; then
        log "$image:latest is up to date (inputs $inputs)"
        docker image inspect -f '{{.Id}}' "$image:latest"
        exit 0
    fi
}

proxy_image_stage() {
    ctx="$(mktemp -d)"
    trap 'rm -rf "$ctx"' EXIT
    root="$ctx/rootfs"
    mkdir -p "$root/usr/local/bin"
    cp "$proxy" "$root/usr/local/bin/whisk-proxy"
}

proxy_image_libs() {
    local b lib dir
    for b in "$root"/usr/local/bin/* "$root"/usr/bin/*; do
        [ -f "$b" ] && [ ! -L "$b" ] || continue
        { ldd "$b" 2>/dev/null || true; } | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
    done | sort -u | while read -r lib; do
        [ -e "$lib" ] || continue
        dir="$(readlink -f "$(dirname "$lib")")"
        mkdir -p "$root$dir"
        cp "$(readlink -f "$lib")" "$root$dir/$(basename "$lib")"
    done
}

proxy_image_build() {
    local family="$1" kv
    shift
    {
        echo "FROM whisk/python3base:latest"
        echo "COPY rootfs/ /"
        echo "ENV WHISK_RUNTIME_FAMILY=$family WHISK_PROXY_LISTEN=0.0.0.0:8080 WHISK_PROXY_WORKDIR=/action HOME=/tmp LANG=C.UTF-8"
        for kv in "$@"; do echo "ENV $kv"; done
        echo "WORKDIR /action"
        echo "EXPOSE 8080"
        echo "# The unprivileged user of the base (uid 1000, owner of /action); never root."
        echo "USER 1000:1000"
        echo "ARG INPUTS=unknown"
        echo "LABEL org.opencontainers.image.title=\"$image\" whisk.inputs=\"\${INPUTS}\""
        echo 'ENTRYPOINT ["/usr/local/bin/whisk-proxy"]'
    } > "$ctx/Dockerfile"
    log "building $image:latest"
    DOCKER_BUILDKIT=0 docker build -q --build-arg "INPUTS=$inputs" -t "$image:latest" "$ctx" >/dev/null
}

# proxy_image_check PROGRAM ARG...: runs PROGRAM in the new image (no network), which must
# succeed (checking, among others, that it runs as uid 1000); then prints the image id.
proxy_image_check() {
    local program="$1" id
    shift
    docker run --rm --network none --entrypoint "$program" "$image:latest" "$@" \
        || die "$image:latest: $program does not start inside the image (as uid 1000)"
    id="$(docker image inspect -f '{{.Id}}' "$image:latest")"
    log "built $image:latest ($id)"
    echo "$id"
}
