//! [`Running`]: the roles of one process after [`crate::serve`] — their addresses and tasks —
//! and the one shutdown sequence every server subcommand ends with: cancel, drain every
//! role's tasks (bounded by [`SHUTDOWN_GRACE`]), kill the action containers, make the store
//! durable. And [`shutdown_on_signal`], the token they all stop on.

use crate::{Role, ServeError};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whisk_controller::Controller;
use whisk_directory::Registry;
use whisk_invoker::{ContainerFactory, Invoker};
use whisk_store::Store;

/// How long the roles' tasks may take to end after shutdown (requests and activations in
/// flight) before the action containers are killed and the store flushed anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// The roles [`crate::serve`] started, running until its shutdown token is cancelled (or a
/// role fails); [`Running::shutdown`] then stops them. Dropped without it, the roles' tasks go
/// on until the token is cancelled.
pub struct Running {
    /// Where the controller's REST API listens.
    pub api_addr: Option<SocketAddr>,
    /// Where the gateway serves HTTP, when it runs on this runtime (in front of a local
    /// controller); alone, the gateway's own settings say.
    pub http_addr: Option<SocketAddr>,
    /// Where the gateway serves HTTPS (`--tls` in front of a local controller).
    pub https_addr: Option<SocketAddr>,
    /// Where the directory serves gRPC.
    pub directory_addr: Option<SocketAddr>,
    /// Where `/metrics` is served apart from the API (`metrics_listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// The key files this start wrote (a new platform's generated keys), for the operator.
    pub new_key_files: Vec<PathBuf>,
    /// The controller.
    pub controller: Option<Controller>,
    /// The invoker.
    pub invoker: Option<Arc<Invoker>>,
    /// The directory's registry.
    pub directory: Option<Registry>,
    /// The feed provider.
    pub feeds: Option<whisk_feeds::Provider>,
    /// The store of the controller and invoker.
    pub store: Option<Arc<dyn Store>>,
    pub(crate) factory: Option<Arc<dyn ContainerFactory>>,
    pub(crate) shutdown: CancellationToken,
    /// Servers (API, admin socket, gateway, directory), each ended by `shutdown`.
    servers: TaskTracker,
    /// The first role that stopped with an error.
    failure: Arc<Mutex<Option<ServeError>>>,
}

impl Running {
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        let servers = TaskTracker::new();
        servers.close();
        Self {
            api_addr: None,
            http_addr: None,
            https_addr: None,
            directory_addr: None,
            metrics_addr: None,
            new_key_files: vec![],
            controller: None,
            invoker: None,
            directory: None,
            feeds: None,
            store: None,
            factory: None,
            shutdown,
            servers,
            failure: Arc::default(),
        }
    }

    /// Runs `role`'s server until shutdown; its failure stops every role (and is the error
    /// [`Running::shutdown`] returns).
    pub(crate) fn spawn_server<E: std::fmt::Display>(
        &self,
        role: Role,
        server: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        let failure = self.failure.clone();
        let shutdown = self.shutdown.clone();
        self.servers.spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(%role, error = %e, "a role stopped; stopping the others");
                let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(ServeError::Stopped {
                    role,
                    message: e.to_string(),
                });
                shutdown.cancel();
            }
        });
    }

    /// Runs a helper task (its failure is only logged) drained at shutdown like the servers.
    pub(crate) fn spawn_task(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.servers.spawn(task);
    }

    /// Resolves once the roles are to stop: the shutdown token was cancelled, or a role
    /// failed.
    pub async fn stopped(&self) {
        self.shutdown.cancelled().await
    }

    /// Stops every role: cancels the shutdown token, waits up to [`SHUTDOWN_GRACE`] for the
    /// servers, the controller's and the invoker's tasks to end (requests and activations in
    /// flight finish), kills every action container, then makes the store durable. The error
    /// is the first role that failed while running, else a failed flush.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        let controller = async {
            if let Some(c) = &self.controller {
                c.join().await
            }
        };
        let invoker = async {
            if let Some(i) = &self.invoker {
                i.join().await
            }
        };
        let feeds = async {
            if let Some(f) = &self.feeds {
                f.join().await
            }
        };
        let drain = async { tokio::join!(self.servers.wait(), controller, invoker, feeds) };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "the roles did not stop in time; killing the action containers anyway"
            );
        }
        if let Some(factory) = &self.factory {
            if let Err(e) = factory.cleanup().await {
                tracing::warn!(error = %e, "removing action containers failed");
            }
        }
        let flushed = match &self.store {
            Some(store) => store.flush().await.map_err(ServeError::Flush),
            None => Ok(()),
        };
        let failed = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match (failed, flushed) {
            (Some(failed), Err(e)) => {
                tracing::warn!(error = %e, "flushing the store failed");
                Err(failed)
            }
            (Some(failed), Ok(())) => Err(failed),
            (None, flushed) => flushed,
        }
    }
}

/// A token cancelled on the first SIGINT or SIGTERM: what every server subcommand stops on.
pub fn shutdown_on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        cancel.cancel();
    });
    Ok(token)
}
