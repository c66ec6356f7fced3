//! The roles as separate processes (`whisk controller`, `whisk invoker`), and the backends
//! every role opens from the same settings: the store (embedded file or CouchDB) and the bus
//! (in-process or Kafka). Standalone uses the same functions with its defaults.

use crate::settings::{BusBackend, Runtime, Settings, StoreBackend};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, InProcessBus, KafkaBus};
use whisk_controller::admin::{ensure_identities, Keys};
use whisk_controller::Controller;
use whisk_directory::{DirectoryClient, PeerDirectory, Registry};
use whisk_invoker::{ContainerFactory, DockerFactory, Invoker, ProcessFactory};
use whisk_store::{CouchStore, EmbeddedStore, Store};

/// Opens the configured store (the embedded file readable by its owner alone).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match settings.store {
        StoreBackend::Embedded => {
            let dir = settings.data_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create data dir {}", dir.display()))?;
            let db = dir.join("whisk.redb");
            let store = EmbeddedStore::open(&db).with_context(|| {
                format!(
                    "cannot open the database {} (is another whisk running on it?)",
                    db.display()
                )
            })?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make {} private", db.display()))?;
            }
            Arc::new(store)
        }
        StoreBackend::Couchdb => Arc::new(
            retry("CouchDB", || CouchStore::connect(settings.couchdb.clone()))
                .await
                .context("cannot reach CouchDB")?,
        ),
    };
    Ok(store)
}

/// True when `listen` (`ip:port` or `host:port`) is a loopback address.
fn is_loopback(listen: &str) -> bool {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// The keys a platform starts with: OpenWhisk's well-known ones only for a standalone
/// platform that nobody beyond this host can reach; random ones in `<data>/keys` otherwise.
/// Says where new key files went.
pub async fn ensure_keys(
    settings: &Settings,
    store: &dyn Store,
    standalone: bool,
) -> anyhow::Result<()> {
    let local_only = standalone
        && is_loopback(&settings.listen)
        && settings.tls_listen.is_none_or(|a| a.ip().is_loopback());
    let keys = if local_only {
        Keys::WellKnown
    } else {
        Keys::Generated {
            dir: settings.data_dir().join("keys"),
        }
    };
    let written = ensure_identities(store, &keys)
        .await
        .context("cannot set up the first keys")?;
    for file in written {
        println!(
            "whisk: a new key is in {} (readable by you alone)",
            file.display()
        );
    }
    Ok(())
}

/// Opens the configured bus (`memory` only makes sense inside one process).
pub fn open_bus(settings: &Settings) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match settings.bus {
        BusBackend::Memory => Arc::new(InProcessBus::new()),
        BusBackend::Kafka => Arc::new(KafkaBus::new(settings.kafka.clone())?),
    })
}

/// The directory the invoker registers with: the service at `directory_url`, else one in
/// this process.
pub fn open_directory(settings: &Settings) -> anyhow::Result<(Arc<dyn PeerDirectory>, Registry)> {
    let local = Registry::in_memory(settings.directory.registry_options());
    let dir: Arc<dyn PeerDirectory> = match &settings.directory_url {
        Some(url) => Arc::new(DirectoryClient::connect_lazy_tls(
            url,
            settings.invoker.directory_tls()?.as_ref(),
        )?),
        None => Arc::new(local.clone()),
    };
    Ok((dir, local))
}

/// The container runtime: local action processes, or Docker containers (`runtime =
/// "docker"`, `--runtime docker`).
pub fn open_factory(settings: &Settings) -> Arc<dyn ContainerFactory> {
    match settings.runtime {
        Runtime::Process => {
            let mut env = vec![];
            if let Some(py) = &settings.python {
                env.push(("WHISK_PYTHON".to_string(), py.clone()));
            }
            let command = settings
                .proxy_command
                .clone()
                .unwrap_or_else(ProcessFactory::default_command);
            Arc::new(ProcessFactory::with_config(
                command,
                env,
                &settings.invoker.process,
            ))
        }
        Runtime::Docker => Arc::new(
            DockerFactory::new(settings.docker.clone())
                .with_user_memory_mb(settings.invoker.user_memory_mb),
        ),
    }
}

/// The invoker settings with what the platform decides: the data folder and, in Docker, only
/// the stems whose image exists (the project builds the Python image).
pub fn invoker_config(
    settings: &Settings,
    data_dir: std::path::PathBuf,
) -> whisk_invoker::InvokerConfig {
    let mut cfg = settings.invoker.clone();
    if cfg.data_dir.is_none() {
        cfg.data_dir = Some(data_dir);
    }
    if settings.runtime == Runtime::Docker {
        cfg.stem_cells.retain(|s| {
            whisk_core::kinds::family(&s.kind)
                .is_some_and(|f| settings.docker.images.contains_key(f))
        });
    }
    cfg
}

/// Retries a start-up connection for up to a minute, logging each failure clearly.
async fn retry<T, E, F, Fut>(what: &str, f: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(200);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "{what} is not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `whisk controller`: the REST API over the configured store and bus, until `shutdown`.
pub async fn run_controller(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    ensure_keys(&settings, store.as_ref(), false).await?;
    let bus = open_bus(&settings)?;
    let controller = retry("the message bus", || {
        Controller::start(
            settings.controller.clone(),
            store.clone(),
            bus.clone(),
            shutdown.clone(),
        )
    })
    .await
    .context("cannot start the controller")?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "whisk controller {}: API on http://{addr}",
        settings.controller.id
    );
    whisk_controller::serve(listener, controller.router(), shutdown).await?;
    store.flush().await?;
    Ok(())
}

/// `whisk invoker`: runs activations from `invoker<id>` until `shutdown`.
pub async fn run_invoker(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let bus = open_bus(&settings)?;
    let (directory, _local) = open_directory(&settings)?;
    let factory = open_factory(&settings);
    let dir = settings
        .data_dir()
        .join(format!("invoker{}", settings.invoker.id));
    let cfg = invoker_config(&settings, dir);
    let id = cfg.id;
    let invoker = retry("the message bus", || {
        Invoker::start(
            cfg.clone(),
            factory.clone(),
            store.clone(),
            bus.clone(),
            directory.clone(),
            shutdown.clone(),
        )
    })
    .await
    .context("cannot start the invoker")?;
    println!("whisk invoker {id}: consuming invoker{id}");
    shutdown.cancelled().await;
    invoker.pool().shutdown().await;
    if let Err(e) = factory.cleanup().await {
        tracing::warn!(error = %e, "removing action containers failed");
    }
    store.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_listeners_get_the_well_known_keys() {
        for local in [
            "127.0.0.1:3233",
            "127.9.9.9:1",
            "[::1]:3233",
            "localhost:3233",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for public in [
            "0.0.0.0:3233",
            "[::]:3233",
            "10.0.0.5:3233",
            "example.org:3233",
            "x",
        ] {
            assert!(!is_loopback(public), "{public}");
        }
    }
}
