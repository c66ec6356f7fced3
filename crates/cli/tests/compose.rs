//! `docker-compose up` brings the whole stack up from `whisk/platform` (built by
//! deploy/images/build-platform.sh, without a registry) and an invoke through its gateway
//! succeeds, in a Docker container of the action image. Needs Docker and docker-compose
//! (scripts/test.sh installs and starts them).

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

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
        let prefix = format!("whisk_invoker={}_", self.project);
        for i in 0..2 {
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "docker ps -aq --filter label={prefix}{i} | xargs -r docker rm -f"
                ))
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_up_serves_an_invoke() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let build = Command::new("bash")
        .arg(repo.join("deploy/images/build-platform.sh"))
        .output()
        .expect("bash");
    assert!(
        build.status.success(),
        "build-platform.sh failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
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
    let key = loop {
        if let Ok(text) = std::fs::read_to_string(&key_file) {
            break text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no key in {}",
            key_file.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the operator's alone");
    }
    assert_ne!(key, GUEST_KEY, "a deployment has no well-known key");
    let api = Api::new(&base, &key);
    while !matches!(reqwest::get(format!("{base}/api/v1")).await, Ok(r) if r.status() == 200) {
        assert!(
            Instant::now() < deadline,
            "the API did not answer through the gateway"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Operational routes are not served through the gateway.
    let r = reqwest::get(format!("{base}/invokers")).await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    api.put_python("fib", include_str!("../../../functions/fib.py"), 128)
        .await;
    loop {
        let (status, body) = api
            .invoke("fib", "blocking=true&result=true", json!({"number": 20}))
            .await;
        if status == 200 {
            assert_eq!(body, json!({"fibonacci": 6765}));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stack did not run fib: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = api
            .invoke("fib", "blocking=true&result=true", json!({"number": 10}))
            .await;
        if status == 200 {
            assert_eq!(body, json!({"fibonacci": 55}));
            break;
        }
        assert!(
            status != 404 && status != 401,
            "the action or the key was lost with the CouchDB server's restart: {status} {body}"
        );
        assert!(
            Instant::now() < deadline,
            "the stack did not run fib after the stores restarted: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
