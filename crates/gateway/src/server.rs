//! [`Gateway`]: binds the listeners, accepts connections (TLS handshakes under a timeout),
//! serves HTTP/1.1 and HTTP/2 with hyper-util's auto connection builder (HTTP/1.1 with a
//! header-read timeout, header size and count limits; HTTP/2 over TLS when ALPN picks it, or
//! with prior knowledge) through the layer stack, each connection with a send timeout and a
//! lingering close ([`EdgeIo`]), runs the health checks, and shuts down gracefully: stop
//! accepting, let requests in flight finish within [`GatewayConfig::drain_timeout`], then drop
//! what is left. Past `max_connections` open connections, a new one is answered 503 and
//! closed ([`Connections`]).

use crate::backend::Backends;
use crate::config::GatewayConfig;
use crate::connections::{Admission, Connections, Refusal, REFUSAL_TIME};
use crate::error::{Body, GatewayError};
use crate::limits::{ConcurrencyLimitLayer, InFlightLimitLayer, LimitKey, RateLimitLayer};
use crate::proxy::{backend_client, Proxy};
use crate::request_id::{RequestContext, RequestIdLayer, ResponseFuture, WithContext};
use crate::tls::{server_config, CertReloader};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceBuilder};
use whisk_edge_io::{EdgeIo, Linger};

/// A bound gateway, ready to [`serve`](Gateway::serve).
pub struct Gateway {
    config: GatewayConfig,
    http: Option<TcpListener>,
    https: Option<TcpListener>,
    parts: SharedParts,
    health_checks: bool,
}

/// What the event-loop threads of one gateway share: the controllers and their health, the
/// limit counters, the certificate, the connection slots.
#[derive(Clone)]
pub(crate) struct SharedParts {
    backends: Arc<Backends>,
    tls: Option<(Arc<CertReloader>, TlsAcceptor)>,
    in_flight: InFlightLimitLayer,
    client_rate: RateLimitLayer,
    client_concurrency: ConcurrencyLimitLayer,
    namespace_rate: RateLimitLayer,
    namespace_concurrency: ConcurrencyLimitLayer,
    connections: Arc<Connections>,
}

impl SharedParts {
    /// Checks `config`, parses the controllers, loads the certificate when `tls`.
    pub(crate) fn new(config: &GatewayConfig, tls: bool) -> Result<Self, GatewayError> {
        if config.max_header_bytes < 1024 || config.max_headers == 0 {
            return Err(GatewayError::Config(
                "max_header_bytes must be at least 1024 and max_headers at least 1".into(),
            ));
        }
        if config.max_connections == 0 {
            return Err(GatewayError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        let backends = Arc::new(Backends::new(&config.backends)?);
        let tls = if tls {
            let reloader = Arc::new(CertReloader::load(&config.tls_cert, &config.tls_key)?);
            let acceptor = TlsAcceptor::from(server_config(reloader.clone(), config.http2)?);
            Some((reloader, acceptor))
        } else {
            None
        };
        let (rate, conc) = (&config.rate_limit, &config.concurrency_limit);
        Ok(Self {
            backends,
            tls,
            in_flight: InFlightLimitLayer::new(config.max_in_flight),
            client_rate: RateLimitLayer::new(
                LimitKey::Client,
                rate.client.per_second,
                rate.client.burst,
            ),
            client_concurrency: ConcurrencyLimitLayer::new(LimitKey::Client, conc.client),
            namespace_rate: RateLimitLayer::new(
                LimitKey::Namespace,
                rate.namespace.per_second,
                rate.namespace.burst,
            ),
            namespace_concurrency: ConcurrencyLimitLayer::new(LimitKey::Namespace, conc.namespace),
            connections: Arc::new(Connections::new(config.max_connections)),
        })
    }

    pub(crate) fn cert_reloader(&self) -> Option<Arc<CertReloader>> {
        self.tls.as_ref().map(|(r, _)| r.clone())
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("http", &self.http_addr())
            .field("https", &self.https_addr())
            .field("backends", &self.parts.backends)
            .finish()
    }
}

impl Gateway {
    /// Checks `config`, loads the certificate (when HTTPS is on) and binds the listeners.
    pub async fn bind(config: GatewayConfig) -> Result<Self, GatewayError> {
        let bind = |addr: Option<SocketAddr>| async move {
            match addr {
                None => Ok(None),
                Some(addr) => TcpListener::bind(addr)
                    .await
                    .map(Some)
                    .map_err(|source| GatewayError::Bind { addr, source }),
            }
        };
        let http = bind(config.listen_http).await?;
        let https = bind(config.listen_https).await?;
        Self::from_listeners(config, http, https)
    }

    /// Uses listeners bound by the caller (the addresses in `config` are ignored); HTTPS is on
    /// when `https` is given.
    pub fn from_listeners(
        config: GatewayConfig,
        http: Option<TcpListener>,
        https: Option<TcpListener>,
    ) -> Result<Self, GatewayError> {
        if http.is_none() && https.is_none() {
            return Err(GatewayError::Config("no listener configured".into()));
        }
        let parts = SharedParts::new(&config, https.is_some())?;
        Ok(Self::with_parts(config, http, https, parts, true))
    }

    /// A gateway (one event loop) on `parts` shared with others; only one of them should run
    /// the `health_checks`.
    pub(crate) fn with_parts(
        config: GatewayConfig,
        http: Option<TcpListener>,
        https: Option<TcpListener>,
        parts: SharedParts,
        health_checks: bool,
    ) -> Self {
        Self {
            config,
            http,
            https,
            parts,
            health_checks,
        }
    }

    /// The address of the HTTP listener.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the HTTPS listener.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The reloadable certificate (for a SIGHUP handler), when HTTPS is on.
    pub fn cert_reloader(&self) -> Option<Arc<CertReloader>> {
        self.parts.cert_reloader()
    }

    /// Reads the certificate files again (what SIGHUP does).
    pub fn reload_tls(&self) -> Result<(), GatewayError> {
        self.cert_reloader().ok_or(GatewayError::NoTls)?.reload()
    }

    /// The controllers and their health.
    pub fn backends(&self) -> Arc<Backends> {
        self.parts.backends.clone()
    }

    /// Client connections: the cap, how many are open, how many were refused.
    pub fn connections(&self) -> Arc<Connections> {
        self.parts.connections.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let cfg = &self.config;
        let parts = &self.parts;
        let proxy = Proxy::new(cfg, parts.backends.clone());
        // The limits in this order, folded into one layer (one hop per request, not five).
        let limits = parts
            .in_flight
            .clone()
            .and(parts.client_rate.clone())
            .and(parts.client_concurrency.clone())
            .and(parts.namespace_rate.clone())
            .and(parts.namespace_concurrency.clone());
        let stack = ServiceBuilder::new()
            .layer(RequestIdLayer::new(cfg.access_log))
            .layer(limits)
            .service(proxy.clone());

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .max_buf_size(cfg.max_header_bytes.max(8192))
            .max_headers(cfg.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(256)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        let tls_builder = if cfg.http2 {
            builder.clone()
        } else {
            builder.clone().http1_only()
        };
        let shared = Arc::new(Shared {
            stack,
            plain: builder,
            tls_builder,
            tls: parts.tls.as_ref().map(|(_, a)| a.clone()),
            handshake_timeout: cfg.tls_handshake_timeout,
            linger: Linger {
                send_timeout: cfg.send_timeout,
                time: cfg.lingering_time,
                bytes: cfg.lingering_bytes,
            },
        });

        let checks = shutdown.child_token();
        tokio::spawn(proxy.sweep_idle(checks.clone()));
        if self.health_checks {
            tokio::spawn(parts.backends.clone().run_health_checks(
                backend_client(cfg),
                cfg.health_path.clone(),
                cfg.health_interval,
                cfg.health_timeout,
                checks.clone(),
            ));
        }
        tracing::info!(
            http = ?self.http_addr(),
            https = ?self.https_addr(),
            backends = ?cfg.backends,
            "gateway listening"
        );

        let graceful = GracefulShutdown::new();
        // The connection tasks, to abort those still open when the drain time is up.
        let mut conns = JoinSet::new();
        let connections = parts.connections.clone();
        loop {
            let (accepted, tls) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = accept(&self.http) => (r, false),
                r = accept(&self.https) => (r, true),
            };
            let (stream, peer) = match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                shared: shared.clone(),
                watcher: graceful.watcher(),
                shutdown: shutdown.clone(),
            };
            while conns.try_join_next().is_some() {}
            match connections.admit() {
                Admission::Serve(slot) => {
                    let io = EdgeIo::new(stream, shared.linger, Some(slot));
                    conns.spawn(conn.serve(io, peer, tls));
                }
                Admission::Refuse(refusing) => {
                    tracing::debug!(client = %peer, "too many connections: refusing one");
                    let io = EdgeIo::new(stream, shared.linger, Some(refusing));
                    conns.spawn(async move {
                        let _ =
                            tokio::time::timeout(REFUSAL_TIME, conn.run(io, peer, tls, Refusal))
                                .await;
                    });
                }
                Admission::Drop => drop(stream),
            }
        }

        drop(self.http);
        drop(self.https);
        checks.cancel();
        tracing::info!(
            connections = graceful.count(),
            "gateway stopping: draining requests in flight"
        );
        if tokio::time::timeout(cfg.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached: dropping the remaining connections");
            conns.abort_all();
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}

async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

struct Shared<S> {
    stack: S,
    /// The connection builder of the plain listener (HTTP/1.1, or HTTP/2 with prior knowledge).
    plain: auto::Builder<TokioExecutor>,
    /// The connection builder of the HTTPS listener (HTTP/1.1 only unless `http2`).
    tls_builder: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    linger: Linger,
}

struct Conn<S> {
    shared: Arc<Shared<S>>,
    /// Tells hyper of the shutdown (it then ends the connection once its request is answered);
    /// the drain waits for every watched connection to go.
    watcher: Watcher,
    shutdown: CancellationToken,
}

/// What the layer stack is: a service from hyper's requests (with their context) to the
/// gateway's responses.
trait Stack:
    Service<
    Request<WithContext<Incoming>>,
    Response = Response<Body>,
    Error = Infallible,
    Future = ResponseFuture,
>
{
}

impl<S> Stack for S where
    S: Service<
        Request<WithContext<Incoming>>,
        Response = Response<Body>,
        Error = Infallible,
        Future = ResponseFuture,
    >
{
}

impl<S: Stack + Clone + Send + Sync + 'static> Conn<S> {
    async fn serve(self, io: EdgeIo, peer: SocketAddr, tls: bool) {
        let ctx = RequestContext::new(peer, tls);
        let svc = ConnService {
            stack: RefCell::new(self.shared.stack.clone()),
            ctx,
        };
        self.run(io, peer, tls, svc).await
    }

    /// Serves one connection with `svc` (the layer stack, or a [`Refusal`]).
    async fn run<H>(self, io: EdgeIo, peer: SocketAddr, tls: bool, svc: H)
    where
        H: hyper::service::Service<
                Request<Incoming>,
                Response = Response<Body>,
                Error = Infallible,
            > + 'static,
        H::Future: Send + 'static,
    {
        let shared = &self.shared;
        if !tls {
            let conn = shared.plain.serve_connection(TokioIo::new(io), svc);
            finish(self.watcher.watch(conn), peer).await;
            return;
        }
        let Some(acceptor) = &shared.tls else { return };
        let handshake = tokio::time::timeout(shared.handshake_timeout, acceptor.accept(io));
        let stream = tokio::select! {
            _ = self.shutdown.cancelled() => return,
            r = handshake => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client = %peer, "TLS handshake timed out");
                    return;
                }
            },
        };
        // HTTP/2 when ALPN chose it (the builder reads the preface), else HTTP/1.1.
        let conn = shared
            .tls_builder
            .serve_connection(TokioIo::new(stream), svc);
        finish(self.watcher.watch(conn), peer).await;
    }
}

/// The layer stack as one connection's hyper service: cloned once per connection rather than
/// once per request (`call` only borrows it to build the response future).
struct ConnService<S> {
    stack: RefCell<S>,
    ctx: RequestContext,
}

impl<S: Stack> hyper::service::Service<Request<Incoming>> for ConnService<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> ResponseFuture {
        let ctx = self.ctx.clone();
        let req = req.map(|body| WithContext { ctx, body });
        self.stack.borrow_mut().call(req)
    }
}

async fn finish<E: std::fmt::Display>(
    conn: impl std::future::Future<Output = Result<(), E>>,
    peer: SocketAddr,
) {
    if let Err(e) = conn.await {
        tracing::debug!(client = %peer, error = %e, "connection ended with an error");
    }
}
