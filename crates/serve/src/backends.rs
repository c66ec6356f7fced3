//! What the roles open from the settings: the store (embedded file or CouchDB), the bus
//! (in-process or Kafka), the container runtime (local processes or Docker), the invoker's
//! peer directory, and which first keys a platform gets. Only decisions and connections: what
//! is done with them (seeding the keys, serving, consuming) belongs to the roles' crates.

use crate::settings::{BusBackend, Runtime, Settings, StoreBackend};
use crate::ServeError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use whisk_bus::{Bus, DurableBus, InProcessBus, KafkaBus};
use whisk_controller::admin::Keys;
use whisk_directory::{DirectoryClient, PeerDirectory, Registry};
use whisk_invoker::{ContainerFactory, DockerFactory, ProcessFactory};
use whisk_store::{CouchStore, EmbeddedStore, Store};

/// Creates the data folder.
pub fn data_dir(settings: &Settings) -> Result<PathBuf, ServeError> {
    let dir = settings.data_dir();
    std::fs::create_dir_all(&dir).map_err(ServeError::io(format!(
        "cannot create data dir {}",
        dir.display()
    )))?;
    Ok(dir)
}

/// Opens the configured store (the embedded file readable by its owner alone; CouchDB with
/// a minute of retries).
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, ServeError> {
    Ok(match settings.store {
        StoreBackend::Embedded => {
            let db = data_dir(settings)?.join("whisk.redb");
            let store = EmbeddedStore::open(&db).map_err(|source| ServeError::OpenStore {
                path: db.clone(),
                source,
            })?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).map_err(
                    ServeError::io(format!("cannot make {} private", db.display())),
                )?;
            }
            Arc::new(store)
        }
        StoreBackend::Couchdb => Arc::new(
            retry("CouchDB", || CouchStore::connect(settings.couchdb.clone()))
                .await
                .map_err(ServeError::Couch)?,
        ),
    })
}

/// True when `listen` (`ip:port` or `host:port`) is a loopback address.
pub fn is_loopback(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// The keys a platform starts with: OpenWhisk's well-known ones only for a whole platform
/// (`platform`: controller and invoker in this process) whose every listener (`listeners`:
/// `ip:port` or `host:port`) is a loopback address; random ones in `<data>/keys` otherwise.
/// The controller's admin module makes them ([`whisk_controller::admin::ensure_identities`]).
pub fn first_keys<'a>(
    settings: &Settings,
    platform: bool,
    listeners: impl IntoIterator<Item = &'a str>,
) -> Keys {
    if platform && listeners.into_iter().all(is_loopback) {
        Keys::WellKnown
    } else {
        Keys::Generated {
            dir: settings.data_dir().join("keys"),
        }
    }
}

/// Opens the configured bus (`memory` only makes sense inside one process; with
/// `durable_bus`, its invoker topics are kept in `<data>/bus` until committed).
pub fn open_bus(settings: &Settings) -> Result<Arc<dyn Bus>, ServeError> {
    Ok(match settings.bus {
        BusBackend::Memory if settings.durable_bus => {
            let dir = data_dir(settings)?.join("bus");
            Arc::new(DurableBus::open(&dir, is_invoker_topic).map_err(ServeError::Bus)?)
        }
        BusBackend::Memory => Arc::new(InProcessBus::new()),
        BusBackend::Kafka => {
            Arc::new(KafkaBus::new(settings.kafka.clone()).map_err(ServeError::Bus)?)
        }
    })
}

/// True for `invoker<N>`, the topics of activation messages.
fn is_invoker_topic(topic: &str) -> bool {
    topic
        .strip_prefix("invoker")
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// The directory an invoker registers with: `local` (the registry of a directory in this
/// process), else the service at `directory_url`, else an in-process registry of its own.
pub fn peer_directory(
    settings: &Settings,
    local: Option<&Registry>,
) -> Result<Arc<dyn PeerDirectory>, ServeError> {
    if let Some(registry) = local {
        return Ok(Arc::new(registry.clone()));
    }
    Ok(match &settings.directory_url {
        Some(url) => {
            let tls = settings
                .invoker
                .directory_tls()
                .map_err(ServeError::Directory)?;
            Arc::new(
                DirectoryClient::connect_lazy_tls(url, tls.as_ref())
                    .map_err(ServeError::Directory)?,
            )
        }
        None => Arc::new(Registry::in_memory(settings.directory.registry_options())),
    })
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
pub fn invoker_config(settings: &Settings, data_dir: &Path) -> whisk_invoker::InvokerConfig {
    let mut cfg = settings.invoker.clone();
    if cfg.data_dir.is_none() {
        cfg.data_dir = Some(data_dir.to_path_buf());
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
pub(crate) async fn retry<T, E, F, Fut>(what: &str, f: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    retry_while(what, f, |_| true).await
}

/// Like [`retry`], only while the failure is `transient` (a service that may come up).
pub(crate) async fn retry_while<T, E, F, Fut>(
    what: &str,
    f: F,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
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
            Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "{what} is not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn well_known_keys_only_for_a_whole_platform_on_loopback() {
        let s = Settings::default();
        let well_known = |k: Keys| matches!(k, Keys::WellKnown);
        assert!(well_known(first_keys(&s, true, ["127.0.0.1:3233"])));
        assert!(!well_known(first_keys(&s, false, ["127.0.0.1:3233"])));
        assert!(!well_known(first_keys(
            &s,
            true,
            ["127.0.0.1:3233", "0.0.0.0:443"]
        )));
    }
}
