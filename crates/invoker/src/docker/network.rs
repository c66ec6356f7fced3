//! The namespace networks of the Docker runtime: one bridge network per namespace, created on
//! first use, shared by the containers of one factory, removed when unused for a while.

use super::*;

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

/// Use of one namespace network by this factory's containers.
#[derive(Default)]
pub(super) struct NetUse {
    /// Containers of this factory on it.
    pub(super) users: usize,
    /// Bumped on every use, so a removal timer knows whether it was reused meanwhile.
    pub(super) epoch: u64,
    /// The network exists (and the invoker's container is on it when it must be).
    pub(super) ready: bool,
}

/// The namespace networks this factory uses, shared with its containers (which release
/// their network when destroyed).
pub(super) struct Networks {
    pub(super) docker: Docker,
    pub(super) config: DockerConfig,
    /// The invoker's own container, when it must join each namespace network.
    pub(super) own: Option<String>,
    pub(super) uses: Mutex<HashMap<String, NetUse>>,
    /// Serializes the daemon calls (create, connect, remove) of one network.
    pub(super) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Networks {
    pub(super) fn lock_of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Takes a use of `namespace`'s network, creating it (and joining the invoker's own
    /// container to it) when needed. Returns its name.
    pub(super) async fn acquire(&self, namespace: &str) -> Result<String, ContainerError> {
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
    pub(super) async fn ensure(&self, name: &str, namespace: &str) -> Result<(), ContainerError> {
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
    pub(super) fn forget(&self, name: &str) {
        if let Some(u) = self.uses.lock().get_mut(name) {
            u.ready = false;
        }
    }

    /// Gives back a use; the last one schedules the network's removal after the idle time.
    pub(super) fn release(self: &Arc<Self>, name: &str) {
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
pub(super) async fn create_network(
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
pub(super) async fn connect_own(
    docker: &Docker,
    network: &str,
    own: &str,
) -> Result<(), ContainerError> {
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
pub(super) async fn remove_network_if_unused(docker: &Docker, network: &str, own: Option<&str>) {
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
pub(super) fn api_error(what: &str, e: DockerError) -> ContainerError {
    match e {
        DockerError::DockerResponseServerError { message, .. } => {
            ContainerError::Start(format!("{what}: {message}"))
        }
        e => ContainerError::Unavailable(format!("{what}: {e}")),
    }
}
