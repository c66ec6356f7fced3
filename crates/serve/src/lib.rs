//! `whisk standalone`: every role (controller, invoker) in one process, wired over the
//! embedded backends — a redb file for the store, in-process channels for the bus, local
//! action proxy processes for containers.
//!
//! Layout:
//! - [`roles`]: the backends every role opens, and the roles as separate processes.
//! - [`settings`]: every setting of the platform, loaded with the `config` crate.
//! - this file: [`Standalone::start`] and shutdown.

pub mod roles;
pub mod settings;

pub use settings::Settings;

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_controller::Controller;
use whisk_directory::Registry;
use whisk_invoker::{ContainerFactory, Invoker};
use whisk_store::Store;

/// A running standalone platform.
pub struct Standalone {
    /// Where the REST API listens.
    pub addr: SocketAddr,
    /// The store (shared with the roles).
    pub store: Arc<dyn Store>,
    /// The invoker.
    pub invoker: Arc<Invoker>,
    /// The in-process directory.
    pub directory: Registry,
    /// Where the gateway in front serves HTTPS (`--tls`).
    pub tls_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    factory: Arc<dyn ContainerFactory>,
}

impl Standalone {
    /// Opens the store, starts the invoker and the controller, and binds the API.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let data_dir = settings.data_dir();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let store = roles::open_store(&settings).await?;
        roles::ensure_keys(&settings, store.as_ref(), true).await?;
        let bus = roles::open_bus(&settings)?;
        let shutdown = CancellationToken::new();

        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;

        let factory = roles::open_factory(&settings);
        let (peer_directory, directory) = roles::open_directory(&settings)?;
        let mut invoker_cfg = roles::invoker_config(&settings, data_dir.clone());
        if invoker_cfg.api_host.is_empty() || settings.invoker_api_host_from_listen {
            invoker_cfg.api_host = format!("http://{addr}");
        }
        let invoker = Invoker::start(
            invoker_cfg,
            factory.clone(),
            store.clone(),
            bus.clone(),
            peer_directory,
            shutdown.clone(),
        )
        .await?;
        let controller = Controller::start(
            settings.controller.clone(),
            store.clone(),
            bus.clone(),
            shutdown.clone(),
        )
        .await?;
        if !controller
            .wait_for_invokers(1, Duration::from_secs(10))
            .await
        {
            anyhow::bail!("the invoker did not report healthy within 10 s");
        }
        // The gateway (and its certificates) first: once the API answers, clients may look for
        // the CA. The API's socket is bound already, so the gateway's first requests wait in
        // its backlog.
        let tls_addr = match settings.tls_listen {
            Some(tls) => {
                Some(front_with_gateway(&settings, &data_dir, tls, addr, shutdown.clone()).await?)
            }
            None => None,
        };
        let server = tokio::spawn(whisk_controller::serve(
            listener,
            controller.router(),
            shutdown.clone(),
        ));
        // `whisk admin` reaches the server holding the store file here (its owner alone).
        let admin = data_dir.join(whisk_controller::admin::SOCKET_FILE);
        let serving = controller
            .serve_admin(admin.clone(), shutdown.clone())
            .with_context(|| format!("cannot serve `whisk admin` on {}", admin.display()))?;
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, socket = %admin.display(), "`whisk admin` socket failed");
            }
        });
        tracing::info!(%addr, data_dir = %data_dir.display(), "whisk standalone is up");
        Ok(Self {
            addr,
            store,
            invoker,
            directory,
            tls_addr,
            shutdown,
            server,
            factory,
        })
    }

    /// Stops serving, kills every action process and makes the store durable.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        self.invoker.pool().shutdown().await;
        if let Err(e) = self.factory.cleanup().await {
            tracing::warn!(error = %e, "removing action containers failed");
        }
        self.store.flush().await?;
        Ok(())
    }
}

/// Puts the gateway in front of the API on `tls` (HTTPS), with the certificate of the
/// gateway settings, or one issued for 127.0.0.1 and localhost into `<data>/certs` (its CA is
/// `<data>/certs/ca.crt`).
async fn front_with_gateway(
    settings: &Settings,
    data_dir: &std::path::Path,
    tls: SocketAddr,
    api: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let mut cfg = settings.gateway.clone();
    if !cfg.tls_cert.exists() || !cfg.tls_key.exists() {
        let dir = data_dir.join("certs");
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let paths = whisk_gateway::certs::write_bundle(&dir, "whisk standalone CA", &hosts, 3650)?;
        cfg.tls_cert = paths.cert;
        cfg.tls_key = paths.key;
    }
    cfg.listen_http = None;
    cfg.listen_https = Some(tls);
    cfg.backends = vec![format!("http://{api}")];
    let gateway = whisk_gateway::Gateway::bind(cfg).await?;
    let addr = gateway
        .https_addr()
        .ok_or_else(|| anyhow::anyhow!("the gateway has no HTTPS listener"))?;
    tokio::spawn(async move {
        if let Err(e) = gateway.serve(shutdown).await {
            tracing::error!(error = %e, "the gateway stopped");
        }
    });
    tracing::info!(%addr, "HTTPS through the gateway");
    Ok(addr)
}
