//! Peer maps end to end, with the real binaries: instances invoked as in the seed see each
//! other in `addrMap.txt` with distinct IPs; an instance that ends disappears; a 50 ms instance
//! is seen by a peer waiting for it; numeric and string ids; namespace isolation; a killed
//! platform's instances vanish when its invoker's lease lapses (two platforms sharing a
//! `whisk directory`); a directory restarted on Redis serves the same map; ring and allreduce
//! over gangs of 2, 8 and 32.

mod support;

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::*;
use whisk_test_support::services::Redis;

const SEEN: &str = include_str!("../../../functions/peers_seen.py");
const RING: &str = include_str!("../../../functions/ring.py");
const ALLREDUCE: &str = include_str!("../../../functions/allreduce.py");

/// Waits until instance `target` appears in this group's map, then until it is gone.
const WATCHER: &str = r#"
import json, os, time
def listed(target):
    try:
        with open(os.path.join(os.environ["WHISK_PEERS_DIR"], "peers.json")) as f:
            return any(p["id"] == target for p in json.load(f)["peers"])
    except (OSError, ValueError):
        return False
def main(args):
    target, deadline = args["target"], time.time() + float(args.get("timeout", 20))
    while not listed(target):
        if time.time() > deadline:
            return {"seen": False, "gone": False}
        time.sleep(0.001)
    t = time.time()
    while listed(target):
        if time.time() > deadline:
            return {"seen": True, "gone": False}
        time.sleep(0.001)
    return {"seen": True, "gone": True, "gone_after_ms": int((time.time() - t) * 1000)}
"#;

/// Lives `ms` milliseconds.
const SLEEPER: &str = r#"
import time
def main(args):
    time.sleep(float(args.get("ms", 50)) / 1000)
    return {"slept": args.get("ms", 50)}
"#;

/// Lists its group's peers after `ms` milliseconds, then stays `hold` ms more.
const LISTER: &str = r#"
import time, whisk_peers
def main(args):
    time.sleep(float(args.get("ms", 0)) / 1000)
    peers = sorted(whisk_peers.peers())
    time.sleep(float(args.get("hold", 0)) / 1000)
    return {"peers": peers}
"#;

async fn standalone(dir: &Path, extra: &[&str]) -> Server {
    Server::start_with(&dir.join("data"), dir, extra).await
}

#[tokio::test]
async fn four_instances_as_in_the_seed_see_each_other() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("fib4", SEEN, 128).await;
    let mut ids = vec![];
    for i in 0..4 {
        ids.push(
            api.start("fib4", json!({"instanceID": format!("myname{i}"), "n": 4}))
                .await,
        );
    }
    let mut maps = vec![];
    for id in &ids {
        maps.push(api.result(id).await);
    }
    let first = &maps[0]["peers"];
    let ips: std::collections::BTreeSet<&str> = first
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ips.len(), 4, "four distinct IPs: {first}");
    for (i, m) in maps.iter().enumerate() {
        assert_eq!(m["me"], format!("myname{i}"));
        let keys: Vec<&String> = m["peers"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec!["myname0", "myname1", "myname2", "myname3"],
            "{m}"
        );
        assert_eq!(&m["peers"], first, "every instance sees the same map");
        let line = m["addrMap"].as_str().unwrap();
        assert!(
            line.starts_with("myname0=") && line.matches('&').count() == 3,
            "seed format: {line}"
        );
    }
    let host_copy = server
        .data_dir
        .join("addrMap/guest/guest%2Ffib4/addrMap.txt");
    assert!(host_copy.exists(), "host copy at {}", host_copy.display());
}

#[tokio::test]
async fn short_instances_are_seen_and_ended_ones_disappear() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("watcher", WATCHER, 128).await;
    api.put_python("sleeper", SLEEPER, 128).await;
    for ms in [50, 300] {
        let target = format!("short{ms}");
        let w = api
            .start(
                "watcher",
                json!({"instanceID": "w", "group": "life", "target": target}),
            )
            .await;
        // The watcher is listening before the short instance starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = api
            .start(
                "sleeper",
                json!({"instanceID": target, "group": "life", "ms": ms}),
            )
            .await;
        let seen = api.result(&w).await;
        assert_eq!(seen["seen"], true, "a {ms} ms instance was seen: {seen}");
        assert_eq!(seen["gone"], true, "and disappeared when it ended: {seen}");
        api.result(&s).await;
    }
}

#[tokio::test]
async fn numeric_and_string_ids_and_namespaces_are_isolated() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("lister", LISTER, 128).await;
    // The number 0 and the string "1" are both ids; the string "0" names the same as 0.
    // Both list their peers while both run.
    let a = api
        .start(
            "lister",
            json!({"instanceID": 0, "group": "ids", "ms": 1500, "hold": 2000}),
        )
        .await;
    let b = api
        .start(
            "lister",
            json!({"instanceID": "1", "group": "ids", "ms": 1500, "hold": 2000}),
        )
        .await;
    assert_eq!(api.result(&a).await["peers"], json!(["0", "1"]));
    assert_eq!(api.result(&b).await["peers"], json!(["0", "1"]));
    let (status, body) = api
        .invoke("lister", "blocking=true", json!({"instanceID": "a&b"}))
        .await;
    assert_eq!(status, 400, "an id with & is refused: {body}");
    assert!(body["error"].as_str().unwrap().contains("instanceID"));

    // Another namespace, same group name: never sees guest's instances.
    let other_key = admin_user_key(
        "other",
        &["--data-dir".as_ref(), server.data_dir.as_os_str()],
        &[],
    );
    let other = Api::new(&server.url(""), &other_key);
    other.put_python("lister", LISTER, 128).await;
    let g = api
        .start(
            "lister",
            json!({"instanceID": "guest0", "group": "shared", "ms": 1500, "hold": 1000}),
        )
        .await;
    let o = other
        .start(
            "lister",
            json!({"instanceID": "other0", "group": "shared", "ms": 1500, "hold": 1000}),
        )
        .await;
    assert_eq!(other.result(&o).await["peers"], json!(["other0"]));
    assert_eq!(api.result(&g).await["peers"], json!(["guest0"]));
}

/// `whisk directory` on `port` (over `redis` when given), its log in `dir`.
fn spawn_directory(dir: &Path, port: u16, redis: Option<&str>) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["directory", "--listen", &listen];
    if let Some(url) = redis {
        args.extend(["--redis", url]);
    }
    spawn_whisk(dir, &format!("directory-{port}"), &args, &[])
}

/// Waits until the host copy of a group's map, `file`, lists `id`.
async fn wait_listed(file: &Path, id: &str) {
    let entry = format!("{id}=");
    eventually(
        &format!("{id} in {}", file.display()),
        Duration::from_secs(20),
        || async {
            let map = std::fs::read_to_string(file).unwrap_or_default();
            map.contains(&entry).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_killed_platforms_instances_vanish_when_its_lease_lapses() {
    let dir = whisk_test_support::temp_dir();
    let port = free_port();
    let _directory = spawn_directory(dir.path(), port, None);
    let url = format!("127.0.0.1:{port}");
    let d1 = dir.path().join("one");
    let d2 = dir.path().join("two");
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let mut victim_host = standalone(&d1, &["--directory", &url, "--invoker-id", "1"]).await;
    let watcher_host = standalone(&d2, &["--directory", &url, "--invoker-id", "2"]).await;
    let victim_api = Api::new(&victim_host.url(""), GUEST_KEY);
    let api = Api::new(&watcher_host.url(""), GUEST_KEY);
    victim_api.put_python("sleeper", SLEEPER, 128).await;
    api.put_python("watcher", WATCHER, 128).await;
    let w = api
        .start(
            "watcher",
            json!({"instanceID": "w", "group": "crash", "target": "victim", "timeout": 30}),
        )
        .await;
    victim_api
        .start(
            "sleeper",
            json!({"instanceID": "victim", "group": "crash", "ms": 60000}),
        )
        .await;
    // Wait until the victim runs, then kill its whole platform without a goodbye.
    let peers_file = victim_host.data_dir.join("addrMap/guest/crash/addrMap.txt");
    wait_listed(&peers_file, "victim").await;
    victim_host.kill();
    let seen = api.result(&w).await;
    assert_eq!(seen["seen"], true, "{seen}");
    assert_eq!(
        seen["gone"], true,
        "the killed instance vanished from the other platform's map: {seen}"
    );
}

#[tokio::test]
async fn a_directory_restarted_on_redis_serves_the_same_map() {
    let dir = whisk_test_support::temp_dir();
    let redis = Redis::start();
    let redis_url = redis.url();
    let port = free_port();
    let mut directory = spawn_directory(dir.path(), port, Some(&redis_url));
    let url = format!("127.0.0.1:{port}");
    let server = standalone(dir.path(), &["--directory", &url]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("sleeper", SLEEPER, 128).await;
    api.put_python("lister", LISTER, 128).await;
    let holder = api
        .start(
            "sleeper",
            json!({"instanceID": "holder", "group": "durable", "ms": 8000}),
        )
        .await;
    let host_copy = server.data_dir.join("addrMap/guest/durable/addrMap.txt");
    wait_listed(&host_copy, "holder").await;
    // Restart the directory on the same Redis and port.
    directory.kill();
    directory = spawn_directory(dir.path(), port, Some(&redis_url));
    let l = api
        .start(
            "lister",
            json!({"instanceID": "late", "group": "durable", "ms": 1000}),
        )
        .await;
    assert_eq!(
        api.result(&l).await["peers"],
        json!(["holder", "late"]),
        "the restarted directory still lists the holder"
    );
    api.result(&holder).await;
    drop(directory);
}

#[tokio::test]
async fn ring_and_allreduce_give_the_right_answers() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("ring", RING, 128).await;
    api.put_python("allreduce", ALLREDUCE, 128).await;
    for n in [2, 8, 32] {
        api.check_ring_and_allreduce(n).await;
    }
}

/// Waits for its partner, then a barrier, a pause (the intruder's window), an allreduce of 1s.
const GANG: &str = r#"
import time, whisk_peers as wp
def main(args):
    wp.wait_for(2, timeout=30)
    wp.barrier(timeout=30)
    time.sleep(float(args.get("hold", 3)))
    return {"sum": wp.allreduce(1, "sum", timeout=30), "me": wp.me()}
"#;

/// A peer instance of another group (it holds that group's real secret) that knows the
/// victims' addresses and group: claims to be each victim's partner, in the real protocol and
/// in the old unauthenticated one (`claim_group`: the victims' group it claims).
const INTRUDER: &str = r#"
import os, pickle, socket, struct, time, whisk_peers as wp
def main(args):
    out = []
    for t in args["targets"]:
        os.environ["__OW_PEER_GROUP"] = args["claim_group"]
        os.environ["__OW_INSTANCE_ID"] = t["claimed"]
        c = socket.create_connection((t["ip"], t["port"]), timeout=3)
        try:
            wp._connect_handshake(c, t["id"], 3)
            out.append("accepted")
        except OSError as e:
            out.append("refused: %s" % e)
        s = socket.create_connection((t["ip"], t["port"]), timeout=3)
        hello = ("WHISK1 %s\n%s" % (args["claim_group"], t["claimed"])).encode()
        p = pickle.dumps(1000000)
        try:
            s.sendall(struct.pack(">I", len(hello)) + hello + struct.pack(">IB", len(p) + 1, 1) + p)
            s.settimeout(3)
            out.append("refused: closed" if s.recv(100)[:7] != b"" else "answered")
        except OSError as e:
            out.append("refused: %s" % e)
    return {"attempts": out}
"#;

#[tokio::test]
async fn another_group_cannot_join_or_inject_into_an_allreduce() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("gang", GANG, 128).await;
    api.put_python("intruder", INTRUDER, 128).await;
    let victims: Vec<String> = {
        let mut v = vec![];
        for id in ["0", "1"] {
            v.push(
                api.start(
                    "gang",
                    json!({"instanceID": id, "group": "victims", "hold": 4}),
                )
                .await,
            );
        }
        v
    };
    // The victims' addresses, as an attacker who scanned for them would know them.
    let map = server.data_dir.join("addrMap/guest/victims/peers.json");
    let peers = eventually(
        "both victims in the map",
        Duration::from_secs(30),
        || async {
            let m: serde_json::Value = std::fs::read_to_string(&map)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default();
            let peers = m["peers"].as_array()?;
            (peers.len() == 2).then(|| peers.clone())
        },
    )
    .await;
    assert!(
        !server
            .data_dir
            .join("addrMap/guest/victims/group.key")
            .exists(),
        "the host copy holds no secret"
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // both past the barrier: listening
    let targets: Vec<_> = peers
        .iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap();
            json!({"ip": p["ip"], "port": p["port"], "id": id,
                   "claimed": if id == "0" { "1" } else { "0" }})
        })
        .collect();
    let (status, report) = api
        .invoke(
            "intruder",
            "blocking=true&result=true",
            json!({"instanceID": "x", "group": "intruders", "claim_group": "victims",
                   "targets": targets}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    eprintln!("intruder's report: {report}");
    for a in report["attempts"].as_array().unwrap() {
        assert!(a.as_str().unwrap().starts_with("refused"), "{report}");
    }
    for v in &victims {
        let r = api.result(v).await;
        assert_eq!(
            r["sum"], 2,
            "an intruder's value reached the allreduce: {r}"
        );
    }
}

#[tokio::test]
async fn group_names_that_are_paths_are_refused() {
    let dir = whisk_test_support::temp_dir();
    let server = standalone(dir.path(), &[]).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("lister", LISTER, 128).await;
    for bad in ["..", ".", "../../escape", "a/b"] {
        let (status, body) = api
            .invoke(
                "lister",
                "blocking=true",
                json!({"instanceID": "a", "group": bad}),
            )
            .await;
        assert_ne!(status, 200, "group {bad:?} accepted: {body}");
        assert!(
            body.to_string().contains("'group' must not be"),
            "group {bad:?}: {status} {body}"
        );
    }
    assert!(!server.data_dir.join("escape").exists());
    assert!(!server
        .data_dir
        .join("addrMap/guest/..")
        .join("addrMap.txt")
        .exists());
    // A dot inside a name is fine.
    let (status, body) = api
        .invoke(
            "lister",
            "blocking=true&result=true",
            json!({"instanceID": "a", "group": "v1.2"}),
        )
        .await;
    assert_eq!((status, &body["peers"]), (200, &json!(["a"])), "{body}");
}
