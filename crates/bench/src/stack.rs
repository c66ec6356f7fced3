//! The distributed platform as child processes of the benchmark: `whisk controller` and N
//! `whisk invoker`s over Kafka and CouchDB (and a `whisk directory` over Redis when peers are
//! wanted), started from the `whisk` binary beside `whisk-bench`, waited for until every
//! invoker is healthy, with the guest key an operator gets from `whisk admin user create`.
//! Needs the services of `scripts/services.sh up` (Kafka 9092, CouchDB 5984, Redis 6379).

use crate::proc::{free_port, Proc};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Settings every service of the stack gets: throttles out of the way of a load test, the
/// benchmark's own database prefix, quiet logs.
const ENV: [(&str, &str); 4] = [
    ("WHISK_CONTROLLER__INVOCATIONS_PER_MINUTE", "100000000"),
    ("WHISK_CONTROLLER__CONCURRENT_INVOCATIONS", "100000"),
    ("WHISK_COUCHDB__DB_PREFIX", "whisk_bench_"),
    ("RUST_LOG", "warn"),
];

const KAFKA: &str = "127.0.0.1:9092";
const COUCHDB: &str = "http://127.0.0.1:5984";
const REDIS: &str = "redis://127.0.0.1:6379";

/// What to start.
pub struct Shape {
    /// Invoker processes.
    pub invokers: usize,
    /// Start a directory and point the invokers at it (gangs, peer maps).
    pub directory: bool,
}

/// A running distributed platform; dropping it stops every process (SIGTERM).
pub struct Stack {
    /// `http://127.0.0.1:<port>` of the controller's API.
    pub base: String,
    /// The guest's `uuid:key`.
    pub key: String,
    /// The processes, by name (`controller`, `invoker0`, ..., `directory`).
    pub procs: Vec<(String, Proc)>,
    _data: tempfile::TempDir,
}

/// The `whisk` binary beside this one.
pub fn whisk_bin() -> std::path::PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name("whisk"))
        .unwrap_or_else(|_| "whisk".into())
}

/// Resident memory of process `pid`, MB (NaN when it is gone).
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn spawn(args: &[String]) -> anyhow::Result<Proc> {
    Ok(Proc(
        Command::new(whisk_bin())
            .args(args)
            .envs(ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

impl Stack {
    /// Starts the platform of `shape` and waits until all its invokers are healthy.
    pub async fn start(shape: &Shape) -> anyhow::Result<Stack> {
        let data = tempfile::tempdir()?;
        let api_port = free_port()?;
        let mut procs = Vec::new();
        let mut directory = None;
        if shape.directory {
            let port = free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let args = ["directory", "--listen", &addr, "--redis", REDIS];
            procs.push(("directory".to_string(), spawn(&strings(&args))?));
            directory = Some(addr);
        }
        let listen = format!("127.0.0.1:{api_port}");
        let controller_data = data.path().join("controller").display().to_string();
        let args = [
            "controller",
            "--kafka",
            KAFKA,
            "--couchdb",
            COUCHDB,
            "--listen",
            &listen,
            "--data-dir",
            &controller_data,
        ];
        procs.push(("controller".to_string(), spawn(&strings(&args))?));
        for i in 0..shape.invokers {
            let id = i.to_string();
            let dir = data.path().join(format!("i{i}")).display().to_string();
            let mut args = strings(&[
                "invoker",
                "--id",
                &id,
                "--kafka",
                KAFKA,
                "--couchdb",
                COUCHDB,
                "--data-dir",
                &dir,
            ]);
            if let Some(addr) = &directory {
                args.extend(strings(&["--directory", addr]));
            }
            procs.push((format!("invoker{i}"), spawn(&args)?));
        }
        let base = format!("http://{listen}");
        wait_healthy(&base, shape.invokers).await?;
        // A deployment has no well-known key: the operator's `whisk admin` gives the guest's.
        let out = Command::new(whisk_bin())
            .args(["admin", "user", "create", "guest", "--couchdb", COUCHDB])
            .envs(ENV)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "whisk admin user create guest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = String::from_utf8(out.stdout)?.trim().to_string();
        Ok(Stack {
            base,
            key,
            procs,
            _data: data,
        })
    }

    /// The resident memory of each process, MB, in the order of [`Stack::procs`].
    pub fn rss(&self) -> Vec<(String, f64)> {
        self.procs
            .iter()
            .map(|(name, p)| (name.clone(), rss_mb(p.0.id())))
            .collect()
    }

    /// The RSS of the process called `name`.
    pub fn rss_of(&self, name: &str) -> f64 {
        self.procs
            .iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, p)| rss_mb(p.0.id()))
    }
}

async fn wait_healthy(base: &str, invokers: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = http
            .get(format!("{base}/invokers/healthy/count"))
            .send()
            .await
            .ok();
        let n = match up {
            Some(r) => r.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if n.trim().trim_matches('"').parse::<usize>().unwrap_or(0) >= invokers {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the distributed platform did not come up (is `scripts/services.sh up` running?)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
