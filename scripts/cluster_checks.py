"""The checks of scripts/cluster-test.sh, run inside node-0's network namespace against the
platform the netns environment's playbooks deployed: whisk status, the well-known key refused,
the npm client conformance suite through node-0's gateway, the seed's four instances
myname0..3 on four invokers seeing each other, ring and allreduce across nodes, peer RTT
between nodes, and node-3 killed under load. Exits non-zero on the first failure; prints a
timing line per step."""
import base64
import glob
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

CLUSTER = os.environ["WHISK_CLUSTER_DIR"]
SECRETS = os.path.join(CLUSTER, "secrets")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHISK = os.environ["WHISK_BIN"]
EDGE = "http://10.231.0.10"
NODE_NET = {n: "10.232.%d." % n for n in range(1, 5)}
WELL_KNOWN_GUEST = ("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:"
                    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP")
T0 = time.monotonic()


def step(msg, since):
    print("cluster: %-60s %6.1f s (at %6.1f s)" % (msg, time.monotonic() - since, time.monotonic() - T0),
          flush=True)


def fail(msg):
    print("cluster: FAILED: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def env_file(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and "=" in line:
                k, v = line.split("=", 1)
                out[k] = v
    return out


GUEST = open(os.path.join(SECRETS, "guest.key")).read().strip()
CLI_ENV = env_file(os.path.join(CLUSTER, "node-0", "conf", "cli.env"))


def http(method, path, body=None, key=GUEST, timeout=70):
    url = EDGE + "/api/v1/namespaces/_/" + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(key.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


SLOW = "import time\ndef main(args):\n    time.sleep(float(args.get('sleep', 1)))\n    return {'slept': True}\n"


def put_action(name, path, memory=256, timeout_ms=60000, code=None):
    code = code or open(os.path.join(ROOT, path)).read()
    s, b = http("PUT", "actions/%s?overwrite=true" % name,
                {"exec": {"kind": "python:3", "code": code},
                 "limits": {"memory": memory, "timeout": timeout_ms}})
    check(s == 200, "create %s: %s %s" % (name, s, b))


def record(aid, wait=90):
    deadline = time.monotonic() + wait
    while True:
        s, b = http("GET", "activations/" + aid)
        if s == 200:
            return b
        if time.monotonic() > deadline:
            fail("no record of %s after %d s: %s %s" % (aid, wait, s, b))
        time.sleep(0.2)


def node_of(ip):
    for n, prefix in NODE_NET.items():
        if ip.startswith(prefix):
            return n
    fail("address %s is in no node's instance subnet" % ip)


def status():
    t = time.monotonic()
    env = dict(os.environ, **CLI_ENV)
    out = subprocess.run(
        [WHISK, "status", "--json", "--controller", "http://10.231.0.10:3233", "--kafka", "10.231.0.10:9092",
         "--couchdb", "http://10.231.0.10:5984", "--directory", "10.231.0.10:7070"],
        env=env, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "whisk status: %s %s" % (out.stdout, out.stderr))
    services = {s["service"]: s for s in json.loads(out.stdout)["services"]}
    for name in ["controller", "directory", "kafka", "couchdb", "redis"] + ["invoker%d" % i for i in range(4)]:
        check(services.get(name, {}).get("state") == "up", "whisk status: %s not up: %s" % (name, out.stdout))
    s, b = http("GET", "actions", key=WELL_KNOWN_GUEST)
    check(s == 401, "OpenWhisk's well-known guest key answered %s" % s)
    with urllib.request.urlopen(EDGE + "/api/v1", timeout=10) as r:
        check(r.status == 200, "gateway /api/v1")
    step("whisk status: 4 invokers and every service up", t)


def conformance():
    t = time.monotonic()
    data = os.path.join(CLUSTER, "conformance")
    os.makedirs(data, exist_ok=True)
    env = dict(os.environ, **CLI_ENV)
    env.update({"__OW_API_HOST": EDGE, "__OW_API_KEY": GUEST, "__OW_NAMESPACE": "guest",
                "WHISK_BIN": WHISK, "WHISK_DATA_DIR": data,
                "WHISK_ADMIN_COUCHDB": "http://10.231.0.10:5984"})
    for v in ["__OW_IGNORE_CERTS", "__OW_APIGW_TOKEN", "PROXY", "proxy", "HTTP_PROXY", "http_proxy",
              "HTTPS_PROXY", "https_proxy"]:
        env.pop(v, None)
    args = ["node", "--test", "--test-reporter=spec"]
    if os.environ.get("CONFORMANCE_TEST_PATTERN"):
        args.append("--test-name-pattern=" + os.environ["CONFORMANCE_TEST_PATTERN"])
    out = subprocess.run(args, cwd=os.path.join(ROOT, "tests", "conformance"), env=env,
                         capture_output=True, text=True, timeout=600)
    summary = [l for l in out.stdout.splitlines() if re.match(r"^. (tests|pass|fail) ", l)]
    if out.returncode != 0:
        print(out.stdout[-20000:], out.stderr[-5000:])
        fail("the conformance suite failed through the gateway")
    step("npm client conformance suite through node-0's gateway (%s)" % ", ".join(summary), t)


def myname():
    """The seed's workflow: four invokes -p instanceID mynameK (spread), each sees all four."""
    t = time.monotonic()
    put_action("fib", "functions/peers_seen.py")
    ids = []
    for k in range(4):
        s, b = http("POST", "actions/fib?blocking=false",
                    {"instanceID": "myname%d" % k, "n": 4, "hold": 2, "placement": "spread"})
        check(s == 202, "invoke myname%d: %s %s" % (k, s, b))
        ids.append(b["activationId"])
    nodes = set()
    for k, aid in enumerate(ids):
        r = record(aid)
        check(r["response"]["status"] == "success", "myname%d: %s" % (k, r))
        res = r["response"]["result"]
        check(sorted(res["peers"]) == ["myname%d" % i for i in range(4)], "myname%d saw %s" % (k, res))
        nodes.add(node_of(res["peers"]["myname%d" % k]))
        print("cluster:   myname%d: %s" % (k, res["addrMap"]))
    check(nodes == {1, 2, 3, 4}, "the four instances ran on nodes %s, not on four" % sorted(nodes))
    step("myname0..3 on four invokers, each seeing all four in addrMap.txt", t)


# The seed's instances exchanging messages: myname0..3 (invoked one by one, not a gang) pass a
# token round a ring in the order of their names, then allreduce their positions.
NAMED_RING = """import whisk_peers as wp
def main(args):
    n = int(args.get("n", 4))
    wp.wait_for(n, timeout=30)
    ids = sorted(wp.peers())
    me = wp.me()
    i = ids.index(me)
    nxt = ids[(i + 1) % n]
    if i == 0:
        wp.send(nxt, b"0")
        _, data = wp.recv(timeout=30)
        token = int(data)
    else:
        _, data = wp.recv(timeout=30)
        token = int(data) + i
        wp.send(nxt, str(token).encode())
    total = wp.allreduce(i, "sum", timeout=30)
    wp.barrier()
    return {"me": me, "token": token, "sum": total, "ip": wp.peers()[me][0]}
"""


def named_ring():
    t = time.monotonic()
    put_action("mring", None, code=NAMED_RING)
    ids = []
    for k in range(4):
        s, b = http("POST", "actions/mring?blocking=false",
                    {"instanceID": "myname%d" % k, "n": 4, "placement": "spread"})
        check(s == 202, "invoke mring myname%d: %s %s" % (k, s, b))
        ids.append(b["activationId"])
    nodes = set()
    for k, aid in enumerate(ids):
        r = record(aid)
        check(r["response"]["status"] == "success", "mring myname%d: %s" % (k, r))
        res = r["response"]["result"]
        check(res["sum"] == 6, "allreduce of myname%d: %s" % (k, res))
        if k == 0:
            check(res["token"] == 6, "the ring's token at myname0: %s" % res)
        nodes.add(node_of(res["ip"]))
    check(nodes == {1, 2, 3, 4}, "myname0..3 ran on nodes %s" % sorted(nodes))
    step("myname0..3 on four nodes: a ring and an allreduce across nodes", t)


def gangs():
    t = time.monotonic()
    put_action("ring", "functions/ring.py")
    put_action("allreduce", "functions/allreduce.py")
    put_action("where", "functions/peers_seen.py")
    s, b = http("POST", "actions/where?blocking=true&result=true&instances=4",
                {"n": 4, "hold": 0.5, "placement": "spread"})
    check(s == 200, "gang of 4: %s %s" % (s, b))
    nodes = {node_of(r["peers"][r["me"]]) for r in b["results"]}
    check(nodes == {1, 2, 3, 4}, "a spread gang of 4 ran on nodes %s" % sorted(nodes))
    for name, field in [("ring", "token"), ("allreduce", "sum")]:
        s, b = http("POST", "actions/%s?blocking=true&result=true&instances=4" % name, {"placement": "spread"})
        check(s == 200, "%s of 4: %s %s" % (name, s, b))
        if name == "ring":
            check(b["results"][0]["token"] == 6, "ring: %s" % b)
        else:
            check(all(r["sum"] == 6 for r in b["results"]), "allreduce: %s" % b)
    put_action("pingpong", "functions/pingpong.py", memory=256)
    s, b = http("POST", "actions/pingpong?blocking=true&result=true&instances=2",
                {"placement": "spread", "rounds": 500, "mb": 16})
    check(s == 200, "pingpong across nodes: %s %s" % (s, b))
    r = b["results"][0]
    print("cluster:   peer messages between nodes: rtt p50 %.0f us, p99 %.0f us, %.2f GB/s"
          % (r["rtt_p50_us"], r["rtt_p99_us"], r["bandwidth_gb_s"]), flush=True)
    step("spread gang on four nodes; ring and allreduce of 4 across nodes", t)


def host_copies(group):
    """addrMap.txt of `group` (namespace guest) as each invoker's node wrote it."""
    out = {}
    for n in range(1, 5):
        p = os.path.join(CLUSTER, "node-%d" % n, "invoker", "invoker%d" % (n - 1), "addrMap", "guest", group,
                         "addrMap.txt")
        try:
            out[n] = open(p).read().strip()
        except OSError:
            out[n] = None
    return out


def kill_node3():
    t = time.monotonic()
    put_action("holder", "functions/peers_seen.py")
    put_action("slow", None, timeout_ms=10000, code=SLOW)
    holders = []
    for k in range(4):
        s, b = http("POST", "actions/holder?blocking=false",
                    {"instanceID": "h%d" % k, "n": 4, "hold": 12, "placement": "spread"})
        check(s == 202, "holder: %s %s" % (s, b))
        holders.append(b["activationId"])
    deadline = time.monotonic() + 30
    seen = {}  # (entry, node) -> when that node's host copy first listed it
    while True:
        maps = host_copies("guest%2Fholder")
        now = time.monotonic()
        for n, m in maps.items():
            for e in (m or "").split("&"):
                if e:
                    seen.setdefault((e, n), now)
        if all(m and len(m.split("&")) == 4 for m in maps.values()):
            break
        check(time.monotonic() < deadline, "the holders never all listed: %s" % maps)
        time.sleep(0.001)
    # Peer-map propagation between nodes: a node writes a group's map once it hosts one of its
    # instances, so the instance that started last (every node watching by then) shows the
    # time from its own node's map to the other nodes' maps.
    first = {}
    for (e, n), when in seen.items():
        first.setdefault(e, []).append(when)
    last = max(first, key=lambda e: min(first[e]))
    print("cluster:   peer-map propagation between nodes: the last instance (%s) reached the other "
          "nodes' maps %.1f ms after the first node's map listed it (files polled every ms)"
          % (last, (max(first[last]) - min(first[last])) * 1000), flush=True)
    victim = [e.split("=")[1] for e in maps[1].split("&") if e.split("=")[1].startswith(NODE_NET[3])]
    check(len(victim) == 1, "one holder on node-3: %s" % maps)
    accepted, refused = [], []
    stop = threading.Event()
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            s, b = http("POST", "actions/slow?blocking=false", {"sleep": 1, "placement": "spread"})
            with lock:
                if s == 202:
                    accepted.append(b["activationId"])
                else:
                    refused.append((s, b))
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for th in threads:
        th.start()
    time.sleep(3)
    anchor = open(os.path.join(os.environ["WHISK_NETNS_DIR"], "node-3.pid")).read().strip()
    pids = subprocess.run(["ip", "netns", "pids", "node-3"], capture_output=True, text=True).stdout.split()
    killed_at = time.monotonic()
    for pid in pids:
        if pid != anchor:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
    gone = {}
    while len(gone) < 3:
        for n, m in host_copies("guest%2Fholder").items():
            if n != 3 and n not in gone and victim[0] not in (m or ""):
                gone[n] = time.monotonic() - killed_at
        check(time.monotonic() - killed_at < 10, "node-3's instance still listed after 10 s: %s"
              % host_copies("guest%2Fholder"))
        time.sleep(0.01)
    time.sleep(4)
    stop.set()
    for th in threads:
        th.join()
    lease_ms = 300
    print("cluster:   %d pids of node-3 killed; its instance left the maps of nodes 1, 2, 4 after %s ms "
          "(lease %d ms)" % (len(pids) - 1, ", ".join("%.0f" % (gone[n] * 1000) for n in sorted(gone)), lease_ms),
          flush=True)
    check(max(gone.values()) < lease_ms / 1000 + 1.0,
          "node-3's instance stayed in a map %.2f s after the kill" % max(gone.values()))
    outcomes = {}
    for aid in accepted:
        r = record(aid, wait=60)
        st = r["response"]["status"]
        check(st in ("success", "whisk internal error"), "activation %s ended %s" % (aid, r))
        outcomes[st] = outcomes.get(st, 0) + 1
    check(all(s in (429, 503) for s, _ in refused), "refused otherwise than 429/503: %s" % refused[:3])
    print("cluster:   under load: %d accepted, every one with a record %s; %d refused (429/503)"
          % (len(accepted), outcomes, len(refused)), flush=True)
    step("node-3 killed under load: no accepted activation lost", t)


if __name__ == "__main__":
    status()
    conformance()
    myname()
    named_ring()
    gangs()
    kill_node3()
