//! The process runtime's sandbox, attacked by real actions: the real [`ProcessFactory`] runs
//! the real `whisk-proxy` (built here when missing) under bubblewrap and cgroups. Every test
//! needs a host that can sandbox (bubblewrap installed, user namespaces, writable cgroups —
//! `scripts/test.sh` installs `bubblewrap`); elsewhere it FAILS, never passes silently.
//!
//! An action tries to read a file planted in the invoker's data folder, another container's
//! work folder and the invoker's environment; to write the system folders and its peer folder;
//! to fork past the pids limit; to allocate past its memory limit (the OOM line must follow);
//! to outlive its container with `setsid`. Every attempt fails. Also: pause freezes the whole
//! container, and a host that cannot sandbox is refused unless single-tenant.

mod common;

use common::{assert_memory_exceeded_logged, init, run};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::{Container, ContainerFactory, ContainerSpec, ProcessFactory};
use whisk_test_support::bins::target_binary;
use whisk_test_support::{processes_with, wait_until_gone};

/// `target/<profile>/whisk-proxy`, built with cargo when missing.
fn proxy() -> PathBuf {
    target_binary("whisk-runtime", "whisk-proxy")
}

fn factory(cfg: ProcessConfig) -> ProcessFactory {
    let f = ProcessFactory::with_config(vec![proxy().display().to_string()], vec![], &cfg);
    assert!(
        f.sandboxed() || cfg.single_tenant,
        "this host cannot sandbox actions (bubblewrap missing, no user namespaces or no writable cgroups); install bubblewrap"
    );
    f
}

fn spec(memory_mb: u64, peers_dir: Option<PathBuf>) -> ContainerSpec {
    ContainerSpec {
        peers_dir,
        ..common::spec("whisk_sbx", memory_mb)
    }
}

/// A sandboxed container, `/init`ed with `code`.
async fn start(f: &ProcessFactory, s: ContainerSpec, code: &str) -> Arc<dyn Container> {
    let c = f.create(s).await.expect("the sandboxed proxy starts");
    init(c.as_ref(), code).await;
    c
}

/// Tries each thing it is given; reports every attempt.
const PROBE: &str = r#"
import json, os

def attempt(f):
    try:
        return {"ok": True, "value": repr(f())[:200]}
    except BaseException as e:
        return {"ok": False, "error": type(e).__name__ + ": " + str(e)[:200]}

def read(path):
    with open(path, "rb") as fh:
        return fh.read(64)

def write(path):
    with open(path, "w") as fh:
        fh.write("x")
    return path

def main(args):
    out = {"uid": os.getuid(), "env": dict(os.environ), "cwd": os.getcwd()}
    with open("mine.txt", "w") as fh:
        fh.write("private")
    out["mine"] = os.path.abspath("mine.txt")
    for i, p in enumerate(args.get("read", [])):
        out["read%d" % i] = attempt(lambda: read(p))
    for i, p in enumerate(args.get("list", [])):
        out["list%d" % i] = attempt(lambda: os.listdir(p))
    for i, p in enumerate(args.get("write", [])):
        out["write%d" % i] = attempt(lambda: write(p))
    out["tmp"] = attempt(lambda: write("/tmp/scratch"))
    return out
"#;

#[tokio::test]
async fn an_action_reads_and_writes_nothing_of_the_host() {
    // A secret of the platform in its environment, and one in its data folder (world-readable
    // on purpose: only the sandbox's mounts may hide it).
    std::env::set_var("WHISK_TEST_PLATFORM_SECRET", "couchdb-password");
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("whisk.redb");
    std::fs::write(&store, "every key").unwrap();
    let peers = tempfile::tempdir().unwrap();
    std::fs::write(peers.path().join("addrMap.txt"), "myname0=127.1.2.3").unwrap();

    let f = factory(ProcessConfig::default());
    let victim = start(&f, spec(256, None), PROBE).await;
    let (status, v) = run(victim.as_ref(), json!({})).await;
    assert_eq!(status, 200, "{v}");
    let victim_file = v["mine"].as_str().unwrap().to_string();

    let attacker = start(&f, spec(256, Some(peers.path().to_path_buf())), PROBE).await;
    let peer_file = peers.path().join("addrMap.txt");
    let (status, v) = run(
        attacker.as_ref(),
        json!({
            "read": [store, victim_file, "/proc/1/environ", peer_file, "/etc/shadow"],
            "list": [data.path(), Path::new(&victim_file).parent().unwrap()],
            "write": ["/usr/pwned", "/etc/pwned", "/pwned", "/bin/pwned",
                      peers.path().join("pwned")],
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    eprintln!("{v:#}");
    for key in ["read0", "read1", "read4", "list0", "list1"] {
        assert_eq!(v[key]["ok"], false, "{key} must fail: {}", v[key]);
    }
    // PID 1 of the sandbox is bubblewrap's init, with an empty environment.
    assert!(
        !v["read2"]["value"]
            .as_str()
            .unwrap_or("")
            .contains("couchdb-password"),
        "{}",
        v["read2"]
    );
    // Its own peer folder: readable, not writable.
    assert_eq!(v["read3"]["ok"], true, "{}", v["read3"]);
    for i in 0..5 {
        let key = format!("write{i}");
        assert_eq!(v[&key]["ok"], false, "{key} must fail: {}", v[&key]);
    }
    assert_eq!(
        v["tmp"]["ok"], true,
        "its own /tmp is writable: {}",
        v["tmp"]
    );
    // A clean environment: what the invoker gave, nothing of the platform's.
    let env = v["env"].as_object().unwrap();
    assert_eq!(env.get("WHISK_TEST"), Some(&json!("given")));
    assert_eq!(
        env.get("WHISK_PEERS_DIR").and_then(Value::as_str),
        Some(peers.path().to_str().unwrap())
    );
    assert!(!env.contains_key("WHISK_TEST_PLATFORM_SECRET"), "{env:?}");
    assert!(!env.contains_key("WHISK_PROXY_SECRET"), "{env:?}");
    assert!(!env.contains_key("CARGO"), "{env:?}");
    let home = env.get("HOME").and_then(Value::as_str).unwrap_or("?");
    assert!(v["cwd"].as_str().unwrap().starts_with(home), "{v}");
    // Never root, not even mapped: on the host its processes belong to the sandbox uid.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let uid = host_uid_of(attacker.addr().ip().to_string().as_str());
        assert_eq!(uid, Some(65534), "the proxy's host uid");
    }
    victim.destroy().await;
    attacker.destroy().await;
}

/// The host uid of the process listening on `ip`:8080 (from /proc/net/tcp's inode).
fn host_uid_of(ip: &str) -> Option<u32> {
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    let hex = format!(
        "{:02X}{:02X}{:02X}{:02X}:1F90",
        octets[3], octets[2], octets[1], octets[0]
    );
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let line = tcp
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(&hex))?;
    line.split_whitespace().nth(7)?.parse().ok()
}

#[tokio::test]
async fn forks_stop_at_the_pids_limit() {
    let f = factory(ProcessConfig {
        pids_max: 40,
        ..ProcessConfig::default()
    });
    let c = start(
        &f,
        spec(256, None),
        r#"
import os, time
def main(args):
    kids = 0
    try:
        for _ in range(1000):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids += 1
        return {"kids": kids, "error": None}
    except OSError as e:
        return {"kids": kids, "error": str(e)}
"#,
    )
    .await;
    let (status, v) = run(c.as_ref(), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["error"].is_string(), "fork must fail: {v}");
    assert!(v["kids"].as_u64().unwrap() < 40, "{v}");
    c.destroy().await;
}

#[tokio::test]
async fn allocating_past_the_memory_limit_is_an_oom_kill() {
    let f = factory(ProcessConfig::default());
    let c = start(
        &f,
        spec(128, None),
        r#"
def main(args):
    blocks = []
    for _ in range(64):
        blocks.append(bytearray(16 * 1024 * 1024))
    return {"allocated_mb": 16 * len(blocks)}
"#,
    )
    .await;
    let (status, v) = run(c.as_ref(), json!({})).await;
    assert_ne!(status, 200, "1 GB in a 128 MB container: {v}");
    assert_memory_exceeded_logged(c.as_ref(), 128).await;
    c.destroy().await;
}

#[tokio::test]
async fn a_setsid_process_dies_with_its_container() {
    let f = factory(ProcessConfig::default());
    let c = start(
        &f,
        spec(256, None),
        r#"
import os, subprocess
def main(args):
    # A daemon: double fork, new session, parent gone.
    r = subprocess.run(["setsid", "sh", "-c", "sleep %s >/dev/null 2>&1 </dev/null & exit 0" % args["marker"]],
                       start_new_session=True, stdin=subprocess.DEVNULL,
                       capture_output=True)
    return {"rc": r.returncode, "err": r.stderr.decode()}
"#,
    )
    .await;
    let marker = format!("3{}.{}", std::process::id(), rand_suffix());
    let (status, v) = run(c.as_ref(), json!({"marker": marker})).await;
    assert_eq!((status, &v["rc"]), (200, &json!(0)), "{v}");
    let daemon = format!("sleep {marker}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes_with(&daemon).is_empty() {
        assert!(Instant::now() < deadline, "the daemon never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.destroy().await;
    // The daemon does not outlive its container.
    wait_until_gone(&daemon, Duration::from_secs(5)).await;
}

fn rand_suffix() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed) * 7919 + std::process::id() % 1000
}

#[tokio::test]
async fn pause_freezes_every_process_of_the_container() {
    let f = factory(ProcessConfig::default());
    let c = start(
        &f,
        spec(256, None),
        "def main(args):\n    return {\"n\": args.get(\"n\", 0) + 1}\n",
    )
    .await;
    c.suspend().await.unwrap();
    let health = format!("http://{}/health", c.addr());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let frozen = http
        .get(&health)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(frozen.is_err(), "a paused container must not answer");
    c.resume().await.unwrap();
    let thawed = http
        .get(&health)
        .send()
        .await
        .expect("answers once resumed");
    assert!(thawed.status().is_success());
    let (status, v) = run(c.as_ref(), json!({"n": 41})).await;
    assert_eq!((status, v["n"].as_u64()), (200, Some(42)), "{v}");
    c.destroy().await;
}

#[tokio::test]
async fn a_host_that_cannot_sandbox_is_refused_unless_single_tenant() {
    let cfg = ProcessConfig {
        bwrap: "/nonexistent/bwrap".into(),
        ..ProcessConfig::default()
    };
    let f = ProcessFactory::with_config(vec![proxy().display().to_string()], vec![], &cfg);
    assert!(!f.sandboxed());
    let err = f.cleanup().await.expect_err("the invoker must not start");
    assert!(err.to_string().contains("single_tenant"), "{err}");
    assert!(f.create(spec(256, None)).await.is_err());

    let f = factory(ProcessConfig {
        single_tenant: true,
        ..cfg
    });
    f.cleanup().await.expect("single-tenant runs unsandboxed");
    let c = start(
        &f,
        spec(256, None),
        "import os\ndef main(args):\n    return {\"uid\": os.getuid()}\n",
    )
    .await;
    let (status, _) = run(c.as_ref(), json!({})).await;
    assert_eq!(status, 200);
    c.destroy().await;
}

#[tokio::test]
async fn a_nodejs_action_runs_sandboxed() {
    let f = factory(ProcessConfig::default());
    let mut s = spec(256, None);
    s.family = "nodejs".into();
    let c = start(
        &f,
        s,
        "function main(args) { return {n: args.n + 1, env: Object.keys(process.env).sort()}; }",
    )
    .await;
    let (status, v) = run(c.as_ref(), json!({"n": 41})).await;
    assert_eq!((status, &v["n"]), (200, &json!(42)), "{v}");
    let env = v["env"].as_array().unwrap();
    assert!(
        !env.contains(&json!("WHISK_TEST_PLATFORM_SECRET")) && !env.contains(&json!("CARGO")),
        "{env:?}"
    );
    c.destroy().await;
}
