//! The launchers: what the proxy runs an action's code with, chosen by its kind's
//! [`kinds::Launcher`] in `whisk_core::kinds::KINDS`.
//!
//! - Python and Node.js ([`ScriptLauncher`], ActionLoop style): one long-lived interpreter
//!   running an embedded launcher script (`launchers/launcher.py` or `launchers/launcher.js`),
//!   started before `/init` arrives. Requests go as one JSON line on the launcher's stdin;
//!   answers come back as one JSON line on a dedicated pipe that is fd 3 in the child. The
//!   launcher's stdout and stderr are the proxy's own (inherited), so whatever the function
//!   prints lands where the invoker collects logs. Messages: at startup the launcher writes
//!   `{"ok": true}` (ready); then `{"init": {"main", "binary", "dir", "env"}}` → `{"ok": true}`
//!   or `{"error": ...}`; then `{"value": ..., "env": {...}}` → the result. A launcher of a kind
//!   that runs concurrent activations (Node.js, the kinds table's `concurrent` flag) gets runs
//!   as `{"id": n, "value", "env"}` and answers `n <result>`, in any order.
//! - Native ([`ExecLauncher`], OpenWhisk's dockerskeleton): the action is an executable,
//!   `<dir>/exec`; each `/run` executes it with the parameters as JSON in argv\[1\] (when
//!   short enough) and on stdin, with the init and `__OW_*` environment. The last line it
//!   prints on stdout is the result (a JSON object or array); the lines before it, and its
//!   stderr, are logs.
//!
//! Why one file of this length: the three launchers share the spawn, the request/answer pipe and
//! the error answers; each launcher's own part is short.

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};
use whisk_core::kinds;

use crate::action;
use crate::config::ProxyConfig;
use crate::protocol::{InitRequest, RunRequest};

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
    #[error("cannot start the {launcher} launcher with {program}: {source}")]
    Spawn {
        /// The launcher.
        launcher: kinds::Launcher,
        /// The interpreter that was run.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The launcher exited (or closed its answer pipe); it cannot run again.
    #[error("the launcher exited ({0})")]
    Exited(String),
    /// The action's process (of this activation only) was killed before it gave a result.
    #[error("the action's process was killed ({0})")]
    Killed(String),
    /// The action's process ended without a JSON object or array as its last line.
    #[error("the action printed no result")]
    NoResult,
    /// The launcher answered something that is not part of the protocol.
    #[error("the launcher broke the protocol: {0}")]
    Protocol(String),
}

/// The launcher of one proxy.
#[derive(Debug)]
pub enum Launcher {
    /// A long-lived interpreter (Python, Node.js).
    Script(Box<ScriptLauncher>),
    /// The action's own executable, once per activation (native).
    Exec(ExecLauncher),
}

impl Launcher {
    /// Starts the launcher of `config` (an interpreter is started now, before `/init`).
    pub fn spawn(config: &ProxyConfig) -> Result<Self, LauncherError> {
        let script = match config.launcher {
            kinds::Launcher::Python => ("launcher.py", PYTHON_LAUNCHER),
            kinds::Launcher::Node => ("launcher.js", NODE_LAUNCHER),
            kinds::Launcher::Exec => return Ok(Launcher::Exec(ExecLauncher::default())),
        };
        let launcher = ScriptLauncher::spawn(config, script.0, script.1)?;
        Ok(Launcher::Script(Box::new(launcher)))
    }

    /// Loads the action whose code is in `dir`; answers `{"ok": true}` or `{"error": ...}`.
    pub async fn init(&mut self, dir: &Path, init: &InitRequest) -> Result<Vec<u8>, LauncherError> {
        match self {
            Launcher::Script(l) => l.request(&action::init_line(dir, init)).await,
            Launcher::Exec(l) => Ok(l.init(dir, init)),
        }
    }

    /// Runs the action once; answers its result's JSON text.
    pub async fn run(&mut self, run: &RunRequest) -> Result<Vec<u8>, LauncherError> {
        match self {
            Launcher::Script(l) => l.request(&run.to_line()).await,
            Launcher::Exec(l) => l.run(run).await,
        }
    }

    /// The shared pipes of a launcher that runs several activations at once (Node.js).
    pub fn concurrent(&self) -> Option<Arc<ScriptIo>> {
        match self {
            Launcher::Script(l) => l.handle(),
            Launcher::Exec(_) => None,
        }
    }

    /// Whether a JSON array is a result (as OpenWhisk's skeleton allows), not only an object.
    pub fn returns_arrays(&self) -> bool {
        matches!(self, Launcher::Exec(_))
    }

    /// Kills the launcher and waits for it.
    pub async fn kill(&mut self) {
        if let Launcher::Script(l) = self {
            l.kill().await;
        }
    }
}

/// A running interpreter launcher; dropping it kills the process.
///
/// A reader task owns the interpreter and its answer pipe: answers to `init` (and, for a
/// launcher that runs one activation at a time, to runs) come back in order on a control
/// channel; a concurrent launcher (Node.js) answers each run with its request's id first
/// (`<id> <result>`), so several runs can be in flight at once ([`ScriptLauncher::handle`]).
#[derive(Debug)]
pub struct ScriptLauncher {
    io: Arc<ScriptIo>,
    kill: Option<oneshot::Sender<()>>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// The launcher's pipes, shared by the requests in flight.
#[derive(Debug)]
pub struct ScriptIo {
    stdin: tokio::sync::Mutex<ChildStdin>,
    control: tokio::sync::Mutex<Control>,
    pending: Mutex<Pending>,
    next_id: AtomicU64,
    concurrent: bool,
}

#[derive(Debug)]
struct Control {
    answers: mpsc::UnboundedReceiver<Vec<u8>>,
    ready: bool,
}

/// Runs waiting for their answer, by id; `exit` once the launcher is gone.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Vec<u8>>>,
    exit: Option<String>,
}

/// What happened first while waiting for an answer.
enum Waited {
    Line(io::Result<usize>),
    Exit(io::Result<ExitStatus>),
    Kill,
}

impl ScriptLauncher {
    /// Writes the launcher script `source` into the workdir as `name` and starts it with the
    /// config's interpreter.
    fn spawn(config: &ProxyConfig, name: &str, source: &str) -> Result<Self, LauncherError> {
        let interpreter = config.interpreter().unwrap_or(Path::new(""));
        let spawn_error = |source| LauncherError::Spawn {
            launcher: config.launcher,
            program: interpreter.display().to_string(),
            source,
        };
        let lib = config.lib_dir();
        std::fs::create_dir_all(&lib).map_err(spawn_error)?;
        let script = config.workdir.join(name);
        std::fs::write(&script, source).map_err(spawn_error)?;

        let (read, write) = cloexec_pipe().map_err(spawn_error)?;
        let mut command = Command::new(interpreter);
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
        if config.launcher == kinds::Launcher::Node {
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
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let io = Arc::new(ScriptIo {
            stdin: tokio::sync::Mutex::new(stdin),
            control: tokio::sync::Mutex::new(Control {
                answers: control_rx,
                ready: false,
            }),
            pending: Mutex::new(Pending::default()),
            next_id: AtomicU64::new(1),
            concurrent: kinds::KINDS
                .iter()
                .any(|k| k.launcher == config.launcher && k.concurrent),
        });
        let (kill, kill_rx) = oneshot::channel();
        let answers = BufReader::with_capacity(64 * 1024, receiver);
        let reader = tokio::spawn(read_answers(
            io.clone(),
            child,
            answers,
            control_tx,
            kill_rx,
        ));
        Ok(ScriptLauncher {
            io,
            kill: Some(kill),
            reader: Some(reader),
        })
    }

    /// The shared pipes, when this launcher runs several activations at once.
    pub fn handle(&self) -> Option<Arc<ScriptIo>> {
        self.io.concurrent.then(|| self.io.clone())
    }

    /// Sends one request line (ending in `\n`) and returns the answer line (without `\n`),
    /// in order with the other requests of the control channel. Waits for the startup
    /// acknowledgement first if needed.
    async fn request(&self, line: &[u8]) -> Result<Vec<u8>, LauncherError> {
        let mut control = self.io.control.lock().await;
        if !control.ready {
            let ack = match control.answers.recv().await {
                Some(ack) => ack,
                None => return Err(self.io.exited("no ready line")),
            };
            let value: serde_json::Value = serde_json::from_slice(&ack).unwrap_or_default();
            if value.get("ok") != Some(&serde_json::Value::Bool(true)) {
                let text = String::from_utf8_lossy(&ack).into_owned();
                return Err(LauncherError::Protocol(format!("bad ready line {text:?}")));
            }
            control.ready = true;
        }
        self.io.write_line(line).await?;
        match control.answers.recv().await {
            Some(answer) => Ok(answer),
            None => Err(self.io.exited("answer pipe closed")),
        }
    }

    /// Kills the launcher and waits for it.
    async fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.await;
        }
    }
}

impl ScriptIo {
    async fn write_line(&self, line: &[u8]) -> Result<(), LauncherError> {
        let mut stdin = self.stdin.lock().await;
        let written = async {
            stdin.write_all(line).await?;
            stdin.flush().await
        };
        written
            .await
            .map_err(|err| self.exited(&format!("stdin: {err}")))
    }

    /// The error for a launcher that is gone.
    fn exited(&self, why: &str) -> LauncherError {
        let exit = self.pending.lock().ok().and_then(|p| p.exit.clone());
        LauncherError::Exited(match exit {
            Some(status) => format!("{why}; {status}"),
            None => why.to_string(),
        })
    }

    /// Runs the action once, concurrently with other runs: the request carries an id, the
    /// launcher answers `<id> <result>`.
    pub async fn run(&self, run: &RunRequest) -> Result<Vec<u8>, LauncherError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| LauncherError::Protocol("poisoned".into()))?;
            if let Some(status) = &pending.exit {
                return Err(LauncherError::Exited(status.clone()));
            }
            pending.waiting.insert(id, tx);
        }
        let mut line = serde_json::to_vec(&json!({"id": id, "value": run.value, "env": run.env}))
            .expect("a JSON value always serializes");
        line.push(b'\n');
        if let Err(err) = self.write_line(&line).await {
            if let Ok(mut pending) = self.pending.lock() {
                pending.waiting.remove(&id);
            }
            return Err(err);
        }
        rx.await.map_err(|_| self.exited("the launcher ended"))
    }
}

/// The reader task: hands each answer line to its request until the launcher exits (or is
/// killed), then fails every request still waiting.
async fn read_answers(
    io: Arc<ScriptIo>,
    mut child: Child,
    mut answers: BufReader<pipe::Receiver>,
    control: mpsc::UnboundedSender<Vec<u8>>,
    mut kill: oneshot::Receiver<()>,
) {
    let mut buf = Vec::new();
    let status = loop {
        buf.clear();
        let waited = tokio::select! {
            biased;
            read = answers.read_until(b'\n', &mut buf) => Waited::Line(read),
            status = child.wait() => Waited::Exit(status),
            _ = &mut kill => Waited::Kill,
        };
        match waited {
            Waited::Line(Ok(_)) if buf.last() == Some(&b'\n') => {
                buf.pop();
                dispatch(&io, &control, std::mem::take(&mut buf));
            }
            Waited::Line(Ok(_)) => {
                // The pipe closed: the launcher is gone (killed if it only closed its pipe).
                let _ = child.start_kill();
                break describe(child.wait().await);
            }
            Waited::Line(Err(err)) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                break format!("answer pipe: {err}");
            }
            Waited::Exit(status) => break describe(status),
            Waited::Kill => {
                let _ = child.kill().await;
                break "killed".to_string();
            }
        }
    };
    if let Ok(mut pending) = io.pending.lock() {
        pending.exit = Some(status);
        pending.waiting.clear();
    }
    // Dropping `control` ends the requests waiting on the control channel.
}

/// Routes one answer line: `<id> <result>` of a concurrent launcher to its run, anything else
/// to the control channel.
fn dispatch(io: &ScriptIo, control: &mpsc::UnboundedSender<Vec<u8>>, line: Vec<u8>) {
    if io.concurrent && line.first().is_some_and(u8::is_ascii_digit) {
        let space = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let id = std::str::from_utf8(&line[..space])
            .ok()
            .and_then(|id| id.parse::<u64>().ok());
        if let Some(id) = id {
            let waiter = io
                .pending
                .lock()
                .ok()
                .and_then(|mut p| p.waiting.remove(&id));
            if let Some(waiter) = waiter {
                let answer = line.get(space + 1..).unwrap_or_default().to_vec();
                let _ = waiter.send(answer);
            }
            return;
        }
    }
    let _ = control.send(line);
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

/// Longest parameters passed in argv\[1\] (Linux's `MAX_ARG_STRLEN` less the NUL, as
/// OpenWhisk's skeleton): larger ones reach the executable on stdin only.
const MAX_ARG: usize = 131_071;

/// Longest stdout line held back as the possible result; a longer one is a log.
const MAX_RESULT_LINE: usize = 16 * 1024 * 1024;

/// The native launcher: no process between activations; each `/run` executes the action.
#[derive(Debug, Default)]
pub struct ExecLauncher {
    /// The action's executable, once `/init` found it (in the action's folder).
    exec: Option<PathBuf>,
    /// The environment `/init` gave the action.
    env: Vec<(String, String)>,
}

impl ExecLauncher {
    /// Accepts the action when `<dir>/exec` is an executable file.
    fn init(&mut self, dir: &Path, init: &InitRequest) -> Vec<u8> {
        let exec = dir.join(crate::config::source_file(kinds::Launcher::Exec));
        let executable = std::fs::metadata(&exec)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        let answer = if executable {
            self.exec = Some(exec);
            self.env = strings(&init.env);
            json!({"ok": true})
        } else {
            let why = if init.binary {
                "the zip file holds no executable 'exec'"
            } else {
                "no executable"
            };
            json!({"error": format!("The action failed to generate or locate a binary: {why}.")})
        };
        answer.to_string().into_bytes()
    }

    /// Executes the action once and takes its last stdout line as the result.
    async fn run(&mut self, run: &RunRequest) -> Result<Vec<u8>, LauncherError> {
        let Some(exec) = &self.exec else {
            return Err(LauncherError::Protocol("run before init".into()));
        };
        let input = run.value.to_string();
        let mut command = Command::new(exec);
        if input.len() <= MAX_ARG {
            command.arg(&input);
        }
        if let Some(dir) = exec.parent() {
            command.current_dir(dir);
        }
        command
            // The container's secret stays with the proxy: the action never sees it.
            .env_remove(crate::config::SECRET_ENV)
            .envs(self.env.iter().cloned())
            .envs(strings(&run.env))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                // E.g. a script without `#!` or a binary for another machine: the action's
                // fault, told in its logs.
                eprintln!("The action's executable could not be started: {err}");
                return Err(LauncherError::NoResult);
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // Concurrently with reading stdout: an action may print before it reads, or
            // never read at all (then the write fails, which is fine).
            tokio::spawn(async move {
                let _ = stdin.write_all(input.as_bytes()).await;
            });
        }
        let result = match child.stdout.take() {
            Some(stdout) => last_line(stdout, &mut io::stdout()).await,
            None => Vec::new(),
        };
        let status = child.wait().await;
        let line = result.trim_ascii();
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(_) | Value::Array(_)) => Ok(line.to_vec()),
            _ => {
                // What it printed last is a log line too, as in OpenWhisk's skeleton.
                if !line.is_empty() {
                    let mut out = io::stdout().lock();
                    let _ = out.write_all(line);
                    let _ = out.write_all(b"\n");
                    let _ = out.flush();
                }
                match status {
                    Ok(s) if s.signal().is_some() => Err(LauncherError::Killed(s.to_string())),
                    _ => Err(LauncherError::NoResult),
                }
            }
        }
    }
}

/// String values of an environment object (the protocol stringifies them).
fn strings(env: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), s.clone()),
            other => (k.clone(), other.to_string()),
        })
        .collect()
}

/// Reads `stdout` to its end, copying every line but the last to `logs` as it comes, and
/// returns the last line (the one before a final newline, if the output ends with one). A
/// line longer than [`MAX_RESULT_LINE`] is copied too, so that memory stays bounded.
async fn last_line(mut stdout: impl AsyncRead + Unpin, logs: &mut impl Write) -> Vec<u8> {
    let mut split = LastLine::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => split.feed(&buf[..n], logs),
        }
        let _ = logs.flush();
    }
    let last = split.finish(logs);
    let _ = logs.flush();
    last
}

/// The state of [`last_line`].
#[derive(Default)]
struct LastLine {
    /// The latest complete line: a log once another line starts.
    held: Option<Vec<u8>>,
    /// The line being read.
    partial: Vec<u8>,
    /// The line being read is too long to be the result: it goes straight to the logs.
    overlong: bool,
}

impl LastLine {
    fn feed(&mut self, mut chunk: &[u8], logs: &mut impl Write) {
        while !chunk.is_empty() {
            let end = chunk.iter().position(|&b| b == b'\n');
            let piece = &chunk[..end.unwrap_or(chunk.len())];
            chunk = &chunk[piece.len() + usize::from(end.is_some())..];
            if self.overlong {
                let _ = logs.write_all(piece);
            } else {
                self.partial.extend_from_slice(piece);
                if self.partial.len() > MAX_RESULT_LINE {
                    self.release(logs);
                    let _ = logs.write_all(&std::mem::take(&mut self.partial));
                    self.overlong = true;
                }
            }
            if end.is_some() {
                self.release(logs);
                if std::mem::take(&mut self.overlong) {
                    let _ = logs.write_all(b"\n");
                } else {
                    self.held = Some(std::mem::take(&mut self.partial));
                }
            }
        }
    }

    /// Writes the held line to the logs: it is not the last.
    fn release(&mut self, logs: &mut impl Write) {
        if let Some(line) = self.held.take() {
            let _ = logs.write_all(&line);
            let _ = logs.write_all(b"\n");
        }
    }

    fn finish(mut self, logs: &mut impl Write) -> Vec<u8> {
        if self.overlong {
            let _ = logs.write_all(b"\n");
            return Vec::new();
        }
        if self.partial.is_empty() {
            return self.held.unwrap_or_default();
        }
        self.release(logs);
        self.partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn split(output: &[u8]) -> (String, String) {
        let mut logs = Vec::new();
        let last = last_line(output, &mut logs).await;
        (
            String::from_utf8(last).unwrap(),
            String::from_utf8(logs).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_last_stdout_line_is_the_result_the_rest_are_logs() {
        assert_eq!(split(b"a\nb\n{}\n").await, ("{}".into(), "a\nb\n".into()));
        assert_eq!(split(b"a\n{}").await, ("{}".into(), "a\n".into()));
        assert_eq!(split(b"{}").await, ("{}".into(), "".into()));
        assert_eq!(split(b"").await, ("".into(), "".into()));
        // As OpenWhisk's skeleton: only one final newline is dropped.
        assert_eq!(split(b"{}\n\n").await, ("".into(), "{}\n".into()));
    }

    #[tokio::test]
    async fn an_overlong_line_is_a_log() {
        let long = vec![b'x'; MAX_RESULT_LINE + 10];
        let mut output = b"first\n".to_vec();
        output.extend_from_slice(&long);
        let (last, logs) = split(&output).await;
        assert_eq!(last, "");
        assert_eq!(logs.len(), "first\n".len() + long.len() + 1);
        output.extend_from_slice(b"\n{\"a\":1}\n");
        let (last, logs) = split(&output).await;
        assert_eq!(last, r#"{"a":1}"#);
        assert!(logs.ends_with("x\n"));
    }
}
