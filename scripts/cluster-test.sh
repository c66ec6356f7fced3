#!/usr/bin/env bash
# The ansible five-node deploy, tested on five network namespaces of this machine.
#
#   scripts/cluster-test.sh          (as root; WHISK_BIN=<whisk binary>, default target/debug/whisk)
#
# 1. Installs what is missing: ansible from PyPI into a venv ($WHISK_CACHE/ansible; its bundled
#    community.docker collection has the `nsenter` connection plugin), the broker
#    (scripts/kafka.sh install), pouchdb-server (scripts/couchdb.sh), the conformance suite's
#    npm client.
# 2. Makes the nodes: network namespaces node-0..4 (node-N at 10.231.0.1N/24) whose veths meet
#    on a bridge in a sixth namespace, whisk-hub, so that no test traffic touches the host's
#    own network; each node has an anchor process (its pid in $WHISK_NETNS_DIR/node-N.pid)
#    that ansible enters with nsenter — no ssh.
# 3. Runs the netns environment's playbooks: setup, prereq, couchdb, initdb, openwhisk,
#    postdeploy (services as plain processes; the invokers' instances on their node's subnet
#    10.232.N.0/24, local to node N and routed to it by the others).
# 4. Checks (scripts/cluster_checks.py, in node-0's namespace): whisk status, the npm client
#    conformance suite through node-0's gateway, myname0..3 on four invokers (their maps, a ring
#    and an allreduce among them), ring and
#    allreduce across nodes, node-3 killed under load.
# 5. `openwhisk.yml -e mode=clean`: no process left in any node, no folder left; then removes
#    the namespaces and the cluster folder (kept on failure when WHISK_CLUSTER_KEEP=1).
#
# Settings: WHISK_BIN, WHISK_CACHE (~/.cache/whisk), WHISK_CLUSTER_DIR (default a fresh folder
# in /tmp), ANSIBLE_VERSION (12.3.0), CONFORMANCE_TEST_PATTERN (a subset of the suite).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
started=$SECONDS
say() { echo "cluster-test: $* ($((SECONDS - started)) s)"; }
die() { echo "cluster-test: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, routes, the sandbox's cgroups)"
for tool in ip nsenter node npm redis-server bwrap; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/test.sh installs it)"
done
export WHISK_BIN="${WHISK_BIN:-$root/target/debug/whisk}"
[ -x "$WHISK_BIN" ] || die "no whisk binary at $WHISK_BIN (cargo build -p whisk-cli)"
cache="${WHISK_CACHE:-$HOME/.cache/whisk}"

# --- 1. what the test needs -----------------------------------------------------------------
venv="$cache/ansible"
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  say "installing ansible ${ANSIBLE_VERSION:-12.3.0} from PyPI into $venv"
  py=/usr/bin/python3; [ -x "$py" ] || py="$(command -v python3)"
  "$py" -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install -q "ansible==${ANSIBLE_VERSION:-12.3.0}" || die "pip install ansible failed"
fi
"$venv/bin/ansible-doc" -t connection community.docker.nsenter >/dev/null 2>&1 \
  || die "ansible has no community.docker.nsenter connection plugin"
bash scripts/kafka.sh install >/dev/null || die "the broker (scripts/kafka.sh install)"
# shellcheck source=couchdb.sh
source scripts/couchdb.sh
couchdb__settings
couchdb__install || die "pouchdb-server (scripts/couchdb.sh)"
[ -d tests/conformance/node_modules ] \
  || (cd tests/conformance && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci"
say "tools ready"

# --- 2. the nodes ---------------------------------------------------------------------------
export WHISK_CLUSTER_DIR="${WHISK_CLUSTER_DIR:-$(mktemp -d /tmp/whisk-cluster.XXXXXX)}"
export WHISK_NETNS_DIR="$WHISK_CLUSTER_DIR/netns"
# Action sandboxes run as nobody: every folder on the way to theirs must be passable.
mkdir -p "$WHISK_CLUSTER_DIR"
chmod 755 "$WHISK_CLUSTER_DIR"
mkdir -p "$WHISK_NETNS_DIR"
nodes=(node-0 node-1 node-2 node-3 node-4)

teardown() {
  local n pid
  for n in "${nodes[@]}"; do
    if [ -f "$WHISK_NETNS_DIR/$n.pid" ]; then
      pid="$(cat "$WHISK_NETNS_DIR/$n.pid")"
      # Whatever still runs in the node (after a failure): killed by its own pid.
      for p in $(ip netns pids "$n" 2>/dev/null); do [ "$p" = "$pid" ] || kill -9 "$p" 2>/dev/null || true; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ip netns del "$n" 2>/dev/null || true
  done
  ip netns del whisk-hub 2>/dev/null || true
  # Cgroups of killed invokers' sandboxes (empty folders; `-e mode=clean` removes them too).
  for d in /sys/fs/cgroup/whisk-node-* /sys/fs/cgroup/*/whisk-node-*; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  true
}

on_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "cluster-test: failed; last lines of the services' logs:" >&2
    for f in "$WHISK_CLUSTER_DIR"/node-*/log/*.log; do
      [ -f "$f" ] || continue
      echo "--- $f" >&2; tail -n 15 "$f" >&2
    done
  fi
  teardown
  if [ $rc -eq 0 ] || [ "${WHISK_CLUSTER_KEEP:-0}" != 1 ]; then rm -rf "$WHISK_CLUSTER_DIR"; fi
  exit $rc
}
trap on_exit EXIT
trap 'exit 143' TERM INT # so that on_exit runs when the test is stopped

teardown # leftovers of an interrupted run
ip netns add whisk-hub
ip -n whisk-hub link add wbr0 type bridge
ip -n whisk-hub link set wbr0 up
for i in 0 1 2 3 4; do
  n="node-$i"
  ip netns add "$n"
  ip link add "wh-$n" type veth peer name eth0 netns "$n"
  ip link set "wh-$n" netns whisk-hub
  ip -n whisk-hub link set "wh-$n" master wbr0 up
  ip -n "$n" link set lo up
  ip -n "$n" addr add "10.231.0.1$i/24" dev eth0
  ip -n "$n" link set eth0 up
  # The anchor: its own network and UTS namespace (host name node-N), the host's others.
  nsenter --net="/run/netns/$n" unshare --uts sh -c "hostname $n; exec sleep infinity" \
    </dev/null >/dev/null 2>&1 &
  echo $! >"$WHISK_NETNS_DIR/$n.pid"
  disown
done
if command -v ping >/dev/null 2>&1; then
  for i in 1 2 3 4; do
    ip netns exec node-0 ping -c1 -W2 "10.231.0.1$i" >/dev/null || die "node-0 cannot reach node-$i"
  done
fi
say "five namespaces on a bridge"

# --- 3. deploy ------------------------------------------------------------------------------
export ANSIBLE_CONFIG="$root/ansible/ansible.cfg" ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
play() {
  (cd ansible && "$venv/bin/ansible-playbook" -i environments/netns "$@")
}
play setup.yml prereq.yml couchdb.yml initdb.yml openwhisk.yml postdeploy.yml \
  || die "the deploy playbooks"
say "deployed: setup prereq couchdb initdb openwhisk postdeploy"
[ "$(stat -c %a "$WHISK_CLUSTER_DIR/secrets")" = 700 ] || die "the secrets folder is not 0700"
bad="$(find "$WHISK_CLUSTER_DIR/secrets" -type f ! -perm 600)"
[ -z "$bad" ] || die "secrets readable by others: $bad"
for f in "$WHISK_CLUSTER_DIR"/node-*/conf/*.env "$WHISK_CLUSTER_DIR"/node-*/certs/*; do
  [ "$(stat -c %a "$f")" = 600 ] || die "$f is not 0600"
done

# --- 4. checks ------------------------------------------------------------------------------
nsenter --net=/run/netns/node-0 /usr/bin/python3 scripts/cluster_checks.py || die "the checks"
say "checks passed"

# --- 5. clean -------------------------------------------------------------------------------
play openwhisk.yml -e mode=clean || die "openwhisk.yml -e mode=clean"
for n in "${nodes[@]}"; do
  anchor="$(cat "$WHISK_NETNS_DIR/$n.pid")"
  left="$(ip netns pids "$n" | grep -vx "$anchor" || true)"
  [ -z "$left" ] || die "processes left in $n after clean: $(for p in $left; do tr '\0' ' ' </proc/"$p"/cmdline; echo; done)"
  [ ! -e "$WHISK_CLUSTER_DIR/$n" ] || die "folder left after clean: $(find "$WHISK_CLUSTER_DIR/$n" | head)"
done
left="$(ps -eo pid=,args= | grep -F "$WHISK_CLUSTER_DIR/node-" | grep -v grep || true)"
[ -z "$left" ] || die "processes of the cluster left: $left"
say "clean: no process and no folder left"
say "passed"
