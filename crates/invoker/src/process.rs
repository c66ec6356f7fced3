//! The process runtime: every container is a local action proxy process (`whisk-proxy`, or
//! `whisk proxy`) bound to its own loopback address 127.x.y.z:8080, so that every instance has
//! a distinct IP as it would in Docker (or to an address of `invoker.process.subnet`, a subnet
//! routed to this host, so that instances on other hosts reach it). Each runs in a sandbox
//! ([`crate::sandbox`]: its own namespaces under bubblewrap, an unprivileged uid, a clean
//! environment) inside its own cgroup ([`crate::cgroup`]: `limits.memory`, a pids limit,
//! frozen to pause, killed as a whole); out-of-memory kills are read from the cgroup
//! ([`Container::oom_killed`]) and reported as a line appended to the next `logs()`, as in
//! Docker. Every runtime family of `whisk_core::kinds::KINDS` runs here: the proxy picks its
//! launcher from `--family`.
//! A host that cannot sandbox is refused unless `invoker.process.single_tenant` says every
//! action is trusted; then proxies run as plain process groups (pause = SIGSTOP).
//!
//! Why one file of this length: the factory, the process container and their sandbox/cgroup wiring
//! share the life cycle of one child process; the sandbox and cgroup parts already live in their
//! own modules.

use crate::cgroup::{self, Cgroup};
use crate::config::ProcessConfig;
use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec, LogCollector};
use crate::sandbox::{self, Sandbox};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Port every action proxy listens on.
pub const PROXY_PORT: u16 = 8080;
/// Longest a line of output may be before it is split.
const MAX_LINE: usize = 64 * 1024;

/// How actions are isolated.
enum Isolation {
    /// In a sandbox each.
    Sandboxed(Sandbox),
    /// As plain processes, by the operator's choice.
    SingleTenant,
    /// Not at all: the host cannot sandbox and nobody said it may run unsandboxed.
    Refused(String),
}

/// Live proxies: process group id, and cgroup when sandboxed.
type Live = Arc<Mutex<HashMap<i32, Option<Arc<Cgroup>>>>>;

/// Starts action proxies as local processes.
pub struct ProcessFactory {
    command: Vec<String>,
    extra_env: Vec<(String, String)>,
    next: AtomicU32,
    /// First address and size of the proxies' address range (`invoker.process.subnet`).
    base: u32,
    size: u32,
    live: Live,
    isolation: Isolation,
    /// Interpreter folders outside the system folders, given to every sandbox read-only.
    extra_ro: Vec<PathBuf>,
    /// Parent of every proxy's working directory; removed with the factory.
    root: tempfile::TempDir,
}

impl ProcessFactory {
    /// A factory running `command` (program and leading arguments; `--listen` and `--family`
    /// are appended), with `extra_env` given to every proxy (e.g. `WHISK_PYTHON`), sandboxed
    /// with the default settings.
    pub fn new(command: Vec<String>, extra_env: Vec<(String, String)>) -> Self {
        Self::with_config(command, extra_env, &ProcessConfig::default())
    }

    /// As [`ProcessFactory::new`] with the sandbox settings `cfg`. A host that cannot sandbox
    /// gives a factory that refuses to work ([`ContainerFactory::cleanup`], which the invoker
    /// calls at start, fails with the reason) unless `cfg.single_tenant`.
    pub fn with_config(
        mut command: Vec<String>,
        mut extra_env: Vec<(String, String)>,
        cfg: &ProcessConfig,
    ) -> Self {
        // Start at a random point of the range (127.1.0.0 - 127.254.255.255, or the
        // configured subnet) so that two invokers on one host rarely probe the same
        // addresses; a bind check settles collisions.
        let range = cfg.address_range();
        let (base, size) = range.clone().unwrap_or((0x7f01_0000, 0x00fe_0000));
        let start = rand::random::<u32>() % size;
        let root = tempfile::Builder::new()
            .prefix("whisk-containers-")
            .tempdir()
            .expect("the system temp folder is writable");
        let mut extra_ro = vec![];
        let isolation = if let Err(why) = range {
            tracing::error!("{why}");
            Isolation::Refused(why)
        } else if cfg.single_tenant {
            tracing::warn!(
                "invoker.process.single_tenant is set: actions run WITHOUT a sandbox, as this \
                 platform's user, able to read its files; run only code you trust"
            );
            Isolation::SingleTenant
        } else {
            match Sandbox::probe(cfg) {
                Ok(sb) => {
                    prepare_sandbox(
                        &sb,
                        root.path(),
                        &mut command,
                        &mut extra_env,
                        &mut extra_ro,
                    );
                    Isolation::Sandboxed(sb)
                }
                Err(e) => {
                    let why = format!(
                        "{e}; the process runtime does not run actions unsandboxed unless told \
                         that every action is trusted (invoker.process.single_tenant = true, \
                         WHISK_INVOKER__PROCESS__SINGLE_TENANT=true)"
                    );
                    tracing::error!("{why}");
                    Isolation::Refused(why)
                }
            }
        };
        Self {
            command,
            extra_env,
            next: AtomicU32::new(start),
            base,
            size,
            live: Arc::default(),
            isolation,
            extra_ro,
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

    /// True when every container runs in a sandbox.
    pub fn sandboxed(&self) -> bool {
        matches!(self.isolation, Isolation::Sandboxed(_))
    }

    fn allocate_ip(&self) -> Result<Ipv4Addr, ContainerError> {
        for _ in 0..1000 {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let ip = Ipv4Addr::from(self.base.wrapping_add(n % self.size));
            if matches!(ip.octets()[3], 0 | 255) {
                continue;
            }
            if std::net::TcpListener::bind((ip, PROXY_PORT)).is_ok() {
                return Ok(ip);
            }
        }
        Err(ContainerError::Start(
            "no free address for an action proxy".into(),
        ))
    }

    /// Kills every proxy this factory started (shutdown).
    pub fn kill_all(&self) {
        for (pgid, cg) in self.live.lock().drain() {
            kill_group(pgid, libc::SIGKILL);
            if let Some(cg) = cg {
                cg.kill();
            }
        }
    }
}

/// What every sandbox needs from the host, settled once: a proxy binary and interpreters the
/// unprivileged uid can reach, and a work root it can traverse.
fn prepare_sandbox(
    sb: &Sandbox,
    root: &Path,
    command: &mut [String],
    extra_env: &mut Vec<(String, String)>,
    extra_ro: &mut Vec<PathBuf>,
) {
    // Only search permission: the containers' own folders stay private.
    let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o711));
    if let Some(program) = command.first_mut() {
        let path = sandbox::which(Path::new(program.as_str()))
            .and_then(|p| p.canonicalize().ok())
            .unwrap_or_else(|| PathBuf::from(program.as_str()));
        let mut usable = path.clone();
        if !sb.reachable(&path, 0o5) {
            // E.g. ~/.cargo/bin of root: a copy the sandbox uid can run.
            let copy = root.join("whisk-proxy");
            match std::fs::copy(&path, &copy) {
                Ok(_) => {
                    let _ = std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755));
                    usable = copy;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot copy the proxy where the sandbox reaches it")
                }
            }
        }
        *program = usable.display().to_string();
    }
    // Interpreters installed outside the system folders (nvm, pyenv, /opt): their prefix,
    // read-only, at the same path.
    let mut interpreters: Vec<(&str, PathBuf)> = vec![];
    for (key, default) in [("WHISK_PYTHON", None), ("WHISK_NODE", Some("node"))] {
        let given = extra_env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone());
        let Some(name) = given.or(default.map(str::to_owned)) else {
            continue;
        };
        if let Some(found) = sandbox::which(Path::new(&name)) {
            interpreters.push((key, found));
        }
    }
    for (key, found) in interpreters {
        if sandbox::in_system(&found) {
            continue;
        }
        let real = found.canonicalize().unwrap_or(found.clone());
        // <prefix>/bin/node: the whole prefix (its libraries) is needed.
        let prefix = real
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"));
        if prefix != Path::new("/") && !extra_ro.iter().any(|p| p == prefix) {
            extra_ro.push(prefix.to_path_buf());
        }
        extra_env.retain(|(k, _)| k != key);
        extra_env.push((key.to_string(), found.display().to_string()));
    }
}

impl Drop for ProcessFactory {
    fn drop(&mut self) {
        self.kill_all();
        // The exit watchers may not run again (their runtime ends too): remove the cgroups
        // here, giving the killed processes a moment to leave them.
        if let Isolation::Sandboxed(sb) = &self.isolation {
            for _ in 0..50 {
                if sb.cgroups().remove() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

fn kill_group(pgid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

#[async_trait]
impl ContainerFactory for ProcessFactory {
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        if let Isolation::Refused(why) = &self.isolation {
            return Err(ContainerError::Unavailable(why.clone()));
        }
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
        if let Isolation::Refused(why) = &self.isolation {
            return Err(ContainerError::Unavailable(why.clone()));
        }
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
        if whisk_core::kinds::default_of(&spec.family).is_none() {
            return Err(ContainerError::Start(format!(
                "the process runtime runs the platform's own kinds ({}) only, not image '{}'; start the platform with the Docker runtime for other images",
                whisk_core::kinds::names(),
                spec.image.as_deref().unwrap_or(&spec.family)
            )));
        }
        let ip = self.allocate_ip()?;
        let addr = SocketAddr::new(IpAddr::V4(ip), PROXY_PORT);
        let workdir = self.root.path().join(format!("{}_{}", spec.name, ip));
        let mut cmd;
        let mut cgroup = None;
        match &self.isolation {
            Isolation::Sandboxed(sb) => {
                let (c, cg) = self.sandboxed_command(sb, spec, ip, &workdir)?;
                cmd = c;
                cgroup = Some(cg);
            }
            _ => {
                cmd = Command::new(program);
                cmd.args(args).env_clear();
                cmd.env(
                    "PATH",
                    std::env::var_os("PATH").unwrap_or(sandbox::PATH.into()),
                );
            }
        }
        cmd.arg("--workdir")
            .arg(&workdir)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--family")
            .arg(&spec.family)
            .env("LANG", "C.UTF-8")
            .env("HOME", &workdir)
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
        let join = cgroup
            .as_ref()
            .map(|c: &Arc<Cgroup>| c.join_fds())
            .unwrap_or_default();
        let drop_to = match &self.isolation {
            Isolation::Sandboxed(sb) => sb.drop_to(),
            _ => None,
        };
        // SAFETY: only async-signal-safe calls (write, setgroups, setgid, setuid, prctl)
        // between fork and exec, on values prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // Into the container's cgroups first, so every later child is inside.
                cgroup::join_in_child(&join)?;
                if let Some((uid, gid)) = drop_to {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // After the uid change, which clears it: the kernel kills this child when the
                // thread that spawned it (a long-lived runtime worker) dies.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                if let Some(cg) = &cgroup {
                    cg.remove();
                }
                let _ = std::fs::remove_dir_all(&workdir);
                return Err(ContainerError::Unavailable(format!(
                    "cannot start action proxy '{program}': {e}"
                )));
            }
        };
        let pid = child
            .id()
            .map(|p| p as i32)
            .ok_or_else(|| ContainerError::Start("proxy exited at once".into()))?;
        self.live.lock().insert(pid, cgroup.clone());
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
            let cgroup = cgroup.clone();
            tokio::spawn(async move {
                let _ = child.wait().await;
                alive.store(false, Ordering::SeqCst);
                live.lock().remove(&pid);
                kill_group(pid, libc::SIGKILL);
                if let Some(cg) = cgroup {
                    // bubblewrap's init took its namespace down; whatever is left goes too,
                    // then the folders (the kernel lets go of dying tasks within ms).
                    cg.kill();
                    for _ in 0..200 {
                        if cg.remove() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
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
            memory_mb: spec.memory_mb,
            cgroup,
            oom_reported: AtomicU64::new(0),
        };
        wait_ready(&container).await?;
        Ok(Arc::new(container))
    }

    /// bubblewrap, set up for one container: its work folder (owned by the sandbox uid), its
    /// cgroup, the folders it sees. The proxy's own arguments and environment follow.
    fn sandboxed_command(
        &self,
        sb: &Sandbox,
        spec: &ContainerSpec,
        ip: Ipv4Addr,
        workdir: &Path,
    ) -> Result<(Command, Arc<Cgroup>), ContainerError> {
        let start = |what: &str, e: &dyn std::fmt::Display| {
            ContainerError::Start(format!("sandbox of {}: {what}: {e}", spec.name))
        };
        std::fs::create_dir(workdir).map_err(|e| start("work folder", &e))?;
        let _ = std::fs::set_permissions(workdir, std::fs::Permissions::from_mode(0o700));
        if let Some((uid, gid)) = sb.drop_to() {
            std::os::unix::fs::chown(workdir, Some(uid), Some(gid))
                .map_err(|e| start("work folder", &e))?;
        }
        if let Some(dir) = &spec.peers_dir {
            if !sb.reachable(dir, 0o5) {
                // The invoker's folder of peer folders is private (0700): let the sandbox uid
                // pass through it, never list it.
                if let Some(parent) = dir.parent() {
                    if let Ok(meta) = parent.metadata() {
                        let mode = meta.permissions().mode() | 0o111;
                        let _ =
                            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode));
                    }
                }
                if !sb.reachable(dir, 0o5) {
                    let _ = std::fs::remove_dir_all(workdir);
                    return Err(ContainerError::Unavailable(format!(
                        "the sandbox uid cannot reach the peer folder {}: give invoker.containers_dir a folder every user may pass through",
                        dir.display()
                    )));
                }
            }
        }
        let memory = spec.memory_mb.max(16) * 1024 * 1024;
        let cg = sb
            .cgroups()
            .create(&format!("{}_{}", spec.name, ip), memory, sb.pids_max())
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(workdir);
                ContainerError::Unavailable(e.to_string())
            })?;
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| ContainerError::Unavailable("no action proxy command".into()))?;
        let mut cmd = Command::new(sb.bwrap());
        cmd.args(sb.args(
            Path::new(program),
            Some(workdir),
            spec.peers_dir.as_deref(),
            &self.extra_ro,
        ))
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", sandbox::PATH);
        Ok((cmd, Arc::new(cg)))
    }
}

async fn wait_ready(c: &ProcessContainer) -> Result<(), ContainerError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // A proxy listens 5-30 ms after its spawn: a connect attempt on loopback costs ~20 µs,
    // so poll finely (a coarse backoff would add up to its last step to every cold start).
    let mut delay = Duration::from_micros(250);
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
        delay = (delay * 2).min(Duration::from_millis(1));
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
    live: Live,
    workdir: PathBuf,
    memory_mb: u64,
    cgroup: Option<Arc<Cgroup>>,
    /// Out-of-memory kills already reported.
    oom_reported: AtomicU64,
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
        if let Some(cg) = &self.cgroup {
            return cg
                .freeze()
                .map_err(|e| ContainerError::Gone(format!("{}: {e}", self.id)));
        }
        if kill_group(self.pid, libc::SIGSTOP) {
            Ok(())
        } else {
            Err(ContainerError::Gone(self.id.clone()))
        }
    }
    async fn resume(&self) -> Result<(), ContainerError> {
        if let Some(cg) = &self.cgroup {
            return cg
                .thaw()
                .map_err(|e| ContainerError::Gone(format!("{}: {e}", self.id)));
        }
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
        if let Some(cg) = &self.cgroup {
            cg.kill();
            // Its processes leave the cgroup within a few ms of the kill; the folders go then
            // (or with the factory, or at the next start's sweep if the runtime ends first).
            let cg = cg.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    if cg.remove() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            });
        }
        let _ = tokio::fs::remove_dir_all(&self.workdir).await;
    }
    async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
        let mut lines = self.logs.collect(limit_bytes, wait).await;
        if let Some(cg) = &self.cgroup {
            let kills = cg.oom_kills();
            if kills > self.oom_reported.swap(kills, Ordering::SeqCst) {
                lines.push(crate::container::out_of_memory_line(self.memory_mb));
            }
        }
        lines
    }
    fn log_collector(&self) -> Option<LogCollector> {
        Some(self.logs.clone())
    }
    async fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0)
    }
}
