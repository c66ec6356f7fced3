//! The long-lived launcher process (ActionLoop style).
//!
//! The proxy starts one interpreter running an embedded launcher script
//! (`launchers/launcher.py` or `launchers/launcher.js`) before `/init`
//! arrives. Requests go as one JSON line on the launcher's stdin; answers come
//! back as one JSON line on a dedicated pipe that is fd 3 in the child. The
//! launcher's stdout and stderr are the proxy's own (inherited), so whatever
//! the function prints lands where the invoker collects logs.
//!
//! Messages: at startup the launcher writes `{"ok": true}` (ready); then
//! `{"init": {"main", "binary", "dir", "env"}}` → `{"ok": true}` or
//! `{"error": ...}`; then `{"value": ..., "env": {...}}` → the result.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, Command};

use crate::config::{Family, ProxyConfig};

/// The Python launcher source, written to `<workdir>/launcher.py`.
pub const PYTHON_LAUNCHER: &str = include_str!("../launchers/launcher.py");
/// The Node.js launcher source, written to `<workdir>/launcher.js`.
pub const NODE_LAUNCHER: &str = include_str!("../launchers/launcher.js");

/// The child's file descriptor for answers.
const ANSWER_FD: i32 = 3;

/// A failure to start or talk to the launcher.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// The launcher script could not be written or the interpreter started.
    #[error("cannot start the {family} launcher with {program}: {source}")]
    Spawn {
        /// The runtime family.
        family: Family,
        /// The interpreter that was run.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The launcher exited (or closed its answer pipe).
    #[error("the launcher exited ({0})")]
    Exited(String),
    /// The launcher answered something that is not part of the protocol.
    #[error("the launcher broke the protocol: {0}")]
    Protocol(String),
}

/// A running launcher; dropping it kills the process.
#[derive(Debug)]
pub struct Launcher {
    child: Child,
    stdin: ChildStdin,
    answers: BufReader<pipe::Receiver>,
    ready: bool,
}

/// What happened first while waiting for an answer.
enum Waited {
    Line(io::Result<usize>),
    Exit(io::Result<ExitStatus>),
}

impl Launcher {
    /// Writes the launcher script into the workdir and starts it.
    pub fn spawn(config: &ProxyConfig) -> Result<Self, LauncherError> {
        let spawn_error = |source| LauncherError::Spawn {
            family: config.family,
            program: config.interpreter().display().to_string(),
            source,
        };
        let lib = config.lib_dir();
        std::fs::create_dir_all(&lib).map_err(spawn_error)?;
        let (name, source) = match config.family {
            Family::Python => ("launcher.py", PYTHON_LAUNCHER),
            Family::Nodejs => ("launcher.js", NODE_LAUNCHER),
        };
        let script = config.workdir.join(name);
        std::fs::write(&script, source).map_err(spawn_error)?;

        let (read, write) = cloexec_pipe().map_err(spawn_error)?;
        let mut command = Command::new(config.interpreter());
        command
            .arg(&script)
            .current_dir(&config.workdir)
            .env("WHISK_PROXY_LIB", &lib)
            // The container's secret stays with the proxy: the action never sees it.
            .env_remove(crate::config::SECRET_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if config.family == Family::Nodejs {
            let mut paths = vec![lib.clone()];
            if let Some(existing) = std::env::var_os("NODE_PATH") {
                paths.extend(std::env::split_paths(&existing));
            }
            if let Ok(joined) = std::env::join_paths(paths) {
                command.env("NODE_PATH", joined);
            }
        }
        let raw = write.as_raw_fd();
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            command.pre_exec(move || answer_fd_to_3(raw));
        }
        let mut child = command.spawn().map_err(spawn_error)?;
        drop(write); // Only the child may hold the write end: EOF means it died.
        let stdin = child.stdin.take().expect("stdin is piped");
        let receiver = pipe::Receiver::from_owned_fd(read).map_err(spawn_error)?;
        Ok(Launcher {
            child,
            stdin,
            answers: BufReader::with_capacity(64 * 1024, receiver),
            ready: false,
        })
    }

    /// Sends one request line (ending in `\n`) and returns the answer line
    /// (without `\n`). Waits for the startup acknowledgement first if needed.
    pub async fn request(&mut self, line: &[u8]) -> Result<Vec<u8>, LauncherError> {
        if !self.ready {
            let ack = self.read_answer().await?;
            let value: serde_json::Value = serde_json::from_slice(&ack).unwrap_or_default();
            if value.get("ok") != Some(&serde_json::Value::Bool(true)) {
                let text = String::from_utf8_lossy(&ack).into_owned();
                return Err(LauncherError::Protocol(format!("bad ready line {text:?}")));
            }
            self.ready = true;
        }
        if let Err(err) = self.write_line(line).await {
            return Err(self.exited(format!("stdin: {err}")).await);
        }
        self.read_answer().await
    }

    /// Kills the launcher and waits for it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    async fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.stdin.write_all(line).await?;
        self.stdin.flush().await
    }

    async fn read_answer(&mut self) -> Result<Vec<u8>, LauncherError> {
        let mut buf = Vec::new();
        let waited = tokio::select! {
            biased;
            read = self.answers.read_until(b'\n', &mut buf) => Waited::Line(read),
            status = self.child.wait() => Waited::Exit(status),
        };
        match waited {
            Waited::Line(Ok(_)) if buf.last() == Some(&b'\n') => {
                buf.pop();
                Ok(buf)
            }
            Waited::Line(Ok(_)) => Err(self.exited("answer pipe closed".into()).await),
            Waited::Line(Err(err)) => Err(LauncherError::Protocol(err.to_string())),
            Waited::Exit(status) => Err(LauncherError::Exited(describe(status))),
        }
    }

    /// The error for a launcher that is gone; reaps it (killing it if it
    /// only closed its pipe).
    async fn exited(&mut self, why: String) -> LauncherError {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => Ok(status),
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await
            }
        };
        LauncherError::Exited(format!("{why}; {}", describe(status)))
    }
}

fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(err) => format!("unknown status: {err}"),
    }
}

/// A pipe whose both ends are close-on-exec in the proxy.
fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by us alone.
    unsafe { Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))) }
}

/// In the forked child: make `fd` available as fd 3 across exec.
fn answer_fd_to_3(fd: i32) -> io::Result<()> {
    // SAFETY: plain fcntl/dup2 on fds the child owns; async-signal-safe.
    unsafe {
        if fd == ANSWER_FD {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(fd, ANSWER_FD) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
