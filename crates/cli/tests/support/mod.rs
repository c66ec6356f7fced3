//! Shared harness of the end-to-end tests: a real `whisk` process (standalone or directory)
//! on a free loopback port, stopped (SIGTERM, then SIGKILL) when dropped — also on panic,
//! when the tail of its output is printed.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const GUEST_KEY: &str =
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
pub const GUEST_UUID: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502";
pub const GUEST_SECRET: &str = "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// How long the server may take to answer `GET /api/v1` after spawning.
pub const STARTUP: Duration = Duration::from_secs(90);
/// How long the server may take to exit after SIGTERM.
pub const SHUTDOWN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

/// A running `whisk standalone`; stopped (SIGTERM, then SIGKILL) when dropped, also on panic,
/// in which case the tail of its output is printed.
pub struct Server {
    child: Option<Child>,
    /// The API port.
    pub port: u16,
    /// The data folder.
    pub data_dir: PathBuf,
    log_path: PathBuf,
}

impl Server {
    /// Starts the binary on a free loopback port with `data_dir`, waits until it answers.
    pub async fn start(data_dir: &Path, log_dir: &Path) -> Server {
        Self::start_with(data_dir, log_dir, &[]).await
    }

    /// Like [`Server::start`], with extra `whisk standalone` flags.
    pub async fn start_with(data_dir: &Path, log_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with_env(data_dir, log_dir, extra, &[]).await
    }

    /// Like [`Server::start_with`], with extra environment variables for the server.
    pub async fn start_with_env(
        data_dir: &Path,
        log_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let log_path = log_dir.join(format!("whisk-standalone-{port}.log"));
        let log = File::create(&log_path).expect("creating the server log file");
        let child = Command::new(whisk_bin())
            .args([
                "standalone",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {} standalone: {e}", whisk_bin().display()));
        let mut server = Server {
            child: Some(child),
            port,
            data_dir: data_dir.to_path_buf(),
            log_path,
        };
        server.wait_ready().await;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already stopped").id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .unwrap()
                .try_wait()
                .expect("polling the server")
            {
                panic!(
                    "whisk standalone exited during startup with {status}; its output:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(resp) = http.get(self.url("/api/v1")).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("whisk standalone did not answer GET /api/v1 within {STARTUP:?}; its output:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + SHUTDOWN;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "whisk standalone did not exit within {SHUTDOWN:?} of SIGTERM; its output:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Server {
    /// Reaps a server killed from outside (e.g. SIGKILL by the test).
    pub fn terminate_quietly(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- whisk standalone output (tail of {}) ----\n{}\n----",
                self.log_path.display(),
                self.log_tail()
            );
        }
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                signal(child.id(), "TERM");
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

pub fn whisk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_whisk"))
}

/// Runs `whisk status --json ARGS` with `env`; returns the exit code and each service's entry
/// by name (`controller`, `invoker0`, ..., `couchdb`).
pub fn whisk_status(
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, std::collections::BTreeMap<String, serde_json::Value>) {
    let out = Command::new(whisk_bin())
        .args(["status", "--json"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running whisk status");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "whisk status printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let services = body["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| (s["service"].as_str().unwrap_or("?").to_string(), s.clone()))
        .collect();
    (out.status.code().unwrap_or(-1), services)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .unwrap()
        .port()
}

pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

// ---------------------------------------------------------------------------------------------
// Node.js
// ---------------------------------------------------------------------------------------------

pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/conformance")
        .canonicalize()
        .expect("tests/conformance exists")
}

/// Runs a tool, failing loudly (not skipping) when it is not installed.
pub fn run_tool(cmd: &mut Command, what: &str) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{what}: `{}` is not installed or not on PATH. The conformance test needs Node.js >= 18 \
             and npm (e.g. `apt-get install nodejs npm`); it is not skipped without them.",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => panic!("{what}: running `{}`: {e}", cmd.get_program().to_string_lossy()),
    }
}

pub fn check_node() {
    let out = run_tool(Command::new("node").arg("--version"), "checking node");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && major >= 18,
        "node --version gave {version:?}; the conformance tests need Node.js >= 18"
    );
    let npm = run_tool(Command::new("npm").arg("--version"), "checking npm");
    assert!(
        npm.status.success(),
        "npm --version failed: {}",
        String::from_utf8_lossy(&npm.stderr)
    );
}

/// `npm ci` (or `npm install` without a lock file) when `node_modules` is missing.
/// Checks the Docker daemon and builds every action image the tests use (both families), once
/// per test binary; `build-actions.sh` itself locks and skips images that are up to date.
pub fn ensure_action_images() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let info = Command::new("docker").arg("info").output();
        assert!(
            matches!(&info, Ok(o) if o.status.success()),
            "the Docker tests need a running Docker daemon (scripts/test.sh installs and starts one): {info:?}"
        );
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/images/build-actions.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("running deploy/images/build-actions.sh");
        assert!(
            out.status.success(),
            "building the action images failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for image in ["whisk/python3action", "whisk/nodejsaction"] {
            let present = Command::new("docker")
                .args(["image", "inspect", image])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(present, "{image} is missing after build-actions.sh");
        }
    });
}

pub fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/openwhisk/package.json").exists() {
        return;
    }
    let verb = if dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    let out = run_tool(
        Command::new("npm")
            .arg(verb)
            .args(["--no-audit", "--no-fund"])
            .current_dir(dir),
        &format!("npm {verb} in {}", dir.display()),
    );
    print_output(&format!("npm {verb}"), &out);
    assert!(
        out.status.success(),
        "npm {verb} in {} failed with {}",
        dir.display(),
        out.status
    );
}

pub fn print_output(what: &str, out: &Output) {
    println!(
        "---- {what}: stdout ----\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "---- {what}: stderr ----\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the Node.js suite in `tests/conformance` (the `openwhisk` npm client) against
/// `apihost`, failing with its output when a test fails.
/// The key of `subject` in a deployment's CouchDB (made if missing), as an operator gets it:
/// `whisk admin user create SUBJECT --couchdb URL` (with the deployment's `WHISK_COUCHDB__*`).
pub fn couch_user_key(couch: &str, subject: &str, env: &[(String, String)]) -> String {
    let out = Command::new(whisk_bin())
        .args(["admin", "user", "create", subject, "--couchdb", couch])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run whisk admin");
    assert!(
        out.status.success(),
        "whisk admin user create {subject} --couchdb {couch}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs the npm client's conformance suite against `apihost` with the guest key (or the
/// `__OW_API_KEY` of `extra_env`); users are made with `whisk admin` in `data_dir`'s store, or
/// in CouchDB when `extra_env` has `WHISK_ADMIN_COUCHDB`.
pub async fn run_conformance(apihost: &str, data_dir: &Path, extra_env: &[(&str, &str)]) {
    check_node();
    let dir = conformance_dir();
    ensure_node_modules(&dir);
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"]);
    if let Ok(pattern) = std::env::var("CONFORMANCE_TEST_PATTERN") {
        node.arg(format!("--test-name-pattern={pattern}"));
    }
    node.current_dir(&dir)
        .env("__OW_API_HOST", apihost)
        .env("__OW_API_KEY", GUEST_KEY)
        .env("__OW_NAMESPACE", "guest")
        .env("WHISK_BIN", whisk_bin())
        .env("WHISK_DATA_DIR", data_dir)
        .env_remove("__OW_IGNORE_CERTS")
        .env_remove("__OW_APIGW_TOKEN")
        .stdin(Stdio::null());
    for (k, v) in extra_env {
        node.env(k, v);
    }
    // The client sends every request through a proxy named in these; the server is local.
    for var in [
        "PROXY",
        "proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
    ] {
        node.env_remove(var);
    }
    let out = tokio::task::spawn_blocking(move || run_tool(&mut node, "running node --test"))
        .await
        .unwrap();
    print_output("node --test", &out);
    assert!(
        out.status.success(),
        "node --test in {} failed with {} (its output is above)",
        dir.display(),
        out.status
    );
}

/// A small REST client of the platform under test, in the caller's namespace.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    auth: (String, String),
}

impl Api {
    /// A client of `base` (`http://host:port`) with the key `uuid:key`.
    pub fn new(base: &str, key: &str) -> Api {
        let (u, k) = key.split_once(':').expect("uuid:key");
        Api {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            auth: (u.to_string(), k.to_string()),
        }
    }

    /// Runs the gang actions `ring` and `allreduce` (functions/ring.py, allreduce.py, already
    /// created) with `n` instances: the token that went round the ring and every instance's
    /// sum are 0 + 1 + … + (n − 1).
    pub async fn check_ring_and_allreduce(&self, n: u64) {
        let expected = n * (n - 1) / 2;
        let gang = format!("blocking=true&result=true&instances={n}");
        let (status, body) = self.invoke("ring", &gang, serde_json::json!({})).await;
        assert_eq!(status, 200, "ring of {n}: {body}");
        let results = body["results"].as_array().unwrap();
        assert_eq!(results.len() as u64, n, "ring of {n}: {body}");
        assert_eq!(results[0]["token"], expected, "ring of {n}: {body}");
        let (status, body) = self.invoke("allreduce", &gang, serde_json::json!({})).await;
        assert_eq!(status, 200, "allreduce of {n}: {body}");
        for r in body["results"].as_array().unwrap() {
            assert_eq!(r["sum"], expected, "allreduce of {n}: {body}");
        }
    }

    /// A request to `/api/v1/namespaces/_/{path}`.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/api/v1/namespaces/_/{path}", self.base))
            .basic_auth(&self.auth.0, Some(&self.auth.1))
    }

    /// Creates or replaces an action with `exec` and `memory` MB.
    pub async fn put_action(&self, name: &str, exec: serde_json::Value, memory: u64) {
        let body = serde_json::json!({"exec": exec, "limits": {"memory": memory}});
        let r = self
            .req(
                reqwest::Method::PUT,
                &format!("actions/{name}?overwrite=true"),
            )
            .json(&body)
            .send()
            .await
            .expect("PUT action");
        let status = r.status();
        assert!(
            status.is_success(),
            "PUT {name}: {status} {}",
            r.text().await.unwrap_or_default()
        );
    }

    /// A Python action from source.
    pub async fn put_python(&self, name: &str, code: &str, memory: u64) {
        self.put_action(
            name,
            serde_json::json!({"kind": "python:3", "code": code}),
            memory,
        )
        .await;
    }

    /// Invokes; returns the status and the JSON answer.
    pub async fn invoke(
        &self,
        name: &str,
        query: &str,
        params: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .req(reqwest::Method::POST, &format!("actions/{name}?{query}"))
            .json(&params)
            .send()
            .await
            .expect("invoke");
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Starts an activation; returns its id.
    pub async fn start(&self, name: &str, params: serde_json::Value) -> String {
        let (status, body) = self.invoke(name, "blocking=false", params).await;
        assert_eq!(status, 202, "{body}");
        body["activationId"]
            .as_str()
            .expect("activationId")
            .to_string()
    }

    /// Waits (at most `within`) for an activation record.
    pub async fn record(&self, id: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = self
                .req(reqwest::Method::GET, &format!("activations/{id}"))
                .send()
                .await
            {
                if r.status().as_u16() == 200 {
                    return r.json().await.expect("activation JSON");
                }
            }
            assert!(Instant::now() < deadline, "activation {id} has no record");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for an activation and returns its result, asserting it succeeded.
    pub async fn result(&self, id: &str) -> serde_json::Value {
        let a = self.record(id, Duration::from_secs(90)).await;
        assert_eq!(a["response"]["status"], "success", "activation {id}: {a}");
        a["response"]["result"].clone()
    }
}
