//! `docker-compose up` brings the whole stack up from `whisk/platform` (built by
//! deploy/images/build-platform.sh, without a registry) and an invoke through its gateway
//! succeeds, in a Docker container of the action image. Needs Docker and docker-compose
//! (scripts/test.sh installs and starts them).

mod support;

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use whisk_test_support::docker::{remove_containers, require_daemon};
use whisk_test_support::{repo_root, run_ok};

struct Stack {
    project: String,
    env: Vec<(String, String)>,
    file: PathBuf,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.project])
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .expect("docker-compose is needed (scripts/test.sh installs it)")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.compose(&["logs", "--tail", "30"]);
            eprintln!("{}", String::from_utf8_lossy(&logs.stdout));
        }
        let _ = self.compose(&["down", "-t", "2"]);
        for i in 0..2 {
            remove_containers(&format!("whisk_invoker={}_{i}", self.project));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_up_serves_an_invoke() {
    require_daemon();
    let repo = repo_root();
    run_ok(
        Command::new("bash").arg(repo.join("deploy/images/build-platform.sh")),
        "deploy/images/build-platform.sh",
    );
    let tmp = whisk_test_support::temp_dir();
    for i in 0..2 {
        std::fs::create_dir_all(tmp.path().join(format!("invoker{i}"))).unwrap();
    }
    let port = free_port();
    let project = format!("whisktest{}", std::process::id());
    let stack = Stack {
        env: vec![
            ("WHISK_COMPOSE_PORT".into(), port.to_string()),
            ("WHISK_COMPOSE_DIR".into(), tmp.path().display().to_string()),
            ("WHISK_ACTIONS_NETWORK".into(), format!("{project}_actions")),
            ("COMPOSE_PROJECT_NAME".into(), project.clone()),
        ],
        project,
        file: repo.join("docker-compose.yml"),
    };
    let up = stack.compose(&["up", "-d"]);
    assert!(
        up.status.success(),
        "docker-compose up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    // The controller makes the guest's key at first start, for the operator alone.
    let key_file = tmp.path().join("controller/keys/guest.key");
    let key = eventually(
        &format!("a key in {}", key_file.display()),
        Duration::from_secs(120),
        || async { Some(std::fs::read_to_string(&key_file).ok()?.trim().to_string()) },
    )
    .await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the operator's alone");
    }
    assert_ne!(key, GUEST_KEY, "a deployment has no well-known key");
    let api = Api::new(&base, &key);
    let info = format!("{base}/api/v1");
    eventually(
        "the API through the gateway",
        Duration::from_secs(120),
        || async {
            let r = reqwest::get(&info).await.ok()?;
            (r.status() == 200).then_some(())
        },
    )
    .await;
    // Operational routes are not served through the gateway.
    let r = reqwest::get(format!("{base}/invokers")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    api.put_python("fib", include_str!("../../../functions/fib.py"), 128)
        .await;
    fib_until_it_runs(&api, 20, 6765, deadline).await;

    // The stores are durable: a CouchDB server and a Redis killed and started again keep the
    // action, the keys and the records, and the stack runs the action again.
    let kill = stack.compose(&["kill", "couchdb", "redis"]);
    assert!(kill.status.success(), "docker-compose kill failed");
    let up = stack.compose(&["up", "-d", "couchdb", "redis"]);
    assert!(
        up.status.success(),
        "docker-compose up (restart) failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    fib_until_it_runs(&api, 10, 55, Instant::now() + Duration::from_secs(120)).await;
}

/// Invokes `fib` with `n` until the stack runs it (by `deadline`); it must answer `expected`,
/// and never that the action or the key is unknown (the stores keep them).
async fn fib_until_it_runs(api: &Api, n: u64, expected: u64, deadline: Instant) {
    loop {
        let (status, body) = api
            .invoke("fib", "blocking=true&result=true", json!({"number": n}))
            .await;
        if status == 200 {
            assert_eq!(body, json!({"fibonacci": expected}));
            return;
        }
        assert!(
            status != 404 && status != 401,
            "the action or the key was lost: {status} {body}"
        );
        assert!(
            Instant::now() < deadline,
            "the stack did not run fib({n}): {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
