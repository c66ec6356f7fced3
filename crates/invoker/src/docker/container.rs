//! One Docker action container ([`DockerContainer`]): its address, network, log stream, exit
//! and out-of-memory watchers, and the [`Container`] operations on it.

use super::*;

/// Per-container state the factory's event watcher updates.
pub(super) type OomFlags = Mutex<HashMap<String, Weak<AtomicBool>>>;

/// Follows the daemon's `oom` events for this prefix's containers, flagging them.
pub(super) async fn watch_ooms(docker: Docker, prefix: String, ooms: Weak<OomFlags>) {
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
pub(super) async fn watch_exit(
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

/// The container's stdout/stderr as it is written, attached before the container starts.
///
/// Attaching reads the process's own streams, not the log driver's file: a container that
/// prints more than the file's `max-size` would rotate that file under a `logs` follower
/// ("Error grabbing logs: no such file or directory") and end its stream mid-activation.
pub(super) async fn attach_output(
    docker: &Docker,
    id: &str,
) -> Result<LogStream, bollard::errors::Error> {
    let opts = AttachContainerOptions {
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        ..Default::default()
    };
    Ok(docker.attach_container(id, Some(opts)).await?.output)
}

/// What [`attach_output`] yields.
pub(super) type LogStream = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<bollard::container::LogOutput, bollard::errors::Error>>
            + Send,
    >,
>;

/// Feeds the container's stdout/stderr, line by line, into the collector.
pub(super) async fn follow_logs(
    mut stream: LogStream,
    logs: LogCollector,
    closed: Arc<AtomicBool>,
) {
    use bollard::container::LogOutput;
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
    pub(super) id: String,
    pub(super) docker: Docker,
    /// Its address on its network and where the invoker reaches the proxy; both change when a
    /// stem moves to its namespace's network.
    pub(super) where_: Mutex<(IpAddr, SocketAddr)>,
    /// The namespace network it holds a use of (none while a stem).
    pub(super) network: Mutex<Option<String>>,
    pub(super) networks: Arc<Networks>,
    pub(super) stem_network: String,
    pub(super) publish: bool,
    pub(super) http: reqwest::Client,
    pub(super) ready_timeout: Duration,
    pub(super) memory_mb: u64,
    pub(super) alive: Arc<AtomicBool>,
    pub(super) oom: Arc<AtomicBool>,
    pub(super) oom_reported: AtomicBool,
    pub(super) streams_closed: Arc<AtomicBool>,
    pub(super) removed: AtomicBool,
    pub(super) logs: LogCollector,
}

impl DockerContainer {
    /// True once the daemon said the kernel killed a process of this container for memory
    /// (its `oom` event, or `OOMKilled` when it stopped).
    pub(super) fn oom_seen(&self) -> bool {
        self.oom.load(Ordering::SeqCst)
    }

    /// When the container's streams ended (it stopped), gives the exit watcher a moment to
    /// read `OOMKilled`.
    pub(super) async fn settle_exit(&self) {
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
    pub(super) async fn wait_ready(&self) -> Result<(), ContainerError> {
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
            lines.push(crate::container::out_of_memory_line(self.memory_mb));
        }
        lines
    }
    fn log_collector(&self) -> Option<LogCollector> {
        Some(self.logs.clone())
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
