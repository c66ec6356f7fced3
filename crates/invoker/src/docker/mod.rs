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
//!
//! Layout: [`config`] (settings, CPU shares), `network` (the namespace networks), `container`
//! ([`DockerContainer`] and its watchers), this file ([`DockerFactory`]).

use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec, LogCollector};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    HostConfigLogConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, EventsOptions, ListContainersOptions,
    ListNetworksOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use parking_lot::Mutex;
use std::collections::HashMap;
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

pub use whisk_core::kinds::image_allowed;

mod config;
mod container;
mod network;

pub use config::{cpu_shares, DockerConfig};

pub use container::DockerContainer;
use container::{attach_output, follow_logs, watch_exit, watch_ooms, OomFlags};
pub use network::namespace_network;
use network::{api_error, create_network, remove_network_if_unused, Networks};

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
        let output = attach_output(docker, id)
            .await
            .map_err(|e| self.error("attaching to the container", e))?;
        let logs = LogCollector::new();
        let streams_closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(follow_logs(output, logs.clone(), streams_closed.clone()));
        docker
            .start_container(id, None)
            .await
            .map_err(|e| self.error("starting the container", e))?;
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
