//! The Docker runtime against a real Docker daemon. Without a reachable daemon these tests
//! FAIL (never pass silently): CI installs and starts the engine. Every image they use
//! (`whisk/python3action`, `whisk/nodejsaction`) is built once per run by
//! `deploy/images/build-actions.sh`, which locks, so concurrent test binaries build once.
//!
//! Why one file of this length: every case needs the same daemon, images and factory; the shared
//! helpers are in tests/common and whisk-test-support.

mod common;

use common::{init, run};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use whisk_invoker::docker::{DockerConfig, DockerFactory};
use whisk_invoker::{Container, ContainerError, ContainerFactory, ContainerSpec};
use whisk_test_support::docker::{docker, ensure_action_images, exists, inspect};

const NETWORK: &str = "whisk_test_actions";
const SUBNET: &str = "172.31.240.0/24";

/// Checks the daemon and the action images (whisk-test-support), then clears the networks of
/// earlier runs and creates the test network, once.
fn setup() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    ensure_action_images();
    let result = DONE.get_or_init(|| {
        // Namespace networks earlier runs left behind (a test process ends before the idle
        // removal of its networks) go; this run's tests remove their own.
        let ours = format!("_t{}_", std::process::id());
        let label = format!("label=whisk_network={NETWORK}");
        let out = docker(&[
            "network",
            "ls",
            "-q",
            "--format",
            "{{.Name}}",
            "--filter",
            &label,
        ]);
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            if !name.contains(&ours) {
                docker(&["network", "rm", name]);
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
    common::spec("whisk_test", memory_mb)
}

async fn create(f: &DockerFactory, spec: ContainerSpec) -> Arc<dyn Container> {
    let t = Instant::now();
    let c = f.create(spec).await.expect("container starts");
    eprintln!("docker create+start+ready: {:?}", t.elapsed());
    c
}

async fn create_in(f: &DockerFactory, spec: ContainerSpec, ns: &str) -> Arc<dyn Container> {
    let t = Instant::now();
    let c = f.create_in(spec, ns).await.expect("container starts");
    eprintln!("docker create+start+ready in {ns}: {:?}", t.elapsed());
    c
}

/// Removes the networks of these namespaces (after their containers are gone): a test ends
/// before the factory's idle removal would.
fn drop_networks(namespaces: &[&str]) {
    for ns in namespaces {
        docker(&[
            "network",
            "rm",
            &whisk_invoker::docker::namespace_network(NETWORK, ns),
        ]);
    }
}

/// A namespace name of this test run.
fn namespace(name: &str) -> String {
    format!("t{}_{name}", std::process::id())
}

fn container_exists(id: &str) -> bool {
    exists("container", id)
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
    assert_eq!(v["env"], "given");
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
    let ns = namespace("peers");
    let (a, b) = tokio::join!(create_in(&f, spec(128), &ns), create_in(&f, spec(128), &ns));
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
    drop_networks(&[&ns]);
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
    assert!(docker(&["kill", c.id()]).status.success());
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

fn network_exists(name: &str) -> bool {
    exists("network", name)
}

/// What the hardened container lets an action do, seen from inside.
const PROBE_PY: &str = r#"
import os, resource, socket
def main(args):
    r = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        open("/evil", "w")
        r["root_writable"] = True
    except OSError as e:
        r["root_writable"] = False
    try:
        open("/usr/lib/evil", "w")
        r["usr_writable"] = True
    except OSError:
        r["usr_writable"] = False
    with open("/tmp/scratch", "w") as f:
        f.write("ok")
    r["tmp"] = open("/tmp/scratch").read()
    caps = {l.split(":")[0]: l.split(":")[1].strip() for l in open("/proc/self/status") if l.startswith("Cap")}
    r["caps"] = caps
    r["nofile"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
    r["secret_seen"] = "WHISK_PROXY_SECRET" in os.environ
    try:
        os.setuid(0)
        r["setuid0"] = True
    except OSError:
        r["setuid0"] = False
    return r
"#;

/// Tries to reach `http://<ip>:8080/health` from inside a container.
const CONNECT_PY: &str = r#"
import socket
def main(args):
    s = socket.socket()
    s.settimeout(args.get("timeout", 2))
    try:
        s.connect((args["ip"], 8080))
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        return {"reached": True, "answer": s.recv(200).decode(errors="replace")}
    except OSError as e:
        return {"reached": False, "error": str(e)}
"#;

fn assert_hardened_inside(v: &serde_json::Value) {
    assert_ne!(v["uid"], 0, "not root: {v}");
    assert_eq!(v["uid"], 1000, "{v}");
    assert_eq!(v["root_writable"], false, "/ is read-only: {v}");
    assert_eq!(v["usr_writable"], false, "/usr is read-only: {v}");
    assert_eq!(v["tmp"], "ok", "/tmp is writable: {v}");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(v["caps"][cap], "0000000000000000", "{cap} empty: {v}");
    }
    assert_eq!(v["nofile"], serde_json::json!([1024, 1024]), "{v}");
    assert_eq!(v["setuid0"], false, "{v}");
}

#[tokio::test]
async fn containers_are_hardened() {
    setup();
    let f = DockerFactory::new(config("harden")).with_user_memory_mb(4096);
    let ns = namespace("harden");
    let c = create_in(&f, spec(256), &ns).await;
    let info = inspect("container", c.id());
    let hc = &info["HostConfig"];
    assert_eq!(info["Config"]["User"], "1000:1000", "{info}");
    assert_eq!(hc["CapDrop"], serde_json::json!(["ALL"]), "{hc}");
    assert!(hc["CapAdd"].is_null(), "{hc}");
    assert_eq!(
        hc["SecurityOpt"],
        serde_json::json!(["no-new-privileges"]),
        "{hc}"
    );
    assert_eq!(hc["Privileged"], false);
    assert_eq!(hc["ReadonlyRootfs"], true, "{hc}");
    let tmpfs = hc["Tmpfs"].as_object().expect("tmpfs mounts");
    assert!(
        tmpfs["/tmp"].as_str().unwrap().contains("size=256m"),
        "{hc}"
    );
    assert!(
        tmpfs["/action"].as_str().unwrap().contains("uid=1000"),
        "{hc}"
    );
    assert_eq!(hc["Memory"], 256 * 1024 * 1024);
    assert_eq!(hc["MemorySwap"], 256 * 1024 * 1024, "no swap beyond memory");
    // OpenWhisk: 1024 / (4096 MB / 256 MB) = 64.
    assert_eq!(hc["CpuShares"], 64, "{hc}");
    assert_eq!(hc["PidsLimit"], 1024);
    assert_eq!(
        hc["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 1024, "Hard": 1024}]),
        "{hc}"
    );
    let network = whisk_invoker::docker::namespace_network(NETWORK, &ns);
    assert_eq!(hc["NetworkMode"], network.as_str());
    assert_eq!(
        info["NetworkSettings"]["Networks"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec![&network],
        "on its namespace's network only"
    );

    init(c.as_ref(), PROBE_PY).await;
    let (status, v) = run(c.as_ref(), serde_json::json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_hardened_inside(&v);
    assert_eq!(
        v["secret_seen"], false,
        "the proxy keeps its secret from the action"
    );
    c.destroy().await;

    // The Node.js image, too.
    let mut s = spec(128);
    s.family = "nodejs".into();
    let c = create_in(&f, s, &ns).await;
    let info = inspect("container", c.id());
    assert_eq!(info["Config"]["Image"], "whisk/nodejsaction");
    assert_eq!(info["HostConfig"]["CpuShares"], 32);
    init(
        c.as_ref(),
        r#"
const fs = require("fs");
function main() {
  let rootWritable = true;
  try { fs.writeFileSync("/evil", "x"); } catch (e) { rootWritable = false; }
  fs.writeFileSync("/tmp/scratch", "ok");
  const caps = fs.readFileSync("/proc/self/status", "utf8").split("\n")
    .filter(l => l.startsWith("CapEff")).map(l => l.split(":")[1].trim());
  return { uid: process.getuid(), rootWritable, tmp: fs.readFileSync("/tmp/scratch", "utf8"), capEff: caps[0] };
}
"#,
    )
    .await;
    let (status, v) = run(c.as_ref(), serde_json::json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"uid": 1000, "rootWritable": false, "tmp": "ok", "capEff": "0000000000000000"})
    );
    c.destroy().await;
    drop_networks(&[&ns]);
}

#[test]
fn cpu_shares_as_openwhisk() {
    use whisk_invoker::docker::cpu_shares;
    // ContainerPoolConfig.cpuShare: max((1024 / (userMemory / reserved)).toInt, 2).
    assert_eq!(cpu_shares(256, 16384), 16);
    assert_eq!(cpu_shares(512, 2048), 256);
    assert_eq!(
        cpu_shares(128, 1024 * 1024),
        2,
        "never below Docker's minimum"
    );
    assert_eq!(cpu_shares(2048, 2048), 1024);
    assert_eq!(cpu_shares(300, 1024), 341, "1024 / (1024 / 300 = 3)");
    assert_eq!(
        cpu_shares(4096, 1024),
        1024,
        "a container larger than the budget"
    );
}

#[test]
fn allowed_images_match_patterns() {
    use whisk_invoker::docker::image_allowed;
    let default = vec!["whisk/*".to_owned()];
    assert!(image_allowed("whisk/python3action", &default));
    assert!(image_allowed("whisk/nodejsaction:latest", &default));
    assert!(!image_allowed("yangzhou1997/python3action:mpi", &default));
    assert!(!image_allowed("evil/whisk/x", &default));
    assert!(!image_allowed("docker.io/whisk/python3action", &default));
    let list = vec![
        "openwhisk/action-*:nightly".to_owned(),
        "me/exact".to_owned(),
    ];
    assert!(image_allowed(
        "openwhisk/action-python-v3.11:nightly",
        &list
    ));
    assert!(!image_allowed(
        "openwhisk/action-python-v3.11:latest",
        &list
    ));
    assert!(image_allowed("me/exact", &list));
    assert!(image_allowed(
        "me/exact:latest",
        &["me/exact:latest".to_owned()]
    ));
    assert!(!image_allowed("me/exact2", &list));
    assert!(!image_allowed("anything", &[]));
}

#[tokio::test]
async fn a_blackbox_image_off_the_list_is_refused() {
    setup();
    let f = DockerFactory::new(config("refused"));
    let mut s = spec(128);
    // Present locally (the project's base image), yet not allowed.
    s.image = Some("whisk/python3base:latest".into());
    let f2 = DockerFactory::new(DockerConfig {
        allowed_images: vec!["whisk/*action".into()],
        ..config("refused2")
    });
    let err = match f2.create_in(s.clone(), &namespace("refused")).await {
        Ok(_) => panic!("an image off the list must not start"),
        Err(e) => e,
    };
    assert!(matches!(err, ContainerError::Refused(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "The image 'whisk/python3base:latest' is not allowed for blackbox actions on this platform (allowed: whisk/*action)."
    );
    s.image = Some("yangzhou1997/python3action:mpi".into());
    let err = match f.create(s).await {
        Ok(_) => panic!("an image off the default list must not start"),
        Err(e) => e,
    };
    assert!(matches!(err, ContainerError::Refused(_)), "{err}");
}

#[tokio::test]
async fn namespaces_cannot_reach_each_other() {
    setup();
    let f = DockerFactory::new(config("isolation"));
    let (ns_a, ns_b) = (namespace("iso_a"), namespace("iso_b"));
    let (a1, a2, b1) = tokio::join!(
        create_in(&f, spec(128), &ns_a),
        create_in(&f, spec(128), &ns_a),
        create_in(&f, spec(128), &ns_b)
    );
    // A stem (no namespace yet) given to namespace B: it leaves the stems' network first.
    let stem = create(&f, spec(128)).await;
    assert!(
        stem.ip().to_string().starts_with("172.31.240."),
        "{}",
        stem.ip()
    );
    let t = Instant::now();
    stem.assign(&ns_b)
        .await
        .expect("the stem joins namespace B");
    eprintln!("docker stem assign: {:?}", t.elapsed());
    let nets = inspect("container", stem.id())["NetworkSettings"]["Networks"].clone();
    assert_eq!(
        nets.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec![&whisk_invoker::docker::namespace_network(NETWORK, &ns_b)],
        "the stem left the stems' network"
    );
    assert!(!stem.ip().to_string().starts_with("172.31.240."));

    for c in [&a2, &b1, &stem] {
        init(c.as_ref(), CONNECT_PY).await;
    }
    // Same namespace: reachable by IP (peer maps).
    let (_, v) = run(a2.as_ref(), serde_json::json!({"ip": a1.ip().to_string()})).await;
    assert_eq!(v["reached"], true, "A reaches A: {v}");
    let (_, v) = run(
        stem.as_ref(),
        serde_json::json!({"ip": b1.ip().to_string()}),
    )
    .await;
    assert_eq!(v["reached"], true, "B's former stem reaches B: {v}");
    // Another namespace: not at all.
    for (from, to) in [(&b1, &a1), (&b1, &a2), (&stem, &a1)] {
        let (_, v) = run(
            from.as_ref(),
            serde_json::json!({"ip": to.ip().to_string()}),
        )
        .await;
        eprintln!("B -> A {}: {v}", to.ip());
        assert_eq!(v["reached"], false, "B must not reach A's {}: {v}", to.ip());
    }
    let (_, v) = run(a2.as_ref(), serde_json::json!({"ip": b1.ip().to_string()})).await;
    assert_eq!(v["reached"], false, "A must not reach B: {v}");
    // Nor the stems still waiting on their network.
    let waiting = create(&f, spec(128)).await;
    let (_, v) = run(
        b1.as_ref(),
        serde_json::json!({"ip": waiting.ip().to_string()}),
    )
    .await;
    assert_eq!(v["reached"], false, "B must not reach a waiting stem: {v}");
    for c in [a1, a2, b1, stem, waiting] {
        c.destroy().await;
    }
    drop_networks(&[&ns_a, &ns_b]);
}

#[tokio::test]
async fn namespace_networks_are_removed_when_unused() {
    setup();
    let f = DockerFactory::new(DockerConfig {
        network_idle_ms: 300,
        ..config("netgc")
    });
    let ns = namespace("netgc");
    let network = whisk_invoker::docker::namespace_network(NETWORK, &ns);
    let c = create_in(&f, spec(128), &ns).await;
    assert!(network_exists(&network));
    let labels = inspect("network", &network)["Labels"].clone();
    assert_eq!(labels["whisk_network"], NETWORK);
    assert_eq!(labels["whisk_namespace"], ns.as_str());
    c.destroy().await;
    // Reused within the idle time...
    let c = create_in(&f, spec(128), &ns).await;
    c.destroy().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(network_exists(&network), "kept for reuse");
    // ...removed after it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while network_exists(&network) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!network_exists(&network), "removed once unused");

    // A network a previous run left behind goes at cleanup; one in use stays.
    let left = DockerFactory::new(DockerConfig {
        network_idle_ms: 3_600_000,
        ..config("netgc_old")
    });
    let c = create_in(&left, spec(128), &ns).await;
    let busy_ns = namespace("netgc_busy");
    let busy = create_in(&left, spec(128), &busy_ns).await;
    c.destroy().await;
    DockerFactory::new(config("netgc_new"))
        .cleanup()
        .await
        .unwrap();
    assert!(
        !network_exists(&network),
        "an unused namespace network is removed at cleanup"
    );
    assert!(
        network_exists(&whisk_invoker::docker::namespace_network(NETWORK, &busy_ns)),
        "one with a container stays"
    );
    busy.destroy().await;
    drop_networks(&[&busy_ns]);
}
