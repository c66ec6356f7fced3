//! The Docker runtime: every container is a Docker container of a runtime image (by default
//! `whisk/python3action`, built locally by `deploy/images/build.sh`), running the action proxy
//! on port 8080, attached to a user-defined bridge network so that instances reach each other
//! by IP. Talks to the Engine API through bollard over the unix socket; never pulls images.
//!
//! - Reachability: the invoker calls `/init` and `/run` through a port published on
//!   127.0.0.1 (default) or directly on the container's network IP; peers use the network IP.
//! - Limits: memory (no extra swap) from the action, pids, `NET_RAW`/`NET_ADMIN` dropped,
//!   `no-new-privileges`. The peer folder is bind-mounted read-only at `/addrMap`.
//! - Logs: the container's stdout/stderr are followed into a [`LogCollector`], as in the
//!   process runtime. An out-of-memory kill (a Docker `oom` event, or `OOMKilled` on exit) is
//!   reported by [`DockerContainer::oom_killed`] and as a line appended to the next `logs()`.
//! - Every container carries the label `whisk_invoker=<prefix>`; [`DockerFactory::cleanup`]
//!   removes those left by a previous run.

use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec, LogCollector};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Ipam, IpamConfig, NetworkCreateRequest,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Port the action proxy listens on inside every container.
pub const PROXY_PORT: u16 = 8080;
/// Label put on every container this runtime creates; its value is the factory's prefix.
pub const LABEL: &str = "whisk_invoker";
/// Where the peer folder appears inside a container (the seed's path).
pub const PEERS_MOUNT: &str = "/addrMap";
/// Longest a line of output may be before it is split.
const MAX_LINE: usize = 64 * 1024;

/// Settings of the Docker runtime (all keys optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Engine socket [default: `DOCKER_HOST` if it is a `unix://` address, else
    /// `/var/run/docker.sock`].
    pub socket: String,
    /// Image per runtime family, used when an action names no image
    /// [default: `python` → `whisk/python3action`].
    pub images: BTreeMap<String, String>,
    /// The user-defined bridge network of action containers, created if missing
    /// [default: `whisk_actions`].
    pub network: String,
    /// Subnet of that network when this runtime creates it, e.g. `172.31.0.0/16`
    /// [default: none, Docker picks one].
    pub subnet: Option<String>,
    /// Publish each container's port 8080 on 127.0.0.1:<random> and reach the proxy there;
    /// false: reach it at `<container IP>:8080` (the invoker must be on that network)
    /// [default: true].
    pub publish_to_localhost: bool,
    /// Most processes per container [default: 1024].
    pub pids_limit: i64,
    /// Value of the `whisk_invoker` label on this factory's containers; `cleanup` removes
    /// containers with this value [default: `whisk`].
    pub prefix: String,
    /// Longest wait for a new container's proxy to answer, ms [default: 10000].
    pub ready_timeout_ms: u64,
}

impl Default for DockerConfig {
    fn default() -> Self {
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
            .unwrap_or_else(|| "/var/run/docker.sock".into());
        Self {
            socket,
            images: BTreeMap::from([
                ("python".into(), "whisk/python3action".into()),
                ("nodejs".into(), "whisk/nodejsaction".into()),
            ]),
            network: "whisk_actions".into(),
            subnet: None,
            publish_to_localhost: true,
            pids_limit: 1024,
            prefix: "whisk".into(),
            ready_timeout_ms: 10_000,
        }
    }
}

/// Per-container state the factory's event watcher updates.
type OomFlags = Mutex<HashMap<String, Weak<AtomicBool>>>;

/// Starts action containers through the Docker Engine API.
pub struct DockerFactory {
    config: DockerConfig,
    /// The negotiated client, once the daemon answered and the network exists.
    ready: OnceCell<Docker>,
    ooms: Arc<OomFlags>,
    http: reqwest::Client,
}

impl DockerFactory {
    /// A factory for `config`. Does not contact the daemon: the first `create` (or
    /// [`DockerFactory::connect`]) does, and later calls retry while it is down.
    pub fn new(config: DockerConfig) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("static reqwest configuration");
        Self {
            config,
            ready: OnceCell::new(),
            ooms: Arc::default(),
            http,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Reaches the daemon (negotiating the API version), makes sure the network exists and
    /// starts watching out-of-memory events. Idempotent; fails with
    /// [`ContainerError::Unavailable`] naming the socket while the daemon is down.
    pub async fn connect(&self) -> Result<Docker, ContainerError> {
        self.ready
            .get_or_try_init(|| async {
                let docker = Docker::connect_with_socket(
                    &self.config.socket,
                    120,
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| self.unavailable(e))?
                .negotiate_version()
                .await
                .map_err(|e| self.unavailable(e))?;
                self.ensure_network(&docker).await?;
                tokio::spawn(watch_ooms(
                    docker.clone(),
                    self.config.prefix.clone(),
                    Arc::downgrade(&self.ooms),
                ));
                Ok(docker)
            })
            .await
            .cloned()
    }

    fn unavailable(&self, e: DockerError) -> ContainerError {
        ContainerError::Unavailable(format!(
            "Docker daemon at {} is not reachable: {e}",
            self.config.socket
        ))
    }

    /// Maps an API error: an answer from the daemon is a start failure, anything else means
    /// the daemon is unreachable.
    fn error(&self, what: &str, e: DockerError) -> ContainerError {
        match e {
            DockerError::DockerResponseServerError { message, .. } => {
                ContainerError::Start(format!("{what}: {message}"))
            }
            e => self.unavailable(e),
        }
    }

    async fn ensure_network(&self, docker: &Docker) -> Result<(), ContainerError> {
        let name = &self.config.network;
        if docker.inspect_network(name, None).await.is_ok() {
            return Ok(());
        }
        let ipam = self.config.subnet.as_ref().map(|subnet| Ipam {
            config: Some(vec![IpamConfig {
                subnet: Some(subnet.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            ipam,
            labels: Some(HashMap::from([(LABEL.into(), self.config.prefix.clone())])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Created meanwhile by another invoker.
            Err(_) if docker.inspect_network(name, None).await.is_ok() => Ok(()),
            Err(e) => Err(self.error(&format!("creating network '{name}'"), e)),
        }
    }

    fn image_for(&self, spec: &ContainerSpec) -> Result<String, ContainerError> {
        if let Some(image) = &spec.image {
            return Ok(image.clone());
        }
        self.config
            .images
            .get(&spec.family)
            .cloned()
            .ok_or_else(|| {
                ContainerError::Start(format!(
                    "no Docker image configured for runtime family '{}'",
                    spec.family
                ))
            })
    }

    fn create_body(&self, spec: &ContainerSpec, image: &str) -> ContainerCreateBody {
        let port = format!("{PROXY_PORT}/tcp");
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut binds = Vec::new();
        if let Some(dir) = &spec.peers_dir {
            binds.push(format!("{}:{PEERS_MOUNT}:ro", dir.display()));
            env.push(format!("WHISK_PEERS_DIR={PEERS_MOUNT}"));
        }
        let memory = (spec.memory_mb as i64).saturating_mul(1024 * 1024);
        let port_bindings = self.config.publish_to_localhost.then(|| {
            HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])
        });
        ContainerCreateBody {
            image: Some(image.into()),
            env: Some(env),
            labels: Some(HashMap::from([(LABEL.into(), self.config.prefix.clone())])),
            exposed_ports: Some(vec![port]),
            host_config: Some(HostConfig {
                memory: (memory > 0).then_some(memory),
                memory_swap: (memory > 0).then_some(memory),
                pids_limit: Some(self.config.pids_limit),
                cap_drop: Some(vec!["NET_RAW".into(), "NET_ADMIN".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                privileged: Some(false),
                binds: (!binds.is_empty()).then_some(binds),
                network_mode: Some(self.config.network.clone()),
                port_bindings,
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([
                        ("max-size".into(), "10m".into()),
                        ("max-file".into(), "1".into()),
                    ])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn remove(docker: &Docker, id: &str) {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let _ = docker.remove_container(id, Some(opts)).await;
    }

    /// Starts the container `id` and fills in where it is reachable.
    async fn start(
        &self,
        docker: &Docker,
        id: &str,
        memory_mb: u64,
    ) -> Result<DockerContainer, ContainerError> {
        docker
            .start_container(id, None)
            .await
            .map_err(|e| self.error("starting the container", e))?;
        let logs = LogCollector::new();
        let streams_closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(follow_logs(
            docker.clone(),
            id.to_owned(),
            logs.clone(),
            streams_closed.clone(),
        ));
        let info = docker
            .inspect_container(id, None)
            .await
            .map_err(|e| self.error("inspecting the container", e))?;
        let settings = info.network_settings.unwrap_or_default();
        let ip = settings
            .networks
            .as_ref()
            .and_then(|n| n.get(&self.config.network))
            .and_then(|e| e.ip_address.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                ContainerError::Start(format!(
                    "the container has no address on network '{}'",
                    self.config.network
                ))
            })?;
        let addr = if self.config.publish_to_localhost {
            let port = settings
                .ports
                .as_ref()
                .and_then(|p| p.get(&format!("{PROXY_PORT}/tcp")))
                .and_then(|b| b.as_ref())
                .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse().ok()))
                .ok_or_else(|| {
                    ContainerError::Start("port 8080 of the container was not published".into())
                })?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else {
            SocketAddr::new(ip, PROXY_PORT)
        };
        let oom = Arc::new(AtomicBool::new(false));
        self.ooms.lock().insert(id.to_owned(), Arc::downgrade(&oom));
        let alive = Arc::new(AtomicBool::new(true));
        tokio::spawn(watch_exit(
            docker.clone(),
            id.to_owned(),
            alive.clone(),
            oom.clone(),
            Arc::downgrade(&self.ooms),
        ));
        Ok(DockerContainer {
            id: id.to_owned(),
            docker: docker.clone(),
            ip,
            addr,
            memory_mb,
            alive,
            oom,
            oom_reported: AtomicBool::new(false),
            streams_closed,
            logs,
        })
    }

    async fn wait_ready(&self, c: &DockerContainer) -> Result<(), ContainerError> {
        let timeout = Duration::from_millis(self.config.ready_timeout_ms);
        let deadline = tokio::time::Instant::now() + timeout;
        let url = format!("http://{}/health", c.addr);
        let mut delay = Duration::from_millis(1);
        loop {
            // A published port accepts connections before the proxy listens (docker-proxy),
            // so readiness is an HTTP answer, not a TCP connect.
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if !c.is_alive() {
                let logs = c.logs.collect(64 * 1024, Duration::from_millis(200)).await;
                let why = if c.oom_killed() {
                    "the container ran out of memory during start".to_owned()
                } else {
                    "the container exited during start".to_owned()
                };
                c.destroy().await;
                return Err(ContainerError::Start(format!(
                    "{why}: {}",
                    logs.join(" | ")
                )));
            }
            if tokio::time::Instant::now() > deadline {
                let logs = c.logs.collect(64 * 1024, Duration::ZERO).await;
                c.destroy().await;
                return Err(ContainerError::Start(format!(
                    "the action proxy did not answer within {} ms: {}",
                    timeout.as_millis(),
                    logs.join(" | ")
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }
}

#[async_trait]
impl ContainerFactory for DockerFactory {
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        let docker = self.connect().await?;
        let image = self.image_for(&spec)?;
        let opts = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(opts), self.create_body(&spec, &image))
            .await
            .map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if message.contains("image") => ContainerError::Start(format!(
                    "image '{image}' is not present locally; build it with deploy/images/build.sh"
                )),
                e => self.error(&format!("creating container '{}'", spec.name), e),
            })?;
        let container = match self.start(&docker, &created.id, spec.memory_mb).await {
            Ok(c) => c,
            Err(e) => {
                Self::remove(&docker, &created.id).await;
                return Err(e);
            }
        };
        self.wait_ready(&container).await?;
        Ok(Arc::new(container))
    }

    async fn cleanup(&self) -> Result<(), ContainerError> {
        let docker = self.connect().await?;
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{LABEL}={}", self.config.prefix)],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let leftovers = docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| self.error("listing containers", e))?;
        let removals = leftovers
            .iter()
            .filter_map(|c| c.id.as_deref())
            .map(|id| Self::remove(&docker, id));
        futures::future::join_all(removals).await;
        Ok(())
    }
}

/// Follows the daemon's `oom` events for this prefix's containers, flagging them.
async fn watch_ooms(docker: Docker, prefix: String, ooms: Weak<OomFlags>) {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("event".to_owned(), vec!["oom".to_owned()]),
        ("label".to_owned(), vec![format!("{LABEL}={prefix}")]),
    ]);
    loop {
        let opts = EventsOptions {
            filters: Some(filters.clone()),
            ..Default::default()
        };
        let mut events = docker.events(Some(opts));
        while let Some(Ok(event)) = events.next().await {
            let Some(ooms) = ooms.upgrade() else { return };
            let id = event.actor.and_then(|a| a.id).unwrap_or_default();
            let mut map = ooms.lock();
            if let Some(flag) = map.get(&id).and_then(Weak::upgrade) {
                flag.store(true, Ordering::SeqCst);
            }
            map.retain(|_, f| f.strong_count() > 0);
        }
        if ooms.strong_count() == 0 {
            return;
        }
        // The daemon went away; follow again once it is back.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Marks the container dead when it stops (noting `OOMKilled`).
async fn watch_exit(
    docker: Docker,
    id: String,
    alive: Arc<AtomicBool>,
    oom: Arc<AtomicBool>,
    ooms: Weak<OomFlags>,
) {
    let mut wait = docker.wait_container(&id, None);
    while wait.next().await.is_some() {}
    if let Ok(info) = docker.inspect_container(&id, None).await {
        if info.state.and_then(|s| s.oom_killed) == Some(true) {
            oom.store(true, Ordering::SeqCst);
        }
    }
    alive.store(false, Ordering::SeqCst);
    if let Some(ooms) = ooms.upgrade() {
        ooms.lock().remove(&id);
    }
}

/// Feeds the container's stdout/stderr, line by line, into the collector.
async fn follow_logs(docker: Docker, id: String, logs: LogCollector, closed: Arc<AtomicBool>) {
    use bollard::container::LogOutput;
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        tail: "all".into(),
        ..Default::default()
    };
    let mut stream = docker.logs(&id, Some(opts));
    let mut partial: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(Ok(out)) = stream.next().await {
        let (n, bytes) = match out {
            LogOutput::StdOut { message } | LogOutput::Console { message } => (0, message),
            LogOutput::StdErr { message } => (1, message),
            LogOutput::StdIn { .. } => continue,
        };
        let line = &mut partial[n];
        for &b in bytes.iter() {
            if b == b'\n' {
                logs.push(n, &String::from_utf8_lossy(line));
                line.clear();
            } else {
                line.push(b);
                if line.len() >= MAX_LINE {
                    logs.push(n, &String::from_utf8_lossy(line));
                    line.clear();
                }
            }
        }
    }
    for (n, line) in partial.iter().enumerate() {
        if !line.is_empty() {
            logs.push(n, &String::from_utf8_lossy(line));
        }
        logs.close(n);
    }
    closed.store(true, Ordering::SeqCst);
}

/// One action container.
pub struct DockerContainer {
    id: String,
    docker: Docker,
    ip: IpAddr,
    addr: SocketAddr,
    memory_mb: u64,
    alive: Arc<AtomicBool>,
    oom: Arc<AtomicBool>,
    oom_reported: AtomicBool,
    streams_closed: Arc<AtomicBool>,
    logs: LogCollector,
}

impl DockerContainer {
    /// True once the kernel killed a process of this container for exceeding its memory
    /// limit (the action then fails; its logs end with a line saying so).
    pub fn oom_killed(&self) -> bool {
        self.oom.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Container for DockerContainer {
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
        self.docker
            .pause_container(&self.id)
            .await
            .map_err(|e| ContainerError::Gone(format!("{}: {e}", self.id)))
    }
    async fn resume(&self) -> Result<(), ContainerError> {
        self.docker
            .unpause_container(&self.id)
            .await
            .map_err(|e| ContainerError::Gone(format!("{}: {e}", self.id)))
    }
    async fn destroy(&self) {
        DockerFactory::remove(&self.docker, &self.id).await;
        self.alive.store(false, Ordering::SeqCst);
    }
    async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
        let mut lines = self.logs.collect(limit_bytes, wait).await;
        if self.streams_closed.load(Ordering::SeqCst) && self.is_alive() {
            // The container stopped; let the exit watcher read `OOMKilled`.
            for _ in 0..100 {
                if !self.is_alive() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if self.oom_killed() && !self.oom_reported.swap(true, Ordering::SeqCst) {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            lines.push(format!(
                "{ts} stderr: The action exceeded its memory limit of {} MB and was killed (out of memory).",
                self.memory_mb
            ));
        }
        lines
    }
}
