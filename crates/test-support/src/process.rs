//! [`Proc`]: a child process of a test (a service, a `whisk` role, a broker), its stdout and
//! stderr in a log file; stopped when dropped — also when the test panics, in which case the
//! tail of its log is printed first. Also: signals, and the host's processes by command line
//! ([`processes_with`], [`wait_until_gone`]) for tests of what outlives a container.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use libc::{SIGKILL, SIGTERM};

/// How many log lines a failing test prints of each of its processes.
const TAIL_LINES: usize = 80;

/// Sends `sig` (`libc::SIGTERM`, `libc::SIGKILL`, ...) to `pid`; fails the test when it cannot.
pub fn signal(pid: u32, sig: i32) {
    let pid = i32::try_from(pid).expect("a pid fits in pid_t");
    // SAFETY: kill(2) with a pid of a process the test started; no memory is involved.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill -{sig} {pid}: {}",
        std::io::Error::last_os_error()
    );
}

/// Host processes whose command line contains `marker`: (pid, command line).
pub fn processes_with(marker: &str) -> Vec<(u32, String)> {
    let mut found = vec![];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits until no host process's command line contains `marker`; fails the test, naming
/// them, when some are left after `within`.
pub async fn wait_until_gone(marker: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes with {marker:?} are left after {within:?}: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running child process; see the module doc.
pub struct Proc {
    child: Option<Child>,
    name: String,
    log: PathBuf,
    /// How long a dropped process gets between SIGTERM and SIGKILL (zero: SIGKILL at once).
    grace: Duration,
    /// The folder of the log when it is the process's own.
    _logs: Option<TempDir>,
}

impl Proc {
    /// Spawns `cmd` (stdin closed) as `name`, its stdout and stderr appended to `log`. Fails
    /// the test, via [`crate::missing`], when the program is not installed.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        Self::spawn_to(name, cmd, log, file, None)
    }

    /// [`Proc::spawn`] with the log in a temporary folder of its own.
    pub fn spawn_logged(name: &str, cmd: &mut Command) -> Proc {
        let logs = crate::temp_dir();
        let log = logs.path().join(format!("{name}.log"));
        let file = File::create(&log).expect("creating the log file");
        Self::spawn_to(name, cmd, &log, file, Some(logs))
    }

    fn spawn_to(
        name: &str,
        cmd: &mut Command,
        log: &Path,
        file: File,
        logs: Option<TempDir>,
    ) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("cloning the log file handle"))
            .stderr(file)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => crate::missing(
                &format!("{:?}", cmd.get_program()),
                format!("it is not installed or not on PATH ({e}); scripts/test.sh installs it"),
            ),
            Err(e) => panic!("spawning {name} ({:?}): {e}", cmd.get_program()),
        };
        Proc {
            child: Some(child),
            name: name.to_string(),
            log: log.to_path_buf(),
            grace: Duration::from_secs(10),
            _logs: logs,
        }
    }

    /// How long the process gets between SIGTERM and SIGKILL when dropped (default 10 s;
    /// zero: SIGKILL at once).
    pub fn with_grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    /// Its pid; fails the test when it was stopped already.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} was stopped already", self.name))
            .id()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Fails the test, with the log's tail, when the process has exited; `doing` says what the
    /// test was waiting for.
    pub fn assert_running(&mut self, doing: &str) {
        let Some(child) = self.child.as_mut() else {
            panic!("{} was stopped already ({doing})", self.name);
        };
        if let Some(status) = child.try_wait().expect("polling a child process") {
            panic!(
                "{} exited with {status} ({doing}); its output:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// Waits (blocking) until it accepts connections on `127.0.0.1:port`; fails the test with
    /// its log when it exits or `within` passes first.
    pub fn wait_for_port(&mut self, port: u16, within: Duration) {
        let deadline = Instant::now() + within;
        while !crate::listening(port) {
            self.assert_running(&format!("waiting for port {port}"));
            if Instant::now() > deadline {
                panic!(
                    "{} did not listen on port {port} within {within:?}; its output:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `GET url` answers with a success status; fails the test with its log when it
    /// exits or `within` passes first.
    pub async fn wait_for_http(&mut self, url: &str, within: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + within;
        loop {
            self.assert_running(&format!("waiting for GET {url}"));
            if let Ok(resp) = http.get(url).send().await {
                if resp.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not answer GET {url} within {within:?}; its output:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `sig` to it (it is not reaped: see [`Proc::terminate`], [`Proc::kill`]).
    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// SIGTERM, then waits for the exit; fails the test with its log (after a SIGKILL) when it
    /// does not exit `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("{} was stopped already", self.name));
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for a child process") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {within:?} of SIGTERM; its output:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL (a crash) and reaps it; its exit status, `None` when it was stopped already.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- {} (tail of {}) ----\n{}\n----",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if !self.grace.is_zero() && matches!(child.try_wait(), Ok(None)) {
            // SAFETY: kill(2) on our own child, not reaped yet; no memory is involved.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_logs_and_is_stopped() {
        let sleep = format!("sleep 30.{}", std::process::id());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("echo started; exec {sleep}")]);
        let mut p = Proc::spawn_logged("sleeper", &mut cmd);
        crate::wait_until_blocking("the log line", Duration::from_secs(10), || {
            p.log_tail().contains("started")
        });
        p.assert_running("sleeping");
        assert_eq!(processes_with(&sleep), [(p.pid(), format!("{sleep} "))]);
        let status = p.terminate(Duration::from_secs(10));
        assert!(!status.success());
        assert!(processes_with(&sleep).is_empty());
        assert!(p.kill().is_none(), "stopped already");
    }

    #[test]
    fn a_dropped_process_is_killed() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let p = Proc::spawn_logged("sleeper", &mut cmd).with_grace(Duration::ZERO);
        let pid = p.pid();
        drop(p);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
