//! The one composition root of the server roles: [`serve`] starts any [`RoleSet`] —
//! controller, invoker, directory, gateway, feed provider — in this process from one
//! [`Settings`], each role using the local instance of another role when there is one and its
//! client otherwise, and [`Running::shutdown`] stops them all the same way. `whisk standalone`
//! is [`RoleSet::standalone`] over the embedded backends (a redb file, the in-process bus,
//! local action processes, the in-process directory, the feed provider in process); `whisk
//! controller|invoker|directory|gateway|feeds` are one role each over the distributed ones.
//!
//! How the roles meet when they share a process:
//! - the invoker's peer directory is the local [`Role::Directory`]'s registry; else the
//!   `whisk directory` at `directory_url`; else an in-process registry of its own (the
//!   seam's embedded backend, what standalone uses);
//! - a local controller waits (10 s) for a local invoker's first health ping before its API
//!   answers, and gives actions its own address as `__OW_API_HOST`;
//! - a local feed provider fires through a local controller's API (else `feeds.api_url`);
//! - a local gateway fronts a local controller: HTTPS on `tls_listen` (`--tls`), with a
//!   certificate issued into `<data>/certs` when the gateway settings name none; alone, the
//!   gateway serves its own settings on its event-loop threads.
//!
//! Layout:
//! - [`backends`]: what roles open from the settings: store, bus, container runtime, peer
//!   directory, the first keys.
//! - [`settings`]: every setting of the platform, loaded with the `config` crate.
//! - `roles`: starting each role into a [`Running`].
//! - `running`: [`Running`], the one shutdown sequence, and [`shutdown_on_signal`].
//! - this file: [`Role`], [`RoleSet`], [`serve`] and [`ServeError`].

pub mod backends;
mod metrics;
mod roles;
mod running;
pub mod settings;

pub use running::{shutdown_on_signal, Running, SHUTDOWN_GRACE};
pub use settings::Settings;

use std::collections::BTreeSet;
use std::path::PathBuf;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// A role a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The REST API at `listen`, its bus consumers and, over the embedded store, the
    /// `whisk admin` socket in the data folder.
    Controller,
    /// Activations from topic `invoker<invoker.id>`, run in containers of `runtime`.
    Invoker,
    /// The peer directory, served over gRPC at `directory.listen`.
    Directory,
    /// The TLS edge: `gateway.*`, or HTTPS on `tls_listen` in front of a local controller.
    Gateway,
    /// The feed provider (`feeds.*`): runs the feed registrations it holds a lease on and
    /// fires their triggers through the API (the local controller's, else `feeds.api_url`).
    Feeds,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Controller => "controller",
            Role::Invoker => "invoker",
            Role::Directory => "directory",
            Role::Gateway => "gateway",
            Role::Feeds => "feeds",
        })
    }
}

/// The roles one process runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    /// One role.
    pub fn only(role: Role) -> Self {
        Self::default().with(role)
    }

    /// The whole platform in one process: controller, invoker and feed provider (the
    /// directory in process), and the gateway when `tls_listen` is set (`whisk standalone --tls`).
    pub fn standalone(settings: &Settings) -> Self {
        let roles = Self::only(Role::Controller)
            .with(Role::Invoker)
            .with(Role::Feeds);
        match settings.tls_listen {
            Some(_) => roles.with(Role::Gateway),
            None => roles,
        }
    }

    /// This set and `role`.
    pub fn with(mut self, role: Role) -> Self {
        self.0.insert(role);
        self
    }

    /// True when `role` runs in this process.
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The roles, in start order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}

impl std::fmt::Display for RoleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.iter().map(|r| r.to_string()).collect();
        f.write_str(&names.join(", "))
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Why the roles could not start, or stopped with a failure.
#[derive(Debug, Error)]
pub enum ServeError {
    /// Nothing to run.
    #[error("no role to run")]
    NoRole,
    /// A controller or invoker without the other in this process, on the in-process bus.
    #[error("a separate {0} needs the Kafka bus: give --kafka HOST:PORT or set bus = \"kafka\"")]
    SeparateOnMemoryBus(Role),
    /// A file, folder or listener.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The embedded store file could not be opened.
    #[error("cannot open the database {} (is another whisk running on it?)", path.display())]
    OpenStore {
        /// The redb file.
        path: PathBuf,
        /// Why.
        #[source]
        source: whisk_store::StoreError,
    },
    /// CouchDB did not answer within a minute of retries.
    #[error("cannot reach CouchDB")]
    Couch(#[source] whisk_store::StoreError),
    /// The first keys could not be made.
    #[error("cannot set up the first keys")]
    Keys(#[source] whisk_core::WhiskError),
    /// The Kafka client could not be made.
    #[error("message bus")]
    Bus(#[source] whisk_bus::BusError),
    /// The controller could not start.
    #[error("cannot start the controller")]
    Controller(#[source] whisk_controller::ControllerError),
    /// The feed provider could not start.
    #[error("cannot start the feed provider")]
    Feeds(#[source] whisk_feeds::ProviderError),
    /// The invoker could not start.
    #[error("cannot start the invoker")]
    Invoker(#[source] whisk_invoker::service::InvokerError),
    /// A local controller heard nothing from the local invoker.
    #[error("the invoker did not report healthy within {} s", .0.as_secs())]
    InvokerNotHealthy(std::time::Duration),
    /// The directory's settings, registry backend or server.
    #[error("directory")]
    Directory(#[source] whisk_directory::DirectoryError),
    /// The gateway's settings, certificate or server.
    #[error("gateway")]
    Gateway(#[source] whisk_gateway::GatewayError),
    /// The gateway's certificate could not be issued.
    #[error("cannot issue the gateway's certificate")]
    Certs(#[source] whisk_gateway::CertError),
    /// A role's server stopped with an error while running.
    #[error("the {role} stopped: {message}")]
    Stopped {
        /// Which role.
        role: Role,
        /// Its error.
        message: String,
    },
    /// The store could not be made durable at shutdown.
    #[error("flushing the store")]
    Flush(#[source] whisk_store::StoreError),
}

impl ServeError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
        let what = what.into();
        move |source| ServeError::Io { what, source }
    }
}

/// Starts `roles` from `settings` and returns them running: every listener is bound and, with
/// a local controller and invoker, the invoker has reported healthy. They run until
/// `shutdown` is cancelled (or one of them fails); then call [`Running::shutdown`]. A role
/// that fails to start stops the ones already started before the error is returned.
pub async fn serve(
    settings: Settings,
    roles: RoleSet,
    shutdown: CancellationToken,
) -> Result<Running, ServeError> {
    if roles.iter().next().is_none() {
        return Err(ServeError::NoRole);
    }
    if settings.bus == settings::BusBackend::Memory {
        for (role, peer) in [
            (Role::Controller, Role::Invoker),
            (Role::Invoker, Role::Controller),
        ] {
            if roles.contains(role) && !roles.contains(peer) {
                return Err(ServeError::SeparateOnMemoryBus(role));
            }
        }
    }
    let mut running = Running::new(shutdown.child_token());
    let started = match roles::start(&settings, &roles, &mut running).await {
        Ok(()) => metrics::start(&settings, &mut running).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(()) => {
            tracing::info!(%roles, data_dir = %settings.data_dir().display(), "up");
            Ok(running)
        }
        Err(e) => {
            if let Err(stop) = running.shutdown().await {
                tracing::warn!(error = %stop, "stopping the roles already started failed");
            }
            Err(e)
        }
    }
}

/// The whole platform in this process ([`RoleSet::standalone`]) until [`Running::shutdown`]:
/// what `whisk standalone` runs, for benchmarks and tests.
pub async fn standalone(settings: Settings) -> Result<Running, ServeError> {
    let roles = RoleSet::standalone(&settings);
    serve(settings, roles, CancellationToken::new()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_fronts_the_api_with_the_gateway_only_with_tls() {
        let mut s = Settings::default();
        let plain = RoleSet::standalone(&s);
        assert!(plain.contains(Role::Controller) && plain.contains(Role::Invoker));
        assert!(!plain.contains(Role::Gateway) && !plain.contains(Role::Directory));
        s.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        assert!(RoleSet::standalone(&s).contains(Role::Gateway));
    }

    #[tokio::test]
    async fn an_empty_role_set_is_refused() {
        let e = serve(
            Settings::default(),
            RoleSet::default(),
            CancellationToken::new(),
        )
        .await;
        assert!(matches!(e, Err(ServeError::NoRole)));
    }

    #[tokio::test]
    async fn a_separate_controller_or_invoker_needs_kafka() {
        for role in [Role::Controller, Role::Invoker] {
            let e = serve(
                Settings::default(),
                RoleSet::only(role),
                CancellationToken::new(),
            );
            match e.await {
                Err(ServeError::SeparateOnMemoryBus(r)) => assert_eq!(r, role),
                Err(e) => panic!("{role}: {e}"),
                Ok(_) => panic!("{role} started on the in-process bus"),
            }
        }
    }
}
