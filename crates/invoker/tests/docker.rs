//! The Docker runtime against a real Docker daemon. Without a reachable daemon these tests
//! FAIL (never pass silently): CI installs and starts the engine. The image
//! `whisk/python3action` is built with `deploy/images/build.sh` when missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use whisk_invoker::docker::{DockerConfig, DockerFactory};
use whisk_invoker::proxy::ProxyClient;
use whisk_invoker::{Container, ContainerError, ContainerFactory, ContainerSpec};

const IMAGE: &str = "whisk/python3action";
const NETWORK: &str = "whisk_test_actions";
const SUBNET: &str = "172.31.240.0/24";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Checks the daemon, builds the image if missing and creates the test network, once.
fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let info = Command::new("docker").args(["info", "-f", "{{.ServerVersion}}"]).output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "no Docker daemon reachable (`docker info` failed: {}); install docker.io and start dockerd",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => return Err(format!("the docker CLI is not installed ({e}); install docker.io and start dockerd")),
        }
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            let status = Command::new(repo_root().join("deploy/images/build.sh"))
                .status()
                .map_err(|e| format!("running deploy/images/build.sh: {e}"))?;
            if !status.success() {
                return Err(format!("deploy/images/build.sh failed ({status})"));
            }
        }
        // The network, created (with its subnet) by the factory itself, once.
        // (On a thread of its own: the tests call this from inside their runtime.)
        std::thread::spawn(|| {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(DockerFactory::new(config("setup")).connect())
                .map(|_| ())
                .map_err(|e| format!("connecting to Docker: {e}"))
        })
        .join()
        .map_err(|_| "the setup thread panicked".to_owned())?
    });
    if let Err(e) = result {
        panic!("Docker tests need a Docker daemon: {e}");
    }
}

fn config(prefix: &str) -> DockerConfig {
    DockerConfig {
        network: NETWORK.into(),
        subnet: Some(SUBNET.into()),
        prefix: format!("whisk_test_{}_{prefix}", std::process::id()),
        ..DockerConfig::default()
    }
}

fn spec(memory_mb: u64) -> ContainerSpec {
    static N: AtomicU32 = AtomicU32::new(0);
    ContainerSpec {
        name: format!(
            "whisk_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        family: "python".into(),
        image: None,
        memory_mb,
        env: vec![("WHISK_TEST".into(), "yes".into())],
        peers_dir: None,
    }
}

async fn create(f: &DockerFactory, spec: ContainerSpec) -> Arc<dyn Container> {
    let t = Instant::now();
    let c = f.create(spec).await.expect("container starts");
    eprintln!("docker create+start+ready: {:?}", t.elapsed());
    c
}

async fn call(c: &dyn Container, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = ProxyClient::new()
        .call(
            c.addr(),
            "",
            path,
            serde_json::to_vec(&body).unwrap(),
            Duration::from_secs(20),
            1 << 20,
        )
        .await
        .expect("the proxy answers");
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

async fn init(c: &dyn Container, code: &str) {
    let (status, v) = call(
        c,
        "/init",
        serde_json::json!({"value": {"name": "t", "main": "main", "code": code, "binary": false}}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

async fn run(c: &dyn Container, args: serde_json::Value) -> (u16, serde_json::Value) {
    call(c, "/run", serde_json::json!({"value": args})).await
}

fn container_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn init_run_logs_and_peer_folder() {
    setup();
    let f = DockerFactory::new(config("run"));
    let peers = tempfile::tempdir().unwrap();
    std::fs::write(peers.path().join("addrMap.txt"), "myname0=10.1.2.3").unwrap();
    let mut s = spec(256);
    s.peers_dir = Some(peers.path().to_path_buf());
    let c = create(&f, s).await;
    assert!(c.is_alive());
    assert_eq!(c.addr().ip().to_string(), "127.0.0.1");
    assert!(c.ip().to_string().starts_with("172.31.240."), "{}", c.ip());
    init(
        c.as_ref(),
        r#"
import os, sys
def main(args):
    print("hello from stdout")
    print("hello from stderr", file=sys.stderr)
    try:
        open("/addrMap/x", "w")
        writable = True
    except OSError:
        writable = False
    import whisk_peers
    return {"n": args["n"] + 1, "map": open("/addrMap/addrMap.txt").read(),
            "dir": os.environ["WHISK_PEERS_DIR"], "env": os.environ.get("WHISK_TEST"),
            "writable": writable}
"#,
    )
    .await;
    let (status, v) = run(c.as_ref(), serde_json::json!({"n": 41})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["n"], 42);
    assert_eq!(v["map"], "myname0=10.1.2.3");
    assert_eq!(v["dir"], "/addrMap");
    assert_eq!(v["env"], "yes");
    assert_eq!(v["writable"], false, "the peer folder must be read-only");
    let logs = c.logs(1 << 20, Duration::from_secs(5)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.ends_with(" stdout: hello from stdout")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.ends_with(" stderr: hello from stderr")),
        "{logs:?}"
    );
    // The next activation's logs are its own.
    let t = Instant::now();
    let (status, _) = run(c.as_ref(), serde_json::json!({"n": 1})).await;
    eprintln!("docker warm run: {:?}", t.elapsed());
    assert_eq!(status, 200);
    let logs = c.logs(1 << 20, Duration::from_secs(5)).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    c.destroy().await;
}

#[tokio::test]
async fn containers_reach_each_other_by_ip() {
    setup();
    let f = DockerFactory::new(config("peers"));
    let (a, b) = tokio::join!(create(&f, spec(128)), create(&f, spec(128)));
    assert_ne!(a.ip(), b.ip());
    init(
        b.as_ref(),
        r#"
import urllib.request
def main(args):
    with urllib.request.urlopen("http://%s:8080/health" % args["peer"], timeout=5) as r:
        return {"status": r.status, "body": r.read().decode()}
"#,
    )
    .await;
    let (status, v) = run(b.as_ref(), serde_json::json!({"peer": a.ip().to_string()})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], 200, "{v}");
    a.destroy().await;
    b.destroy().await;
}

#[tokio::test]
async fn pause_and_unpause() {
    setup();
    let f = DockerFactory::new(config("pause"));
    let c = create(&f, spec(128)).await;
    init(c.as_ref(), "def main(args):\n    return {'ok': True}\n").await;
    let t = Instant::now();
    c.suspend().await.unwrap();
    let paused = t.elapsed();
    let t = Instant::now();
    c.resume().await.unwrap();
    eprintln!("docker pause: {paused:?}, unpause: {:?}", t.elapsed());
    assert!(c.is_alive());
    let (status, v) = run(c.as_ref(), serde_json::json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true);
    c.destroy().await;
    assert!(
        c.suspend().await.is_err(),
        "pausing a removed container fails"
    );
}

#[tokio::test]
async fn destroy_and_external_kill() {
    setup();
    let f = DockerFactory::new(config("destroy"));
    let c = create(&f, spec(128)).await;
    let id = c.id().to_owned();
    assert!(container_exists(&id));
    c.destroy().await;
    assert!(!c.is_alive());
    assert!(!container_exists(&id), "destroy removes the container");

    let c = create(&f, spec(128)).await;
    let out = Command::new("docker")
        .args(["kill", c.id()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.is_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !c.is_alive(),
        "a container killed from outside is seen as dead"
    );
    c.destroy().await;
}

#[tokio::test]
async fn cleanup_removes_only_this_prefix() {
    setup();
    let old = DockerFactory::new(config("cleanup"));
    let other = DockerFactory::new(config("cleanup_other"));
    let leftover = create(&old, spec(128)).await;
    let kept = create(&other, spec(128)).await;
    // An invoker restart: a new factory with the same prefix.
    DockerFactory::new(config("cleanup"))
        .cleanup()
        .await
        .unwrap();
    assert!(
        !container_exists(leftover.id()),
        "labelled leftover removed"
    );
    assert!(
        container_exists(kept.id()),
        "another prefix's container kept"
    );
    kept.destroy().await;
}

#[tokio::test]
async fn missing_image_is_a_clear_error() {
    setup();
    let f = DockerFactory::new(config("missing"));
    let mut s = spec(128);
    s.image = Some("whisk/no-such-image:never".into());
    let t = Instant::now();
    let err = match f.create(s).await {
        Ok(_) => panic!("a missing image must not start"),
        Err(e) => e,
    };
    assert!(t.elapsed() < Duration::from_secs(10));
    let msg = err.to_string();
    assert!(matches!(err, ContainerError::Start(_)), "{msg}");
    assert!(
        msg.contains("image 'whisk/no-such-image:never' is not present locally")
            && msg.contains("deploy/images/build.sh"),
        "{msg}"
    );
}

#[tokio::test]
async fn daemon_down_is_unavailable_naming_the_socket() {
    let f = DockerFactory::new(DockerConfig {
        socket: "/nonexistent/docker.sock".into(),
        ..DockerConfig::default()
    });
    let err = match f.create(spec(128)).await {
        Ok(_) => panic!("no daemon there"),
        Err(e) => e,
    };
    assert!(matches!(err, ContainerError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/docker.sock"),
        "{err}"
    );
}

#[tokio::test]
async fn memory_limit_is_reported_as_oom() {
    setup();
    let f = DockerFactory::new(config("oom"));
    let c = create(&f, spec(128)).await;
    init(
        c.as_ref(),
        "def main(args):\n    b = b'x' * (300 * 1024 * 1024)\n    return {'n': len(b)}\n",
    )
    .await;
    let (status, v) = run(c.as_ref(), serde_json::json!({})).await;
    assert_ne!(status, 200, "300 MB must not fit in 128 MB: {v}");
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(c.logs(1 << 20, Duration::from_secs(1)).await);
        if all.iter().any(|l| l.contains("exceeded its memory limit")) {
            break;
        }
    }
    assert!(
        all.iter()
            .any(|l| l.contains("The action exceeded its memory limit of 128 MB")),
        "{all:?}"
    );
    c.destroy().await;
}
