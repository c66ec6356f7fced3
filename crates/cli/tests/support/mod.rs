//! Shared harness of the end-to-end tests: a real `whisk` process (standalone or directory)
//! on a free loopback port, stopped (SIGTERM, then SIGKILL) when dropped — also on panic,
//! when the tail of its output is printed.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
