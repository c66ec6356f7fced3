//! The real services of distributed mode for tests, as `scripts/services.sh` provides them:
//! - [`Redis`]: a `redis-server` of one test (free port, no persistence);
//! - [`Tansu`]: the Kafka-protocol broker of one test (memory storage), the binary from
//!   `scripts/kafka.sh install`;
//! - [`Couch`]: a CouchDB-compatible server (pouchdb-server) of one test, through
//!   `scripts/couchdb.sh` with a state folder of its own;
//! - [`Services`]: all three through `scripts/services.sh up`, on free ports.
//!
//! Each is stopped when dropped. One that cannot be had fails the test ([`crate::missing`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use tempfile::TempDir;

use crate::{free_port, missing, repo_root, Proc};

/// How long a service may take to listen after it is started.
const STARTUP: Duration = Duration::from_secs(10);

/// `scripts/<name>` of the repository.
pub fn script(name: &str) -> PathBuf {
    repo_root().join("scripts").join(name)
}

/// `bash scripts/<name> <verb>` with `env`; its output (whatever the exit status).
pub fn run_script(name: &str, verb: &str, env: &[(String, String)]) -> Output {
    Command::new("bash")
        .arg(script(name))
        .arg(verb)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash scripts/{name}: {e}"))
}

/// A `redis-server` of one test on `127.0.0.1`, no persistence, in a temporary folder; killed
/// when dropped.
pub struct Redis {
    pub port: u16,
    proc: Proc,
    _dir: TempDir,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// Starts one on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Redis {
        let dir = crate::temp_dir();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        let mut proc = Proc::spawn("redis-server", &mut cmd, &dir.path().join("redis.log"))
            .with_grace(Duration::ZERO);
        proc.wait_for_port(port, STARTUP);
        Redis {
            port,
            proc,
            _dir: dir,
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (like a crash) and waits for the process to end; its port.
    pub fn kill(mut self) -> u16 {
        self.proc.kill();
        self.port
    }
}

/// The tansu binary, installed by `scripts/kafka.sh install` (cached) when missing.
pub fn tansu_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(script("kafka.sh"))
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/kafka.sh: {e}"))?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !path.is_empty() {
            Ok(PathBuf::from(path))
        } else {
            Err(format!(
                "`scripts/kafka.sh install` failed ({}): it needs cargo and access to crates.io, \
                 or WHISK_TANSU_BIN set",
                out.status
            ))
        }
    });
    match bin {
        Ok(path) => path.clone(),
        Err(e) => missing("the Kafka-protocol broker (tansu)", e),
    }
}

/// A tansu broker of one test (memory storage); killed when dropped.
pub struct Tansu {
    pub port: u16,
    proc: Option<Proc>,
    logs: TempDir,
}

impl Tansu {
    /// Starts a broker on a free port.
    pub fn start() -> Tansu {
        Self::start_on(free_port())
    }

    /// Starts a broker on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Tansu {
        let mut t = Tansu {
            port,
            proc: None,
            logs: crate::temp_dir(),
        };
        t.restart();
        t
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (memory storage: everything it held is gone).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the broker again (empty) on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut cmd = Command::new(tansu_binary());
        cmd.args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url]);
        let mut proc = Proc::spawn("tansu", &mut cmd, &self.logs.path().join("tansu.log"))
            .with_grace(Duration::ZERO);
        proc.wait_for_port(self.port, STARTUP);
        self.proc = Some(proc);
    }
}

/// A pouchdb-server of one test, through `scripts/couchdb.sh` (which installs it into the cache
/// when missing; it needs Node.js and npm), with its own state folder; stopped when dropped.
pub struct Couch {
    pub port: u16,
    dir: TempDir,
}

impl Couch {
    /// The admin user and password `scripts/couchdb.sh up` creates.
    pub const USER: &'static str = "whisk";
    pub const PASSWORD: &'static str = "whisk";

    /// Starts one on a free port and waits until it answers.
    pub fn start() -> Couch {
        let couch = Couch {
            port: free_port(),
            dir: crate::temp_dir(),
        };
        couch.up();
        couch
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "WHISK_SERVICES_DIR".into(),
                self.dir.path().display().to_string(),
            ),
            ("WHISK_COUCHDB_PORT".into(), self.port.to_string()),
            ("WHISK_COUCHDB_USER".into(), Self::USER.into()),
            ("WHISK_COUCHDB_PASSWORD".into(), Self::PASSWORD.into()),
        ]
    }

    /// `scripts/couchdb.sh up`: starts the server (again, with its data) when it is not running.
    pub fn up(&self) {
        let out = run_script("couchdb.sh", "up", &self.env());
        if !out.status.success() {
            missing(
                "a CouchDB-compatible server (pouchdb-server, from npm; needs Node.js and npm)",
                format!(
                    "`scripts/couchdb.sh up` failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
    }

    /// `scripts/couchdb.sh down`: stops the server (its data stays).
    pub fn down(&self) {
        let out = run_script("couchdb.sh", "down", &self.env());
        assert!(
            out.status.success(),
            "`scripts/couchdb.sh down` failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Couch {
    fn drop(&mut self) {
        // No assertion here: a panic while a failed test unwinds would abort the run.
        let _ = run_script("couchdb.sh", "down", &self.env());
    }
}

/// The broker, CouchDB and Redis started by `scripts/services.sh up` on free ports, with their
/// state under one folder; `scripts/services.sh down` when dropped.
pub struct Services {
    /// The state folder (`WHISK_SERVICES_DIR`): pid files, logs, data.
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Services {
    /// Starts the three under `dir`.
    pub fn up(dir: &Path) -> Services {
        Self::up_with(dir, &[])
    }

    /// Starts the three with extra settings of the script (e.g. `WHISK_KAFKA_STORAGE`).
    pub fn up_with(dir: &Path, extra: &[(&str, &str)]) -> Services {
        let mut env = vec![
            ("WHISK_SERVICES_DIR".to_string(), dir.display().to_string()),
            ("WHISK_KAFKA_PORT".to_string(), free_port().to_string()),
            ("WHISK_COUCHDB_PORT".to_string(), free_port().to_string()),
            ("WHISK_REDIS_PORT".to_string(), free_port().to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let services = Services {
            dir: dir.to_path_buf(),
            env,
        };
        let out = run_script("services.sh", "up", &services.env);
        if !out.status.success() {
            missing(
                "the services of distributed mode (Kafka broker, CouchDB, Redis)",
                format!(
                    "`scripts/services.sh up` failed:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            );
        }
        services
    }

    fn setting(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .expect("set by Services::up")
    }

    /// The broker's `127.0.0.1:<port>`.
    pub fn kafka(&self) -> String {
        format!("127.0.0.1:{}", self.setting("WHISK_KAFKA_PORT"))
    }

    /// CouchDB's `http://127.0.0.1:<port>`.
    pub fn couchdb(&self) -> String {
        format!("http://127.0.0.1:{}", self.setting("WHISK_COUCHDB_PORT"))
    }

    /// Redis's `redis://127.0.0.1:<port>`.
    pub fn redis(&self) -> String {
        format!("redis://127.0.0.1:{}", self.setting("WHISK_REDIS_PORT"))
    }

    /// The pid in `pid_file` (relative to [`Services::dir`], e.g. `kafka/tansu.pid`).
    pub fn pid(&self, pid_file: &str) -> u32 {
        let path = self.dir.join(pid_file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// SIGKILLs the service whose pid file is `pid_file`, as a crash; returns its pid.
    pub fn crash(&self, pid_file: &str) -> u32 {
        let pid = self.pid(pid_file);
        crate::signal(pid, libc::SIGKILL);
        pid
    }

    /// Starts again what is not running (`scripts/services.sh up`); `what` names it.
    pub fn up_again(&self, what: &str) {
        let out = run_script("services.sh", "up", &self.env);
        assert!(
            out.status.success(),
            "restarting {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        let _ = run_script("services.sh", "down", &self.env);
    }
}
