//! `whisk_peers` authenticates every connection with its group's secret (`group.key` in the
//! peer folder): two instances of a group run an allreduce while an instance of another group
//! (its own folder and secret), knowing the victims' addresses, tries to inject messages with
//! the old unauthenticated hello, with a handshake under its own secret, with a claimed id and
//! with a 4 GB frame length. The allreduce still sums the two honest values, and every attempt
//! is refused. Real `python3` processes over loopback TCP; nothing is mocked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use std::time::Duration;
use whisk_test_support::{free_port, temp_dir, wait_for_port};

const PEER: &str = r#"
import json, sys, time, whisk_peers as wp
wp.barrier(timeout=20)
time.sleep(float(sys.argv[1]))      # the attacker's window
print(json.dumps({"me": wp.me(), "sum": wp.allreduce(1, "sum", timeout=20)}))
"#;

const ATTACKER: &str = r#"
import json, os, pickle, socket, struct, sys, time, whisk_peers as wp
targets = json.loads(sys.argv[1])
out = []
def frame(b):
    return struct.pack(">I", len(b)) + b
for t in targets:
    addr = (t["ip"], t["port"])
    # 1. The seed-era hello: a claimed sender, then a collective frame of a huge value.
    try:
        s = socket.create_connection(addr, timeout=3)
        s.sendall(frame(b"WHISK1 " + ("%s\n%s" % (t["group"], t["claimed"])).encode()))
        p = pickle.dumps(1000000)
        s.sendall(struct.pack(">IB", len(p) + 1, 1) + p)
        time.sleep(0.2)
        s.sendall(struct.pack(">IB", len(p) + 1, 1) + p)
        s.settimeout(2)
        out.append(("WHISK1", s.recv(100) == b""))
    except OSError as e:
        out.append(("WHISK1", True))
    # 2. The real protocol under the attacker's own (other group's) secret, claiming an id.
    os.environ["__OW_PEER_GROUP"] = t["group"]
    os.environ["__OW_INSTANCE_ID"] = t["claimed"]
    c = socket.create_connection(addr, timeout=3)
    try:
        wp._connect_handshake(c, t["id"], 3)
        out.append(("handshake", False))
    except OSError as e:
        out.append(("handshake", True))
    # 3. A 4 GB frame where the handshake belongs.
    try:
        s = socket.create_connection(addr, timeout=3)
        s.recv(100)
        s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"x" * 1000)
        s.settimeout(2)
        out.append(("huge", s.recv(100) == b""))
    except OSError:
        out.append(("huge", True))
print(json.dumps(out))
"#;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// A peer folder with the map of `peers` (id, port) on 127.0.0.1 and the secret `secret`.
fn folder(root: &Path, name: &str, group: &str, peers: &[(&str, u16)], secret: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let list: Vec<Value> = peers
        .iter()
        .map(|(id, port)| json!({"id": id, "ip": "127.0.0.1", "port": port}))
        .collect();
    let map = json!({"version": 1, "namespace": "ns", "group": group, "peers": list});
    std::fs::write(dir.join("peers.json"), map.to_string()).unwrap();
    std::fs::write(dir.join("group.key"), secret).unwrap();
    dir
}

fn python(code: &str, args: &[&str], dir: &Path, id: &str, group: &str, gang: usize) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(code)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PYTHONPATH", python_dir())
        .env("WHISK_PEERS_DIR", dir)
        .env("__OW_INSTANCE_ID", id)
        .env("__OW_PEER_GROUP", group)
        .env("__OW_GANG_SIZE", gang.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn another_group_cannot_inject_into_an_allreduce() {
    let root = temp_dir();
    let (p0, p1, p9) = (free_port(), free_port(), free_port());
    let group = [("0", p0), ("1", p1)];
    let secret = "a".repeat(64);
    let victims: Vec<_> = ["0", "1"]
        .iter()
        .map(|id| {
            let dir = folder(root.path(), &format!("v{id}"), "g", &group, &secret);
            python(PEER, &["2.5"], &dir, id, "g", 2)
                .spawn()
                .expect("python3 is needed (scripts/test.sh installs it)")
        })
        .collect();
    // Wait until both listen (the barrier binds them), then attack.
    for port in [p0, p1] {
        wait_for_port(port, Duration::from_secs(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mallory = folder(root.path(), "m", "other", &[("9", p9)], &"b".repeat(64));
    let targets = json!([
        {"ip": "127.0.0.1", "port": p0, "group": "g", "id": "0", "claimed": "1"},
        {"ip": "127.0.0.1", "port": p1, "group": "g", "id": "1", "claimed": "0"},
    ]);
    let out = python(ATTACKER, &[&targets.to_string()], &mallory, "9", "other", 1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "attacker crashed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("attacker's report: {report}");
    for attempt in report.as_array().unwrap() {
        assert_eq!(attempt[1], true, "not refused: {attempt}");
    }
    for v in victims {
        let o = v.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "victim failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["sum"], 2, "an injected value reached the allreduce: {r}");
    }
}

#[test]
fn an_instance_without_the_secret_cannot_connect() {
    let root = temp_dir();
    let (p0, p1) = (free_port(), free_port());
    let group = [("0", p0), ("1", p1)];
    let listener = folder(root.path(), "l", "g", &group, &"c".repeat(64));
    // Same group name and ids, another secret (another namespace's group of the same name).
    let intruder = folder(root.path(), "i", "g", &group, &"d".repeat(64));
    let l = python(
        "import whisk_peers as wp\ntry:\n    print(wp.recv(timeout=4))\nexcept wp.PeerTimeout:\n    print('nothing')",
        &[],
        &listener,
        "0",
        "g",
        2,
    )
    .spawn()
    .unwrap();
    wait_for_port(p0, Duration::from_secs(20));
    let o = python(
        "import whisk_peers as wp\ntry:\n    wp.send('0', b'evil', timeout=1)\n    print('sent')\nexcept wp.PeerError as e:\n    print('refused:', e)",
        &[],
        &intruder,
        "1",
        "g",
        2,
    )
    .output()
    .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    eprintln!("intruder: {said}");
    assert!(said.starts_with("refused:"), "{said}");
    assert!(
        said.contains("refused the handshake") || said.contains("not of this group"),
        "{said}"
    );
    let o = l.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "nothing",
        "a message got through"
    );
    // A folder without a secret cannot even start a connection.
    let bare = root.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(listener.join("peers.json"), bare.join("peers.json")).unwrap();
    let o = python(
        "import whisk_peers as wp\ntry:\n    wp._secret()\nexcept wp.PeerError as e:\n    print('refused:', e)",
        &[],
        &bare,
        "1",
        "g",
        2,
    )
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("no group secret"));
}
