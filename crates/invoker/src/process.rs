//! The process runtime: every container is a local action proxy process (`whisk-proxy`, or
//! `whisk proxy`) bound to its own loopback address 127.x.y.z:8080, so that every instance has
//! a distinct IP as it would in Docker. Processes run in their own process group (pause =
//! SIGSTOP, resume = SIGCONT, destroy = SIGKILL to the group) and die with the invoker.

use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec, LogCollector};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Port every action proxy listens on.
pub const PROXY_PORT: u16 = 8080;
/// Longest a line of output may be before it is split.
const MAX_LINE: usize = 64 * 1024;

/// Starts action proxies as local processes.
pub struct ProcessFactory {
    command: Vec<String>,
    extra_env: Vec<(String, String)>,
    next: AtomicU32,
    live: Arc<Mutex<HashSet<i32>>>,
    /// Parent of every proxy's working directory; removed with the factory.
    root: tempfile::TempDir,
}

impl ProcessFactory {
    /// A factory running `command` (program and leading arguments; `--listen` and `--family`
    /// are appended), with `extra_env` given to every proxy (e.g. `WHISK_PYTHON`).
    pub fn new(command: Vec<String>, extra_env: Vec<(String, String)>) -> Self {
        // Start at a random point of 127.1.0.0 - 127.254.255.255 so that two invokers on one
        // host rarely probe the same addresses; a bind check settles collisions.
        let start = 0x0001_0000 + rand::random::<u32>() % 0x00fd_0000;
        let root = tempfile::Builder::new()
            .prefix("whisk-containers-")
            .tempdir()
            .expect("the system temp folder is writable");
        Self {
            command,
            extra_env,
            next: AtomicU32::new(start),
            live: Arc::default(),
            root,
        }
    }

    /// The proxy command next to the running binary: `whisk-proxy` if present, else the
    /// running binary's own `proxy` subcommand.
    pub fn default_command() -> Vec<String> {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("whisk"));
        let sibling = exe.with_file_name("whisk-proxy");
        if sibling.exists() {
            vec![sibling.display().to_string()]
        } else {
            vec![exe.display().to_string(), "proxy".into()]
        }
    }

    fn allocate_ip(&self) -> Result<Ipv4Addr, ContainerError> {
        for _ in 0..1000 {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let n = 0x0001_0000 + n % 0x00fe_0000;
            let ip = Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
            if matches!(ip.octets()[3], 0 | 255) {
                continue;
            }
            if std::net::TcpListener::bind((ip, PROXY_PORT)).is_ok() {
                return Ok(ip);
            }
        }
        Err(ContainerError::Start(
            "no free loopback address for an action proxy".into(),
        ))
    }

    /// Kills every proxy this factory started (shutdown).
    pub fn kill_all(&self) {
        for pgid in self.live.lock().drain() {
            kill_group(pgid, libc::SIGKILL);
        }
    }
}

impl Drop for ProcessFactory {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn kill_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

#[async_trait]
impl ContainerFactory for ProcessFactory {
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        // Another platform on this host may take the address between the bind check and the
        // proxy's own bind: a proxy that exits during start is retried on the next address.
        let mut last = None;
        for _ in 0..3 {
            match self.create_once(&spec).await {
                Ok(c) => return Ok(c),
                Err(ContainerError::Start(m)) => {
                    tracing::warn!(error = %m, "an action proxy did not start; retrying");
                    last = Some(ContainerError::Start(m));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ContainerError::Start("the action proxy did not start".into())))
    }

    async fn cleanup(&self) -> Result<(), ContainerError> {
        self.kill_all();
        Ok(())
    }
}

impl ProcessFactory {
    async fn create_once(
        &self,
        spec: &ContainerSpec,
    ) -> Result<Arc<dyn Container>, ContainerError> {
        let (program, args) = self.command.split_first().ok_or_else(|| {
            ContainerError::Unavailable("no action proxy command configured".into())
        })?;
        if !matches!(spec.family.as_str(), "python" | "nodejs") {
            return Err(ContainerError::Start(format!(
                "the process runtime runs Python and Node.js actions only, not image '{}'; start the platform with the Docker runtime for other images",
                spec.image.as_deref().unwrap_or(&spec.family)
            )));
        }
        let ip = self.allocate_ip()?;
        let addr = SocketAddr::new(IpAddr::V4(ip), PROXY_PORT);
        let workdir = self.root.path().join(format!("{}_{}", spec.name, ip));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg("--workdir")
            .arg(&workdir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--family")
            .arg(&spec.family)
            .envs(self.extra_env.iter().cloned())
            .envs(spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &spec.peers_dir {
            cmd.env("WHISK_PEERS_DIR", dir);
        }
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill this child
        // when the thread that spawned it (a long-lived runtime worker) dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            ContainerError::Unavailable(format!("cannot start action proxy '{program}': {e}"))
        })?;
        let pid = child
            .id()
            .map(|p| p as i32)
            .ok_or_else(|| ContainerError::Start("proxy exited at once".into()))?;
        self.live.lock().insert(pid);
        let logs = LogCollector::new();
        let alive = Arc::new(AtomicBool::new(true));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, 0, logs.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, 1, logs.clone()));
        }
        {
            let alive = alive.clone();
            let live = self.live.clone();
            tokio::spawn(async move {
                let _ = child.wait().await;
                alive.store(false, Ordering::SeqCst);
                live.lock().remove(&pid);
                kill_group(pid, libc::SIGKILL);
            });
        }
        let container = ProcessContainer {
            id: format!("{}_{pid}", spec.name),
            pid,
            ip: IpAddr::V4(ip),
            addr,
            alive,
            logs,
            live: self.live.clone(),
            workdir,
        };
        wait_ready(&container).await?;
        Ok(Arc::new(container))
    }
}

async fn wait_ready(c: &ProcessContainer) -> Result<(), ContainerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut delay = Duration::from_micros(500);
    loop {
        if tokio::net::TcpStream::connect(c.addr).await.is_ok() {
            return Ok(());
        }
        if !c.alive.load(Ordering::SeqCst) {
            let logs = c.logs.collect(64 * 1024, Duration::from_millis(50)).await;
            return Err(ContainerError::Start(format!(
                "action proxy exited during start: {}",
                logs.join(" | ")
            )));
        }
        if tokio::time::Instant::now() > deadline {
            c.destroy().await;
            return Err(ContainerError::Start(
                "action proxy did not start listening within 30 s".into(),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}

/// Reads a stream into lines (split at `MAX_LINE`), feeding the collector.
async fn pump<R: AsyncRead + Unpin>(mut r: R, stream: usize, logs: LogCollector) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' {
                logs.push(stream, &String::from_utf8_lossy(&line));
                line.clear();
            } else {
                line.push(b);
                if line.len() >= MAX_LINE {
                    logs.push(stream, &String::from_utf8_lossy(&line));
                    line.clear();
                }
            }
        }
    }
    if !line.is_empty() {
        logs.push(stream, &String::from_utf8_lossy(&line));
    }
    logs.close(stream);
}

/// One action proxy process.
pub struct ProcessContainer {
    id: String,
    pid: i32,
    ip: IpAddr,
    addr: SocketAddr,
    alive: Arc<AtomicBool>,
    logs: LogCollector,
    live: Arc<Mutex<HashSet<i32>>>,
    workdir: PathBuf,
}

#[async_trait]
impl Container for ProcessContainer {
    fn id(&self) -> &str {
        &self.id
    }
    fn ip(&self) -> IpAddr {
        self.ip
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
    async fn suspend(&self) -> Result<(), ContainerError> {
        if kill_group(self.pid, libc::SIGSTOP) {
            Ok(())
        } else {
            Err(ContainerError::Gone(self.id.clone()))
        }
    }
    async fn resume(&self) -> Result<(), ContainerError> {
        if kill_group(self.pid, libc::SIGCONT) {
            Ok(())
        } else {
            Err(ContainerError::Gone(self.id.clone()))
        }
    }
    async fn destroy(&self) {
        kill_group(self.pid, libc::SIGKILL);
        self.live.lock().remove(&self.pid);
        self.alive.store(false, Ordering::SeqCst);
        let _ = tokio::fs::remove_dir_all(&self.workdir).await;
    }
    async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
        self.logs.collect(limit_bytes, wait).await
    }
}
