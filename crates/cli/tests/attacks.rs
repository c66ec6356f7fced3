//! The attacker suite: actions of one tenant (namespace `mallory`) try to cross every boundary
//! of `docs/security.md` against another tenant (`guest`) and the platform, in the process
//! runtime and in Docker, with the real `whisk standalone`. Every attempt must fail and the
//! platform must keep serving:
//!
//! - read the store file, the data folder, the platform's environment (a canary variable and
//!   `/proc/<platform>/environ`), another action's files and another group's peer folder;
//! - initialize or run another container through its `/init` and `/run`;
//! - write to the system folders, run as root (Docker);
//! - start tasks past the pids limit, allocate past `limits.memory` (OpenWhisk's memory error);
//! - leave a process behind with `setsid` that outlives its container;
//! - inject a message into another namespace's allreduce.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::*;

/// The victim: keeps a private file in its work folder and tells where it is, where its peer
/// folder is and its address.
const VICTIM: &str = r#"
import os, time, whisk_peers as wp
def main(args):
    with open("victim-secret.txt", "w") as f:
        f.write("s3cret of guest")
    wp.wait_for(1, timeout=20)
    ip = wp.peers()[wp.me()][0]
    time.sleep(float(args.get("hold", 0)))
    return {"secret": os.path.abspath("victim-secret.txt"),
            "peers": os.environ.get("WHISK_PEERS_DIR", "/addrMap"), "ip": ip}
"#;

/// The attacker: tries everything it is given and reports each attempt.
const ATTACKER: &str = r#"
import json, os, pickle, socket, struct, sys, threading, time, urllib.request

def attempt(f):
    try:
        return {"ok": True, "value": repr(f())[:300]}
    except BaseException as e:
        return {"ok": False, "error": (type(e).__name__ + ": " + str(e))[:300]}

def read(path):
    with open(path, "rb") as fh:
        return fh.read(64)

def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=3) as r:
        return r.status, r.read(300)

def write_system():
    for p in ["/usr/pwned", "/etc/pwned", "/pwned"]:
        try:
            with open(p, "w") as f:
                f.write("x")
            return p
        except OSError:
            pass
    raise PermissionError("no system folder is writable")

def inject(ip, group, claimed):
    """Speaks the peers protocol without the group's secret: a hello claiming to be
    `claimed`, then a collective frame carrying a huge value."""
    s = socket.create_connection((ip, 65432), timeout=3)
    hello = b"WHISK1 " + ("%s\n%s" % (group, claimed)).encode()
    s.sendall(struct.pack(">I", len(hello)) + hello)
    payload = pickle.dumps(1000000)
    s.sendall(struct.pack(">IB", len(payload) + 1, 1) + payload)
    time.sleep(0.3)
    s.sendall(struct.pack(">IB", len(payload) + 1, 1) + payload)
    return "sent"

def main(args):
    out = {}
    for key in ["store", "data_dir", "victim_secret", "victim_peers"]:
        if args.get(key):
            path = args[key]
            out[key] = attempt(lambda: os.listdir(path) if os.path.isdir(path) else read(path))
    if args.get("platform_pid"):
        out["platform_environ"] = attempt(lambda: read("/proc/%d/environ" % args["platform_pid"]))
    if args.get("victim_ip"):
        ip = args["victim_ip"]
        out["victim_init"] = attempt(lambda: post("http://%s:8080/init" % ip,
            {"value": {"main": "main", "code": "def main(a):\n    return {'pwned': True}\n"}}))
        out["victim_run"] = attempt(lambda: post("http://%s:8080/run" % ip, {"value": {}}))
    out["write_system"] = attempt(write_system)
    env = dict(os.environ)
    out["env_secrets"] = sorted(k for k in env if k in ("CANARY_SECRET", "WHISK_PROXY_SECRET")
                                or k.startswith(("WHISK_COUCHDB", "WHISK_KAFKA", "WHISK_REDIS")))
    out["canary"] = env.get("CANARY_SECRET")
    out["uid"] = os.getuid()
    if args.get("fork"):
        # Tasks (threads count against pids.max like processes, and cost little memory, so
        # the pids limit is what stops them), all released at the end.
        threading.stack_size(64 * 1024)
        release, made, error = threading.Event(), [], None
        for _ in range(int(args["fork"])):
            t = threading.Thread(target=release.wait, args=(60,), daemon=True)
            try:
                t.start()
            except BaseException as e:
                error = "%s: %s" % (type(e).__name__, e)
                break
            made.append(t)
        release.set()
        for t in made:
            t.join()
        out["forks"] = {"made": len(made), "error": error}
    if args.get("marker"):
        # A child in its own session, meant to outlive the container.
        pid = os.fork()
        if pid == 0:
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)",
                                      args["marker"]])
        out["left_behind"] = args["marker"]
    for target in args.get("inject", []):
        out.setdefault("inject", []).append(
            attempt(lambda: inject(target["ip"], target["group"], target["claimed"])))
    return out
"#;

/// Takes more memory than its limit, touching every page.
const HOG: &str = r#"
def main(args):
    hog = b"a" * (int(args.get("mb", 400)) << 20)
    return {"len": len(hog)}
"#;

/// Two instances: a barrier (both listening), a pause for the attacker, then an allreduce of 1s.
const GANG: &str = r#"
import time, whisk_peers as wp
def main(args):
    wp.barrier(timeout=30)
    time.sleep(float(args.get("hold", 6)))
    return {"sum": wp.allreduce(1, "sum", timeout=30), "me": wp.me()}
"#;

/// Every attempt in `report[key]` failed.
fn refused(report: &Value, key: &str) {
    let a = &report[key];
    assert!(a.is_object(), "{key} was not attempted: {report:#}");
    assert_eq!(a["ok"], false, "{key} succeeded: {report:#}");
}

/// The host copy of the group maps of `namespace` with `n` instances listed.
fn group_with(data: &Path, namespace: &str, n: usize) -> Option<(String, Vec<(String, String)>)> {
    let root = data.join("addrMap").join(namespace);
    for group in std::fs::read_dir(root).ok()?.flatten() {
        let map = std::fs::read_to_string(group.path().join("addrMap.txt")).unwrap_or_default();
        let entries: Vec<(String, String)> = map
            .trim()
            .split('&')
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if entries.len() == n {
            return Some((group.file_name().to_string_lossy().into_owned(), entries));
        }
    }
    None
}

async fn attacks(runtime: &str) {
    let tmp = whisk_test_support::temp_dir();
    let data = tmp.path().join("data");
    let mut extra = vec![];
    if runtime == "docker" {
        ensure_action_images();
        extra.extend(["--runtime", "docker"]);
    }
    let mut server = Server::start_with_env(
        &data,
        tmp.path(),
        &extra,
        &[
            ("CANARY_SECRET", "the-platforms-own-secret"),
            ("WHISK_COUCHDB__PASSWORD", "not-for-actions"),
        ],
    )
    .await;
    let guest = Api::new(&server.url(""), GUEST_KEY);
    let mallory_key = admin_user_key("mallory", &["--data-dir".as_ref(), data.as_os_str()], &[]);
    let mallory = Api::new(&server.url(""), &mallory_key);

    // The victim runs once (its container stays warm), then again while mallory attacks.
    guest.put_python("victim", VICTIM, 128).await;
    let (status, victim) = guest
        .invoke(
            "victim",
            "blocking=true&result=true",
            json!({"instanceID": "v"}),
        )
        .await;
    assert_eq!(status, 200, "{victim}");
    let busy = guest
        .start("victim", json!({"instanceID": "v", "hold": 8}))
        .await;

    mallory.put_python("attacker", ATTACKER, 512).await;
    let marker = format!("{}.{}", 31337, std::process::id());
    let (status, report) = mallory
        .invoke(
            "attacker",
            "blocking=true&result=true",
            json!({
                "store": data.join("whisk.redb"),
                "data_dir": data,
                "victim_secret": victim["secret"],
                "victim_peers": victim["peers"],
                "victim_ip": victim["ip"],
                "platform_pid": server.pid(),
                "fork": 3000,
                "marker": marker,
            }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    eprintln!("{runtime} attacker report: {report:#}");
    for key in [
        "store",
        "data_dir",
        "platform_environ",
        "victim_init",
        "victim_run",
        "write_system",
    ] {
        refused(&report, key);
    }
    if runtime == "process" {
        // In Docker these paths are the attacker's own container's: nothing to cross.
        refused(&report, "victim_secret");
        refused(&report, "victim_peers");
    }
    assert_eq!(report["canary"], Value::Null, "{report:#}");
    assert_eq!(report["env_secrets"], json!([]), "{report:#}");
    assert_ne!(report["uid"], 0, "actions never run as root: {report:#}");
    let forks = &report["forks"];
    assert!(
        forks["made"].as_u64().unwrap() < 3000 && forks["error"].is_string(),
        "the pids limit stops a fork bomb: {forks}"
    );
    // The victim was not disturbed.
    let record = guest.result(&busy).await;
    assert_eq!(record["ip"], victim["ip"]);

    // Memory: past limits.memory ends with OpenWhisk's error, and the platform goes on.
    mallory.put_python("hog", HOG, 128).await;
    let (status, body) = mallory
        .invoke("hog", "blocking=true&result=true", json!({"mb": 400}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"], "The action exhausted its memory and was aborted.",
        "{body}"
    );

    // Peers: mallory injects into guest's allreduce; it still sums the two honest 1s.
    guest.put_python("gang", GANG, 128).await;
    let gang = {
        let g = Api::new(&server.url(""), GUEST_KEY);
        tokio::spawn(async move {
            g.invoke(
                "gang",
                "blocking=true&result=true&instances=2",
                json!({"hold": 6}),
            )
            .await
        })
    };
    let (group, members) = eventually(
        "the gang's map to list both instances",
        Duration::from_secs(60),
        || async { group_with(&data, "guest", 2) },
    )
    .await;
    let targets: Vec<Value> = members
        .iter()
        .map(|(id, ip)| {
            let claimed = if id == "0" { "1" } else { "0" };
            json!({"ip": ip, "group": group, "claimed": claimed})
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await; // both are past the barrier
    let (status, report) = mallory
        .invoke(
            "attacker",
            "blocking=true&result=true",
            json!({"inject": targets}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    eprintln!("{runtime} injection report: {report:#}");
    let (status, body) = gang.await.unwrap();
    assert_eq!(status, 200, "{body}");
    for r in body["results"].as_array().unwrap() {
        assert_eq!(
            r["sum"], 2,
            "an injected message reached the allreduce: {body}"
        );
    }

    // Still serving; and nothing an action started outlives the platform's containers.
    let (status, _) = guest
        .invoke(
            "victim",
            "blocking=true&result=true",
            json!({"instanceID": "v"}),
        )
        .await;
    assert_eq!(status, 200);
    server.terminate();
    // No setsid process outlives its container.
    whisk_test_support::wait_until_gone(&marker, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn process_runtime_attacks_fail() {
    attacks("process").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_runtime_attacks_fail() {
    attacks("docker").await;
}
