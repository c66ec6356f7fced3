//! Shared harness of the CLI's end-to-end tests: a real `whisk` server on a free loopback port
//! ([`Server`]) and other `whisk` processes ([`spawn_whisk`]) — `whisk_test_support::Proc`s,
//! stopped when dropped (also on panic, when the tail of their output is printed) — `whisk
//! status`, `whisk admin`, the `openwhisk` npm client's suite against a server, and a small
//! REST client ([`Api`]). The rest (ports, services, Docker, Node.js) is whisk-test-support's.

#![allow(dead_code, unused_imports)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

pub use whisk_test_support::docker::ensure_action_images;
pub use whisk_test_support::{eventually, free_port, Proc};

pub const GUEST_KEY: &str =
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// How long the server may take to answer `GET /api/v1` after spawning.
pub const STARTUP: Duration = Duration::from_secs(90);
/// How long the server may take to exit after SIGTERM.
pub const SHUTDOWN: Duration = Duration::from_secs(30);

pub fn whisk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_whisk"))
}

/// `whisk ARGS` with `env` as `name`, its output in `<log_dir>/<name>.log`; SIGKILLed when
/// dropped.
pub fn spawn_whisk<S: AsRef<OsStr>>(
    log_dir: &Path,
    name: &str,
    args: &[S],
    env: &[(String, String)],
) -> Proc {
    let mut cmd = Command::new(whisk_bin());
    cmd.args(args).envs(env.iter().cloned()).env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    );
    Proc::spawn(name, &mut cmd, &log_dir.join(format!("{name}.log"))).with_grace(Duration::ZERO)
}

/// The command lines of the distributed roles over one broker and one CouchDB (the tests'
/// services), so that every test starting separate processes spells them the same way.
pub struct Roles {
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// CouchDB URL.
    pub couch: String,
}

impl Roles {
    fn role(&self, role: &str, rest: &[&str]) -> Vec<String> {
        [role, "--kafka", &self.kafka, "--couchdb", &self.couch]
            .iter()
            .chain(rest)
            .map(|a| a.to_string())
            .collect()
    }

    /// `whisk directory` on `listen`, its state in Redis at `redis`.
    pub fn directory(listen: &str, redis: &str) -> Vec<String> {
        ["directory", "--listen", listen, "--redis", redis]
            .map(String::from)
            .to_vec()
    }

    /// `whisk controller` with its API on `listen` and its keys in `data`.
    pub fn controller(&self, listen: &str, data: &Path) -> Vec<String> {
        let data = data.display().to_string();
        self.role("controller", &["--listen", listen, "--data-dir", &data])
    }

    /// `whisk invoker --id ID` registering its instances with `directory` (none: no peer
    /// directory), its journal and container folders in `data`.
    pub fn invoker(&self, id: u32, directory: Option<&str>, data: &Path) -> Vec<String> {
        let (id, data) = (id.to_string(), data.display().to_string());
        let mut rest = vec!["--id", &id, "--data-dir", &data];
        if let Some(d) = directory {
            rest.extend(["--directory", d]);
        }
        self.role("invoker", &rest)
    }

    /// `whisk gateway` on plain HTTP at `listen` in front of the controller at `backend`.
    pub fn gateway(listen: &str, backend: &str) -> Vec<String> {
        [
            "gateway",
            "--http",
            listen,
            "--https",
            "off",
            "--backend",
            backend,
        ]
        .map(String::from)
        .to_vec()
    }

    /// `whisk feeds` firing through the API at `api`, with provider id `id`.
    pub fn feeds(&self, api: &str, id: &str) -> Vec<String> {
        self.role("feeds", &["--api-url", api, "--id", id])
    }
}

/// A running `whisk standalone`.
pub struct Server {
    proc: Proc,
    /// The API port.
    pub port: u16,
    /// The data folder.
    pub data_dir: PathBuf,
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
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["standalone", "--listen", &listen, "--data-dir"];
        let data = data_dir.display().to_string();
        args.push(&data);
        args.extend_from_slice(extra);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let name = format!("whisk-standalone-{port}");
        let mut proc = spawn_whisk(log_dir, &name, &args, &env).with_grace(Duration::from_secs(10));
        proc.wait_for_http(&format!("http://{listen}/api/v1"), STARTUP)
            .await;
        Server {
            proc,
            port,
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn log_tail(&self) -> String {
        self.proc.log_tail()
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.proc.terminate(SHUTDOWN)
    }

    /// SIGKILLs it, as a crash, and reaps it.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
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

/// The key of a new user `subject`, as an operator gets it: `whisk admin user create SUBJECT
/// ARGS` (`--data-dir DIR` for standalone's store, `--couchdb URL` with the deployment's
/// `WHISK_COUCHDB__*` in `env` for CouchDB).
pub fn admin_user_key(subject: &str, args: &[&OsStr], env: &[(String, String)]) -> String {
    whisk_test_support::run_stdout(
        Command::new(whisk_bin())
            .args(["admin", "user", "create", subject])
            .args(args)
            .envs(env.iter().cloned()),
        &format!("whisk admin user create {subject}"),
    )
}

/// The key of `subject` in a deployment's CouchDB (made if missing).
pub fn couch_user_key(couch: &str, subject: &str, env: &[(String, String)]) -> String {
    admin_user_key(subject, &["--couchdb".as_ref(), couch.as_ref()], env)
}

/// Runs the npm client's conformance suite against `apihost` with the guest key (or the
/// `__OW_API_KEY` of `extra_env`); users are made with `whisk admin` in `data_dir`'s store, or
/// in CouchDB when `extra_env` has `WHISK_ADMIN_COUCHDB`.
pub async fn run_conformance(apihost: &str, data_dir: &Path, extra_env: &[(&str, &str)]) {
    let mut suite = whisk_test_support::node::NpmClient::new(apihost, GUEST_KEY, "guest")
        .env("WHISK_BIN", whisk_bin())
        .env("WHISK_DATA_DIR", data_dir);
    for (k, v) in extra_env {
        suite = suite.env(k, v);
    }
    suite.run_suite().await;
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

/// Runs `whisk ARGS` against `apihost` as the guest, with a private wskprops file in `dir`
/// (for the CLI's end-to-end tests of one command at a time).
pub fn whisk_as_guest(dir: &Path, apihost: &str, args: &[&str]) -> std::process::Output {
    whisk_private(&dir.join("wskprops"), dir)
        .args(args)
        .env("WHISK_APIHOST", apihost)
        .env("WHISK_AUTH", GUEST_KEY)
        .output()
        .expect("run whisk")
}

/// A `whisk` command with the private wskprops file `config`, `home` as its HOME and none of
/// the `WHISK_*` variables nor `RUST_LOG` of the test's own environment.
pub fn whisk_private(config: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(whisk_bin());
    cmd.env("WSK_CONFIG_FILE", config).env("HOME", home);
    for var in [
        "WHISK_APIHOST",
        "WHISK_AUTH",
        "WHISK_NAMESPACE",
        "WHISK_DATA_DIR",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The standard output of a `whisk` run, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The standard error of a `whisk` run, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The standard output of a `whisk` run that must have succeeded (else a panic with both of
/// its outputs).
pub fn succeeded(o: &std::process::Output) -> String {
    let out = stdout(o);
    assert!(o.status.success(), "whisk failed: {out}\n{}", stderr(o));
    out
}

/// The standard error of a `whisk` run that must have failed with exit code `code`.
pub fn failed(o: &std::process::Output, code: i32) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    err
}

/// Waits (at most 120 s) until the controller at `base` lists `n` healthy invokers.
pub async fn wait_invokers(base: &str, n: usize) {
    let http = reqwest::Client::new();
    let url = format!("{base}/invokers");
    let what = format!("{n} healthy invokers at {base}");
    whisk_test_support::eventually(&what, Duration::from_secs(120), || async {
        let r = http.get(&url).send().await.ok()?;
        let v: std::collections::BTreeMap<String, String> = r.json().await.ok()?;
        (v.values().filter(|s| *s == "up").count() >= n).then_some(())
    })
    .await;
}
