//! Starting each role of a [`RoleSet`] into a [`Running`], in the order they depend on each
//! other: the backends and listeners, the directory (a local invoker registers with it), the
//! invoker, the controller (which waits for a local invoker), the gateway, and last the API
//! (so a client that reaches it finds the whole platform up).

use crate::backends::{
    data_dir, first_keys, invoker_config, open_bus, open_factory, open_store, peer_directory,
    retry, retry_while,
};
use crate::settings::{Runtime, Settings, StoreBackend};
use crate::{Role, RoleSet, Running, ServeError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use whisk_bus::Bus;
use whisk_controller::Controller;
use whisk_directory::Registry;
use whisk_gateway::{Gateway, GatewayConfig};
use whisk_invoker::service::InvokerError;
use whisk_invoker::Invoker;
use whisk_store::Store;

/// How long a local controller waits for a local invoker's first health ping.
const INVOKER_HEALTHY: Duration = Duration::from_secs(10);

/// Starts `roles` into `running` (what started is there even when a later role fails).
pub(crate) async fn start(
    settings: &Settings,
    roles: &RoleSet,
    running: &mut Running,
) -> Result<(), ServeError> {
    let controller = roles.contains(Role::Controller);
    let invoker = roles.contains(Role::Invoker);
    let feeds = roles.contains(Role::Feeds);
    let backends = if controller || invoker || feeds {
        let store = open_store(settings).await?;
        running.store = Some(store.clone());
        Some((store, open_bus(settings)?))
    } else {
        None
    };
    // The API's socket first: a busy port fails the start before anything runs, and the
    // invoker learns the address actions call back to.
    let api = match controller {
        true => {
            let listener = tokio::net::TcpListener::bind(&settings.listen)
                .await
                .map_err(ServeError::io(format!(
                    "cannot listen on {}",
                    settings.listen
                )))?;
            running.api_addr = Some(
                listener
                    .local_addr()
                    .map_err(ServeError::io("the API's address"))?,
            );
            Some(listener)
        }
        false => None,
    };
    let gateway = match roles.contains(Role::Gateway) {
        true => Some(gateway_config(settings, running.api_addr)?),
        false => None,
    };
    if roles.contains(Role::Directory) {
        start_directory(settings, running).await?;
    }
    let Some((store, bus)) = backends else {
        return start_gateway(gateway, running).await;
    };
    if controller {
        let mut listeners = vec![settings.listen.clone()];
        if let Some(g) = &gateway {
            listeners.extend(
                g.listen_http
                    .iter()
                    .chain(&g.listen_https)
                    .map(|a| a.to_string()),
            );
        }
        let keys = first_keys(settings, invoker, listeners.iter().map(String::as_str));
        running.new_key_files = whisk_controller::admin::ensure_identities(store.as_ref(), &keys)
            .await
            .map_err(ServeError::Keys)?;
        whisk_controller::catalog::install_catalog_or_log(store.as_ref()).await;
    }
    let mut peers = None;
    if invoker {
        peers = Some(start_invoker(settings, controller, &store, &bus, running).await?);
    }
    if feeds {
        start_feeds(settings, &store, &bus, running).await?;
    }
    let Some(listener) = api else {
        return start_gateway(gateway, running).await;
    };
    let ctl = retry("the message bus", || {
        Controller::start(
            settings.controller.clone(),
            store.clone(),
            bus.clone(),
            running.shutdown.clone(),
        )
    })
    .await
    .map_err(ServeError::Controller)?;
    running.controller = Some(ctl.clone());
    if invoker && !ctl.wait_for_invokers(1, INVOKER_HEALTHY).await {
        return Err(ServeError::InvokerNotHealthy(INVOKER_HEALTHY));
    }
    // The gateway (and its certificates) before the API: once the API answers, clients may
    // look for the CA. The API's socket is bound already, so the gateway's first requests
    // wait in its backlog.
    start_gateway(gateway, running).await?;
    // The web console's settings, and the peer directory for its groups view: the local
    // invoker's, else the local directory or `directory_url`'s (none: the route answers 503).
    whisk_console::configure(settings.console.clone());
    if peers.is_none() && (running.directory.is_some() || settings.directory_url.is_some()) {
        peers = Some(peer_directory(settings, running.directory.as_ref())?);
    }
    let router = whisk_controller::api::groups::with_groups(
        ctl.router(),
        ctl.services(),
        peers,
        running.shutdown.clone(),
    );
    let router = router.merge(whisk_metrics::router(crate::metrics::sources(running)));
    let shutdown = running.shutdown.clone();
    running.spawn_server(
        Role::Controller,
        whisk_controller::serve(listener, router, shutdown.clone()),
    );
    if settings.store == StoreBackend::Embedded {
        // `whisk admin` reaches the server holding the store file here (its owner alone).
        let admin = settings
            .data_dir()
            .join(whisk_controller::admin::SOCKET_FILE);
        let serving = ctl
            .serve_admin(admin.clone(), shutdown)
            .map_err(ServeError::io(format!(
                "cannot serve `whisk admin` on {}",
                admin.display()
            )))?;
        running.spawn_task(async move {
            if let Err(e) = serving.await {
                tracing::warn!(error = %e, socket = %admin.display(), "`whisk admin` socket failed");
            }
        });
    }
    Ok(())
}

/// The feed provider: fires through the local controller's API (its socket is bound already),
/// else `feeds.api_url`; hears of registrations on the bus and from the store.
async fn start_feeds(
    settings: &Settings,
    store: &Arc<dyn Store>,
    bus: &Arc<dyn Bus>,
    running: &mut Running,
) -> Result<(), ServeError> {
    let local = running.api_addr.map(|a| format!("http://{a}"));
    let cfg = settings.feeds.provider_config(local);
    let provider = retry("the message bus", || {
        whisk_feeds::Provider::start(
            cfg.clone(),
            store.clone(),
            Some(bus.clone()),
            running.shutdown.clone(),
        )
    })
    .await
    .map_err(ServeError::Feeds)?;
    running.feeds = Some(provider);
    Ok(())
}

/// The directory's registry and its gRPC server.
async fn start_directory(settings: &Settings, running: &mut Running) -> Result<(), ServeError> {
    let cfg = &settings.directory;
    let tls = cfg.server_tls().map_err(ServeError::Directory)?;
    let registry = Registry::open(cfg).await.map_err(ServeError::Directory)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(ServeError::io(format!("cannot listen on {}", cfg.listen)))?;
    running.directory_addr = Some(
        listener
            .local_addr()
            .map_err(ServeError::io("the directory's address"))?,
    );
    running.directory = Some(registry.clone());
    let shutdown = running.shutdown.clone();
    running.spawn_server(Role::Directory, async move {
        whisk_directory::serve_with(listener, registry, shutdown, tls.as_ref()).await
    });
    Ok(())
}

/// The invoker, in the platform's data folder when the controller is local (one platform per
/// folder), else in `<data>/invoker<id>` (several invokers may share one).
async fn start_invoker(
    settings: &Settings,
    platform: bool,
    store: &Arc<dyn Store>,
    bus: &Arc<dyn Bus>,
    running: &mut Running,
) -> Result<Arc<dyn whisk_directory::PeerDirectory>, ServeError> {
    let factory = open_factory(settings);
    running.factory = Some(factory.clone());
    let mut folder = data_dir(settings)?;
    if !platform {
        folder = folder.join(format!("invoker{}", settings.invoker.id));
    }
    let mut cfg = invoker_config(settings, &folder);
    if let Some(api) = running.api_addr {
        if cfg.api_host.is_empty() || settings.invoker_api_host_from_listen {
            cfg.api_host = format!("http://{api}");
        }
    }
    let directory = peer_directory(settings, running.directory.as_ref())?;
    // The broker and the Docker daemon may come up later; the process runtime's refusal (no
    // sandbox) is final.
    let docker = settings.runtime == Runtime::Docker;
    let transient = |e: &InvokerError| match e {
        InvokerError::Bus(_) => true,
        InvokerError::Container(_) => docker,
        InvokerError::Io(_) => false,
    };
    let invoker = retry_while(
        "the message bus or the container runtime",
        || {
            Invoker::start(
                cfg.clone(),
                factory.clone(),
                store.clone(),
                bus.clone(),
                directory.clone(),
                running.shutdown.clone(),
            )
        },
        transient,
    )
    .await
    .map_err(ServeError::Invoker)?;
    running.invoker = Some(invoker);
    Ok(directory)
}

/// The gateway's settings: in front of a local controller (`api`), that controller as its
/// backend and, with `tls_listen`, HTTPS there alone with the certificate of the gateway
/// settings, or one issued for 127.0.0.1 and localhost into `<data>/certs` (its CA is
/// `<data>/certs/ca.crt`).
fn gateway_config(
    settings: &Settings,
    api: Option<SocketAddr>,
) -> Result<GatewayConfig, ServeError> {
    let mut cfg = settings.gateway.clone();
    let Some(api) = api else {
        return Ok(cfg);
    };
    cfg.backends = vec![format!("http://{api}")];
    if let Some(tls) = settings.tls_listen {
        cfg.listen_http = None;
        cfg.listen_https = Some(tls);
        if !cfg.tls_cert.exists() || !cfg.tls_key.exists() {
            let dir = data_dir(settings)?.join("certs");
            let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
            let paths =
                whisk_gateway::certs::write_bundle(&dir, "whisk standalone CA", &hosts, 3650)
                    .map_err(ServeError::Certs)?;
            cfg.tls_cert = paths.cert;
            cfg.tls_key = paths.key;
        }
    }
    Ok(cfg)
}

/// The gateway: on this runtime in front of a local controller (its addresses known now),
/// alone on its own event-loop threads (SIGHUP reloads the certificate).
async fn start_gateway(
    cfg: Option<GatewayConfig>,
    running: &mut Running,
) -> Result<(), ServeError> {
    let Some(cfg) = cfg else {
        return Ok(());
    };
    let shutdown = running.shutdown.clone();
    if running.api_addr.is_none() {
        running.http_addr = cfg.listen_http;
        running.https_addr = cfg.listen_https;
        running.spawn_server(Role::Gateway, whisk_gateway::run(cfg, shutdown));
        return Ok(());
    }
    let gateway = Gateway::bind(cfg).await.map_err(ServeError::Gateway)?;
    running.http_addr = gateway.http_addr();
    running.https_addr = gateway.https_addr();
    running.spawn_server(Role::Gateway, gateway.serve(shutdown));
    if let Some(addr) = running.https_addr {
        tracing::info!(%addr, "HTTPS through the gateway");
    }
    Ok(())
}
