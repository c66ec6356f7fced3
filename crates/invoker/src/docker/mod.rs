//! The Docker runtime: every container is a Docker container of a runtime image (by default
//! each runtime family's image of `whisk_core::kinds::KINDS` — `whisk/python3action`,
//! `whisk/nodejsaction`, `whisk/nativeaction` — built locally by
//! `deploy/images/build-actions.sh`), running the action proxy on port 8080. Talks to the
//! Engine API through bollard over the unix socket; never pulls images.
//!
//! - Networks: each namespace gets its own bridge network (`<network>_<namespace>_<hash>`,
//!   labelled `whisk_network=<network>`), so containers of different namespaces cannot reach
//!   each other while instances of one namespace reach each other by IP (peer maps). Stems
//!   (prewarmed, no namespace yet) wait on `network` and move to their namespace's network
//!   in [`Container::assign`], before any code reaches them. A namespace network is removed
//!   when this factory's last container on it has been gone for `network_idle_ms`, and by
//!   [`DockerFactory::cleanup`] when unused (Docker refuses to remove a network another
//!   invoker still uses).
//! - Reachability: the invoker calls `/init` and `/run` through a port published on
//!   127.0.0.1 (default) or directly on the container's network IP, when the invoker runs in
//!   a container itself and connects that container to each namespace network it uses.
//! - Hardening: a non-root user (`user`), every capability dropped, `no-new-privileges`, a
//!   read-only root with tmpfs `/tmp` and `/action` (the proxy's workdir), memory without
//!   extra swap, CPU shares from memory as OpenWhisk computes them ([`cpu_shares`]), a pids
//!   limit and a `nofile` ulimit. Blackbox images must match `allowed_images` (the controller
//!   checks the same list at create time; this is defence in depth).
//! - Logs: the container's stdout/stderr are followed into a [`LogCollector`], as in the
//!   process runtime. An out-of-memory kill (a Docker `oom` event, or `OOMKilled` on exit) is
//!   reported by [`Container::oom_killed`] and as a line appended to the next `logs()`.
//! - Every container carries the label `whisk_invoker=<prefix>`; [`DockerFactory::cleanup`]
//!   removes those left by a previous run.

use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec, LogCollector};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    HostConfigLogConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, ListNetworksOptions, LogsOptions,
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
/// Label of every namespace network; its value is the configured `network` (shared by all
/// invokers on one daemon with that setting).
pub const NETWORK_LABEL: &str = "whisk_network";
/// Label of a namespace network naming its namespace.
pub const NAMESPACE_LABEL: &str = "whisk_namespace";
/// Where the peer folder appears inside a container (the seed's path).
pub const PEERS_MOUNT: &str = "/addrMap";
/// Longest a line of output may be before it is split.
const MAX_LINE: usize = 64 * 1024;
/// The invoker memory OpenWhisk's CPU shares are computed against when the factory is not
/// told the real one ([`DockerFactory::with_user_memory_mb`]).
const DEFAULT_USER_MEMORY_MB: u64 = 16384;

/// Settings of the Docker runtime (all keys optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Engine socket [default: `DOCKER_HOST` if it is a `unix://` address, else
    /// `/var/run/docker.sock`].
    pub socket: String,
    /// Image per runtime family, used when an action names no image [default: each
    /// family's image in `whisk_core::kinds::KINDS`: `python` → `whisk/python3action`,
    /// `nodejs` → `whisk/nodejsaction`, `native` → `whisk/nativeaction`].
    pub images: BTreeMap<String, String>,
    /// Images a blackbox action may name; `*` matches any run of characters
    /// [default: `["whisk/*"]`, the project's own images]. Any other image is refused.
    pub allowed_images: Vec<String>,
    /// The user-defined bridge network of stems (and of every container when
    /// `network_per_namespace` is false), created if missing; also the prefix of the
    /// namespace networks [default: `whisk_actions`].
    pub network: String,
    /// Subnet of that network when this runtime creates it, e.g. `172.31.0.0/16`
    /// [default: none, Docker picks one]. Namespace networks get theirs from Docker's pools.
    pub subnet: Option<String>,
    /// One network per namespace, so that namespaces cannot reach each other's containers
    /// [default: true].
    pub network_per_namespace: bool,
    /// How long a namespace network stays after this invoker's last container on it is gone,
    /// ms, for reuse [default: 60000].
    pub network_idle_ms: u64,
    /// Publish each container's port 8080 on 127.0.0.1:<random> and reach the proxy there;
    /// false: reach it at `<container IP>:8080` — the invoker runs in a container on
    /// `network` and connects that container to each namespace network [default: true].
    pub publish_to_localhost: bool,
    /// The invoker's own container (name or id) when `publish_to_localhost` is false
    /// [default: this host name, which Docker sets to the container id].
    pub self_container: Option<String>,
    /// `uid:gid` the action runs as, whatever the image says; empty: the image's `USER`
    /// [default: `1000:1000`, the images' `action` user].
    pub user: String,
    /// Writable folders, each a tmpfs as large as the action's memory (which its pages count
    /// against); everything else is read-only [default: `["/tmp", "/action"]`].
    pub tmpfs: Vec<String>,
    /// Most processes per container [default: 1024].
    pub pids_limit: i64,
    /// Most open files per process (`nofile`, soft and hard) [default: 1024].
    pub nofile: i64,
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
            images: whisk_core::kinds::images()
                .map(|(family, image)| (family.to_owned(), image.to_owned()))
                .collect(),
            allowed_images: vec!["whisk/*".into()],
            network: "whisk_actions".into(),
            subnet: None,
            network_per_namespace: true,
            network_idle_ms: 60_000,
            publish_to_localhost: true,
            self_container: None,
            user: "1000:1000".into(),
            tmpfs: vec!["/tmp".into(), "/action".into()],
            pids_limit: 1024,
            nofile: 1024,
            prefix: "whisk".into(),
            ready_timeout_ms: 10_000,
        }
    }
}

/// OpenWhisk's CPU shares for a container of `memory_mb` on an invoker with `user_memory_mb`
/// for actions (`ContainerPoolConfig.cpuShare`): 1024 split by how many such containers fit,
/// in whole numbers — `1024 / (user_memory / memory)` — and at least 2, Docker's minimum.
pub fn cpu_shares(memory_mb: u64, user_memory_mb: u64) -> i64 {
    if memory_mb == 0 {
        return 2;
    }
    let fit = (user_memory_mb / memory_mb).max(1);
    ((1024.0 / fit as f64) as i64).max(2)
}

pub use whisk_core::kinds::image_allowed;

/// The network of `namespace`: `<base>_<namespace, made safe>_<hash of namespace>` (the hash
/// keeps two namespaces that differ only in unsafe characters apart).
pub fn namespace_network(base: &str, namespace: &str) -> String {
    let safe: String = namespace
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    // FNV-1a: stable across invokers and releases.
    let hash = namespace.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{base}_{safe}_{:08x}", hash as u32)
}

/// Per-container state the factory's event watcher updates.
type OomFlags = Mutex<HashMap<String, Weak<AtomicBool>>>;

/// Use of one namespace network by this factory's containers.
#[derive(Default)]
struct NetUse {
    /// Containers of this factory on it.
    users: usize,
    /// Bumped on every use, so a removal timer knows whether it was reused meanwhile.
    epoch: u64,
    /// The network exists (and the invoker's container is on it when it must be).
    ready: bool,
}

/// The namespace networks this factory uses, shared with its containers (which release
/// their network when destroyed).
struct Networks {
    docker: Docker,
    config: DockerConfig,
    /// The invoker's own container, when it must join each namespace network.
    own: Option<String>,
    uses: Mutex<HashMap<String, NetUse>>,
    /// Serializes the daemon calls (create, connect, remove) of one network.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Networks {
    fn lock_of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Takes a use of `namespace`'s network, creating it (and joining the invoker's own
    /// container to it) when needed. Returns its name.
    async fn acquire(&self, namespace: &str) -> Result<String, ContainerError> {
        let name = namespace_network(&self.config.network, namespace);
        {
            let mut uses = self.uses.lock();
            let u = uses.entry(name.clone()).or_default();
            u.users += 1;
            u.epoch += 1;
            if u.ready {
                return Ok(name);
            }
        }
        let lock = self.lock_of(&name);
        let _guard = lock.lock().await;
        if self.uses.lock().get(&name).is_some_and(|u| u.ready) {
            return Ok(name);
        }
        match self.ensure(&name, namespace).await {
            Ok(()) => {
                if let Some(u) = self.uses.lock().get_mut(&name) {
                    u.ready = true;
                }
                Ok(name)
            }
            Err(e) => {
                if let Some(u) = self.uses.lock().get_mut(&name) {
                    u.users = u.users.saturating_sub(1);
                }
                Err(e)
            }
        }
    }

    /// Makes sure the network exists and the invoker's container is on it.
    async fn ensure(&self, name: &str, namespace: &str) -> Result<(), ContainerError> {
        let labels = HashMap::from([
            (NETWORK_LABEL.to_owned(), self.config.network.clone()),
            (NAMESPACE_LABEL.to_owned(), namespace.to_owned()),
        ]);
        create_network(&self.docker, name, None, labels).await?;
        if let Some(own) = &self.own {
            connect_own(&self.docker, name, own).await?;
        }
        Ok(())
    }

    /// Marks `name` as needing a fresh check (it was removed behind our back).
    fn forget(&self, name: &str) {
        if let Some(u) = self.uses.lock().get_mut(name) {
            u.ready = false;
        }
    }

    /// Gives back a use; the last one schedules the network's removal after the idle time.
    fn release(self: &Arc<Self>, name: &str) {
        let epoch = {
            let mut uses = self.uses.lock();
            let Some(u) = uses.get_mut(name) else { return };
            u.users = u.users.saturating_sub(1);
            if u.users > 0 {
                return;
            }
            u.epoch
        };
        let nets = Arc::downgrade(self);
        let name = name.to_owned();
        let idle = Duration::from_millis(self.config.network_idle_ms);
        tokio::spawn(async move {
            tokio::time::sleep(idle).await;
            let Some(nets) = nets.upgrade() else { return };
            let lock = nets.lock_of(&name);
            let _guard = lock.lock().await;
            {
                let mut uses = nets.uses.lock();
                match uses.get(&name) {
                    Some(u) if u.users == 0 && u.epoch == epoch => {
                        uses.remove(&name);
                    }
                    _ => return,
                }
            }
            remove_network_if_unused(&nets.docker, &name, nets.own.as_deref()).await;
        });
    }
}

/// Creates the bridge network `name` unless it exists (another invoker may create it at the
/// same moment: the daemon refuses a second network of one name).
async fn create_network(
    docker: &Docker,
    name: &str,
    subnet: Option<&str>,
    labels: HashMap<String, String>,
) -> Result<(), ContainerError> {
    if docker.inspect_network(name, None).await.is_ok() {
        return Ok(());
    }
    let ipam = subnet.map(|subnet| Ipam {
        config: Some(vec![IpamConfig {
            subnet: Some(subnet.to_owned()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let request = NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        ipam,
        labels: Some(labels),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(_) => Ok(()),
        Err(_) if docker.inspect_network(name, None).await.is_ok() => Ok(()),
        Err(e) => Err(api_error(&format!("creating network '{name}'"), e)),
    }
}

/// Connects the invoker's own container to `network` (nothing if it already is).
async fn connect_own(docker: &Docker, network: &str, own: &str) -> Result<(), ContainerError> {
    let request = NetworkConnectRequest {
        container: own.to_owned(),
        endpoint_config: Some(EndpointSettings::default()),
    };
    match docker.connect_network(network, request).await {
        Ok(()) => Ok(()),
        Err(DockerError::DockerResponseServerError { message, .. })
            if message.contains("already exists") =>
        {
            Ok(())
        }
        Err(e) => Err(api_error(
            &format!("connecting the invoker's container '{own}' to network '{network}'"),
            e,
        )),
    }
}

/// Leaves `network` (the invoker's own container) and removes it when nothing else is on it.
async fn remove_network_if_unused(docker: &Docker, network: &str, own: Option<&str>) {
    if let Some(own) = own {
        let request = NetworkDisconnectRequest {
            container: own.to_owned(),
            force: Some(true),
        };
        let _ = docker.disconnect_network(network, request).await;
    }
    // The daemon refuses while any container (another invoker's) is still on it.
    match docker.remove_network(network).await {
        Ok(()) => tracing::debug!(network, "removed an unused namespace network"),
        Err(e) => tracing::debug!(network, error = %e, "namespace network kept"),
    }
}

/// Maps an API error: an answer from the daemon is a start failure, anything else means the
/// daemon is unreachable.
fn api_error(what: &str, e: DockerError) -> ContainerError {
    match e {
        DockerError::DockerResponseServerError { message, .. } => {
            ContainerError::Start(format!("{what}: {message}"))
        }
        e => ContainerError::Unavailable(format!("{what}: {e}")),
    }
}

/// Starts action containers through the Docker Engine API.
pub struct DockerFactory {
    config: DockerConfig,
    user_memory_mb: u64,
    /// The negotiated client and the networks, once the daemon answered.
    ready: OnceCell<(Docker, Arc<Networks>)>,
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
            user_memory_mb: DEFAULT_USER_MEMORY_MB,
            ready: OnceCell::new(),
            ooms: Arc::default(),
            http,
        }
    }

    /// The invoker's memory for actions, MB, which CPU shares are computed against
    /// ([`cpu_shares`]; default 16384, the invoker's default).
    pub fn with_user_memory_mb(mut self, user_memory_mb: u64) -> Self {
        self.user_memory_mb = user_memory_mb.max(1);
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// Reaches the daemon (negotiating the API version), makes sure the stems' network
    /// exists (with the invoker's own container on it when the proxy is reached by IP) and
    /// starts watching out-of-memory events. Idempotent; fails with
    /// [`ContainerError::Unavailable`] naming the socket while the daemon is down.
    pub async fn connect(&self) -> Result<Docker, ContainerError> {
        self.connected().await.map(|(d, _)| d.clone())
    }

    async fn connected(&self) -> Result<&(Docker, Arc<Networks>), ContainerError> {
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
                let labels = HashMap::from([(LABEL.into(), self.config.prefix.clone())]);
                create_network(
                    &docker,
                    &self.config.network,
                    self.config.subnet.as_deref(),
                    labels,
                )
                .await
                .map_err(|e| match e {
                    ContainerError::Unavailable(m) => {
                        ContainerError::Unavailable(format!("{m} ({})", self.config.socket))
                    }
                    e => e,
                })?;
                let own = self.own_container(&docker).await?;
                tokio::spawn(watch_ooms(
                    docker.clone(),
                    self.config.prefix.clone(),
                    Arc::downgrade(&self.ooms),
                ));
                let networks = Arc::new(Networks {
                    docker: docker.clone(),
                    config: self.config.clone(),
                    own,
                    uses: Mutex::default(),
                    locks: Mutex::default(),
                });
                Ok((docker, networks))
            })
            .await
    }

    /// The invoker's own container, which must join the namespace networks to reach the
    /// proxies by IP (`publish_to_localhost = false` with a network per namespace).
    async fn own_container(&self, docker: &Docker) -> Result<Option<String>, ContainerError> {
        if self.config.publish_to_localhost || !self.config.network_per_namespace {
            return Ok(None);
        }
        let name = match &self.config.self_container {
            Some(name) => name.clone(),
            None => std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
        };
        match docker.inspect_container(&name, None).await {
            Ok(info) => Ok(info.id.or(Some(name))),
            Err(e) => Err(ContainerError::Unavailable(format!(
                "docker.publish_to_localhost = false with a network per namespace needs the \
                 invoker to run in a container of this daemon (set docker.self_container); \
                 '{name}' is not one: {e}"
            ))),
        }
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
            DockerError::DockerResponseServerError { .. } => api_error(what, e),
            e => self.unavailable(e),
        }
    }

    fn image_for(&self, spec: &ContainerSpec) -> Result<String, ContainerError> {
        if let Some(image) = &spec.image {
            if !image_allowed(image, &self.config.allowed_images) {
                return Err(ContainerError::Refused(format!(
                    "The image '{image}' is not allowed for blackbox actions on this platform \
                     (allowed: {}).",
                    self.config.allowed_images.join(", ")
                )));
            }
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

    /// The writable folders: tmpfs as large as the memory limit, owned by the action's user.
    fn tmpfs(&self, memory_mb: u64) -> HashMap<String, String> {
        let owner = match self.config.user.split_once(':') {
            Some((u, g)) if u.parse::<u32>().is_ok() && g.parse::<u32>().is_ok() => {
                format!(",uid={u},gid={g}")
            }
            None if self.config.user.parse::<u32>().is_ok() => {
                format!(",uid={0},gid={0}", self.config.user)
            }
            _ => String::new(),
        };
        let size = if memory_mb > 0 {
            format!(",size={memory_mb}m")
        } else {
            String::new()
        };
        self.config
            .tmpfs
            .iter()
            .map(|dir| {
                let opts = if dir == "/tmp" {
                    format!("rw,exec,nosuid,nodev,mode=1777{size}")
                } else {
                    format!("rw,exec,nosuid,nodev,mode=0700{owner}{size}")
                };
                (dir.clone(), opts)
            })
            .collect()
    }

    fn create_body(&self, spec: &ContainerSpec, image: &str, network: &str) -> ContainerCreateBody {
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
            user: (!self.config.user.is_empty()).then(|| self.config.user.clone()),
            labels: Some(HashMap::from([(LABEL.into(), self.config.prefix.clone())])),
            exposed_ports: Some(vec![port]),
            host_config: Some(HostConfig {
                memory: (memory > 0).then_some(memory),
                memory_swap: (memory > 0).then_some(memory),
                cpu_shares: Some(cpu_shares(spec.memory_mb, self.user_memory_mb)),
                pids_limit: Some(self.config.pids_limit),
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(self.config.nofile),
                    hard: Some(self.config.nofile),
                }]),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges".into()]),
                privileged: Some(false),
                readonly_rootfs: Some(true),
                tmpfs: Some(self.tmpfs(spec.memory_mb)),
                binds: (!binds.is_empty()).then_some(binds),
                network_mode: Some(network.to_owned()),
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
        networks: &Arc<Networks>,
        id: &str,
        network: &str,
        namespace_network: Option<String>,
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
        let (ip, addr) = reachable(&info, network, self.config.publish_to_localhost)?;
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
            where_: Mutex::new((ip, addr)),
            network: Mutex::new(namespace_network),
            networks: networks.clone(),
            stem_network: self.config.network.clone(),
            publish: self.config.publish_to_localhost,
            http: self.http.clone(),
            ready_timeout: Duration::from_millis(self.config.ready_timeout_ms),
            memory_mb,
            alive,
            oom,
            oom_reported: AtomicBool::new(false),
            streams_closed,
            removed: AtomicBool::new(false),
            logs,
        })
    }

    async fn wait_ready(&self, c: &DockerContainer) -> Result<(), ContainerError> {
        if let Err(e) = c.wait_ready().await {
            c.destroy().await;
            return Err(e);
        }
        Ok(())
    }

    /// Creates and starts a container on `namespace`'s network (or, without one, on the
    /// stems' network). A namespace network that another invoker removed between our check
    /// and the container's start is made again, once.
    async fn create_on(
        &self,
        spec: ContainerSpec,
        namespace: Option<&str>,
    ) -> Result<Arc<dyn Container>, ContainerError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_create_on(&spec, namespace).await {
                Err((e, Some(network))) if attempt == 1 && network_gone(&e) => {
                    tracing::debug!(%network, error = %e, "namespace network vanished; again");
                    let (_, networks) = self.connected().await?;
                    networks.forget(&network);
                }
                Err((e, _)) => return Err(e),
                Ok(c) => return Ok(c),
            }
        }
    }

    async fn try_create_on(
        &self,
        spec: &ContainerSpec,
        namespace: Option<&str>,
    ) -> Result<Arc<dyn Container>, (ContainerError, Option<String>)> {
        let (docker, networks) = self.connected().await.map_err(|e| (e, None))?;
        let image = self.image_for(spec).map_err(|e| (e, None))?;
        let ns_network = match namespace {
            Some(ns) if self.config.network_per_namespace => {
                Some(networks.acquire(ns).await.map_err(|e| (e, None))?)
            }
            _ => None,
        };
        let fail = |e: ContainerError| {
            if let Some(n) = &ns_network {
                networks.release(n);
            }
            (e, ns_network.clone())
        };
        let network = ns_network
            .clone()
            .unwrap_or_else(|| self.config.network.clone());
        let opts = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(opts), self.create_body(spec, &image, &network))
            .await
            .map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if message.contains("image") => ContainerError::Start(format!(
                    "image '{image}' is not present locally; deploy/images/build-actions.sh \
                     builds every runtime's image (deploy/images/build.sh the Python one)"
                )),
                e => self.error(&format!("creating container '{}'", spec.name), e),
            })
            .map_err(fail)?;
        let started = self
            .start(
                docker,
                networks,
                &created.id,
                &network,
                ns_network.clone(),
                spec.memory_mb,
            )
            .await;
        let container = match started {
            Ok(c) => c,
            Err(e) => {
                Self::remove(docker, &created.id).await;
                return Err(fail(e));
            }
        };
        // From here on the container holds the network's use (released by destroy).
        if let Err(e) = self.wait_ready(&container).await {
            return Err((e, None));
        }
        Ok(Arc::new(container))
    }
}

/// True when the daemon said a network does not exist.
fn network_gone(e: &ContainerError) -> bool {
    let m = e.to_string();
    m.contains("network") && m.contains("not found")
}

/// The container's address on `network` and where the invoker reaches its proxy.
fn reachable(
    info: &ContainerInspectResponse,
    network: &str,
    publish: bool,
) -> Result<(IpAddr, SocketAddr), ContainerError> {
    let settings = info.network_settings.clone().unwrap_or_default();
    let ip = settings
        .networks
        .as_ref()
        .and_then(|n| n.get(network))
        .and_then(|e| e.ip_address.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .ok_or_else(|| {
            ContainerError::Start(format!(
                "the container has no address on network '{network}'"
            ))
        })?;
    let addr = if publish {
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
    Ok((ip, addr))
}

#[async_trait]
impl ContainerFactory for DockerFactory {
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError> {
        self.create_on(spec, None).await
    }

    async fn create_in(
        &self,
        spec: ContainerSpec,
        namespace: &str,
    ) -> Result<Arc<dyn Container>, ContainerError> {
        self.create_on(spec, Some(namespace)).await
    }

    async fn cleanup(&self) -> Result<(), ContainerError> {
        let (docker, networks) = self.connected().await?;
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
            .map(|id| Self::remove(docker, id));
        futures::future::join_all(removals).await;
        // Namespace networks nobody uses any more: this factory's containers are all gone
        // now (cleanup runs at start and at shutdown), so ours go too; another invoker's
        // stay, as the daemon refuses to remove a network with containers on it.
        networks.uses.lock().clear();
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!("{NETWORK_LABEL}={}", self.config.network)],
        )]);
        let opts = ListNetworksOptions {
            filters: Some(filters),
        };
        let nets = docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| self.error("listing networks", e))?;
        let removals = nets
            .iter()
            .filter_map(|n| n.name.as_deref())
            .map(|name| remove_network_if_unused(docker, name, networks.own.as_deref()));
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
    /// Its address on its network and where the invoker reaches the proxy; both change when a
    /// stem moves to its namespace's network.
    where_: Mutex<(IpAddr, SocketAddr)>,
    /// The namespace network it holds a use of (none while a stem).
    network: Mutex<Option<String>>,
    networks: Arc<Networks>,
    stem_network: String,
    publish: bool,
    http: reqwest::Client,
    ready_timeout: Duration,
    memory_mb: u64,
    alive: Arc<AtomicBool>,
    oom: Arc<AtomicBool>,
    oom_reported: AtomicBool,
    streams_closed: Arc<AtomicBool>,
    removed: AtomicBool,
    logs: LogCollector,
}

impl DockerContainer {
    /// True once the daemon said the kernel killed a process of this container for memory
    /// (its `oom` event, or `OOMKilled` when it stopped).
    fn oom_seen(&self) -> bool {
        self.oom.load(Ordering::SeqCst)
    }

    /// When the container's streams ended (it stopped), gives the exit watcher a moment to
    /// read `OOMKilled`.
    async fn settle_exit(&self) {
        if self.streams_closed.load(Ordering::SeqCst) && self.is_alive() {
            for _ in 0..100 {
                if !self.is_alive() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// The namespace network it is on, if any.
    pub fn network(&self) -> Option<String> {
        self.network.lock().clone()
    }

    /// Waits until the proxy answers `/health` (a published port accepts connections before
    /// the proxy listens, so readiness is an HTTP answer, not a TCP connect).
    async fn wait_ready(&self) -> Result<(), ContainerError> {
        let deadline = tokio::time::Instant::now() + self.ready_timeout;
        let url = format!("http://{}/health", self.addr());
        let mut delay = Duration::from_millis(1);
        loop {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if !self.is_alive() {
                let logs = self
                    .logs
                    .collect(64 * 1024, Duration::from_millis(200))
                    .await;
                let why = if self.oom_seen() {
                    "the container ran out of memory during start"
                } else {
                    "the container exited during start"
                };
                return Err(ContainerError::Start(format!(
                    "{why}: {}",
                    logs.join(" | ")
                )));
            }
            if tokio::time::Instant::now() > deadline {
                let logs = self.logs.collect(64 * 1024, Duration::ZERO).await;
                return Err(ContainerError::Start(format!(
                    "the action proxy did not answer within {} ms: {}",
                    self.ready_timeout.as_millis(),
                    logs.join(" | ")
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }
}

#[async_trait]
impl Container for DockerContainer {
    fn id(&self) -> &str {
        &self.id
    }
    fn ip(&self) -> IpAddr {
        self.where_.lock().0
    }
    fn addr(&self) -> SocketAddr {
        self.where_.lock().1
    }
    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
    /// Moves a stem from the stems' network to `namespace`'s: connected to the new one
    /// before it leaves the old one, and answering on its new address before its `/init`.
    async fn assign(&self, namespace: &str) -> Result<(), ContainerError> {
        if !self.networks.config.network_per_namespace || self.network.lock().is_some() {
            return Ok(());
        }
        let name = self.networks.acquire(namespace).await?;
        *self.network.lock() = Some(name.clone());
        let docker = &self.docker;
        let connect = NetworkConnectRequest {
            container: self.id.clone(),
            endpoint_config: Some(EndpointSettings::default()),
        };
        docker
            .connect_network(&name, connect)
            .await
            .map_err(|e| api_error(&format!("connecting the container to network '{name}'"), e))?;
        let disconnect = NetworkDisconnectRequest {
            container: self.id.clone(),
            force: Some(true),
        };
        docker
            .disconnect_network(&self.stem_network, disconnect)
            .await
            .map_err(|e| api_error("leaving the stems' network", e))?;
        let info = docker
            .inspect_container(&self.id, None)
            .await
            .map_err(|e| api_error("inspecting the container", e))?;
        *self.where_.lock() = reachable(&info, &name, self.publish)?;
        self.wait_ready().await
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
        if !self.removed.swap(true, Ordering::SeqCst) {
            if let Some(name) = self.network.lock().take() {
                self.networks.release(&name);
            }
        }
    }
    async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
        let mut lines = self.logs.collect(limit_bytes, wait).await;
        self.settle_exit().await;
        if self.oom_seen() && !self.oom_reported.swap(true, Ordering::SeqCst) {
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            lines.push(format!(
                "{ts} stderr: The action exceeded its memory limit of {} MB and was killed (out of memory).",
                self.memory_mb
            ));
        }
        lines
    }
    async fn oom_killed(&self) -> bool {
        self.settle_exit().await;
        if self.oom_seen() {
            return true;
        }
        // The daemon's own record, should its event not have reached the watcher yet.
        let killed = match self.docker.inspect_container(&self.id, None).await {
            Ok(info) => info.state.and_then(|s| s.oom_killed) == Some(true),
            Err(_) => false,
        };
        if killed {
            self.oom.store(true, Ordering::SeqCst);
        }
        killed
    }
}
