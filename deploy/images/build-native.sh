#!/usr/bin/env bash
# Builds the native action image whisk/nativeaction:latest locally (no registry): the action
# proxy (family native: the action is an executable, OpenWhisk's dockerskeleton style), a
# POSIX shell as /bin/sh and a few Debian tools for shell-script actions, on the
# whisk/python3base image of build.sh (which also gives python3 to `#!/usr/bin/python3`
# executables). Runs as the unprivileged user `action` (uid 1000) as the other images do.
# Prints the image id on stdout. Needs docker, Debian's dash, coreutils, sed and grep, cargo.
#
# Idempotent and safe to run concurrently, as build.sh (proxy-image.sh): the image carries a
# label with a hash of its inputs (the tools, the proxy, the base image, the scripts); an image
# with the same inputs is not rebuilt, and one build runs at a time under a lock. FORCE=1
# rebuilds.
set -euo pipefail
# shellcheck source=proxy-image.sh
source "$(dirname "${BASH_SOURCE[0]}")/proxy-image.sh"
proxy_image_setup whisk/nativeaction
# dash is /bin/sh; the rest are what shell-script actions commonly call.
tools=()
for t in dash env cat echo printf head tail tr cut sed grep sleep date wc base64 ls mkdir rm; do
    [ -x "/usr/bin/$t" ] || die "/usr/bin/$t not found (Debian's dash, coreutils, sed and grep)"
    tools+=("$(readlink -f "/usr/bin/$t")")
done
proxy_image_inputs "${tools[@]}"
proxy_image_current

proxy_image_stage
mkdir -p "$root/usr/bin"
for t in "${tools[@]}"; do cp "$t" "$root/usr/bin/$(basename "$t")"; done
ln -s dash "$root/usr/bin/sh"
# As on the host (merged /usr): /bin is usr/bin, so `#!/bin/sh` finds dash.
ln -s usr/bin "$root/bin"
proxy_image_libs
proxy_image_build native PATH=/usr/local/bin:/usr/bin:/bin
proxy_image_check /bin/sh -c \
    'test "$(echo ok | cat)" = ok && grep -q "^Uid:[[:space:]]*1000[[:space:]]" /proc/self/status'
