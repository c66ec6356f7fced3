#!/usr/bin/env bash
# Builds the Node.js action image whisk/nodejsaction:latest locally (no registry): Debian's
# node and the shared libraries it needs, plus the action proxy (family nodejs), on the
# whisk/python3base image of build.sh. Runs as the unprivileged user `action` (uid 1000) as
# the Python image does. Prints the image id on stdout. Needs docker, node (installed from
# Debian when missing), cargo.
#
# Idempotent and safe to run concurrently, as build.sh (proxy-image.sh): the image carries a
# label with a hash of its inputs (node, the proxy, the base image, the scripts); an image with
# the same inputs is not rebuilt, and one build runs at a time under a lock. FORCE=1 rebuilds.
set -euo pipefail
# shellcheck source=proxy-image.sh
source "$(dirname "${BASH_SOURCE[0]}")/proxy-image.sh"
proxy_image_setup whisk/nodejsaction
command -v node >/dev/null || { log "installing nodejs"; apt-get install -y -q nodejs >&2; }
node_bin="$(readlink -f "$(command -v node)")"
proxy_image_inputs "$node_bin"
proxy_image_current

proxy_image_stage
cp "$node_bin" "$root/usr/local/bin/node"
proxy_image_libs
proxy_image_build nodejs WHISK_NODE=/usr/local/bin/node
proxy_image_check /usr/local/bin/node -e 'if (process.getuid() !== 1000) process.exit(1)'
