//! The Docker runtime's settings ([`DockerConfig`]) and OpenWhisk's CPU shares.

use serde::Deserialize;
use std::collections::BTreeMap;

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
