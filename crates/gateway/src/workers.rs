//! [`run_workers`]: the gateway as `workers` event-loop threads, each a single-threaded tokio
//! runtime that accepts on its own `SO_REUSEPORT` sockets and keeps its own keep-alive pool to
//! the controllers (no cross-thread wake-ups on the request path, as with nginx's worker
//! processes), sharing the limits, the controllers' health and the certificate.

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::server::{Gateway, SharedParts};
use crate::tls::CertReloader;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

/// Binds `addr` with `SO_REUSEPORT`, so that every worker has its own socket on the port.
fn listen_reuseport(addr: SocketAddr) -> Result<TcpListener, GatewayError> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        socket.listen(4096)
    };
    bind().map_err(|source| GatewayError::Bind { addr, source })
}

/// The number of workers `config` asks for.
pub fn worker_count(config: &GatewayConfig) -> usize {
    match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Starts the workers; returns the certificate reloader (when HTTPS is on) and a future that
/// resolves when every worker has stopped, after `shutdown`.
pub async fn run_workers(
    config: GatewayConfig,
    shutdown: CancellationToken,
    on_started: impl FnOnce(Option<Arc<CertReloader>>),
) -> Result<(), GatewayError> {
    if config.listen_http.is_none() && config.listen_https.is_none() {
        return Err(GatewayError::Config("no listener configured".into()));
    }
    let parts = SharedParts::new(&config, config.listen_https.is_some())?;
    let n = worker_count(&config);
    let stop_all = shutdown.child_token();
    let mut done = Vec::with_capacity(n);
    for i in 0..n {
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (config, parts, stop) = (config.clone(), parts.clone(), stop_all.clone());
        std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = bound_tx.send(Err(GatewayError::Io(e)));
                        return;
                    }
                };
                let result = rt.block_on(async move {
                    let bound = (|| {
                        let http = config.listen_http.map(listen_reuseport).transpose()?;
                        let https = config.listen_https.map(listen_reuseport).transpose()?;
                        Ok::<_, GatewayError>((http, https))
                    })();
                    let (http, https) = match bound {
                        Ok(l) => {
                            let _ = bound_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    Gateway::with_parts(config, http, https, parts, i == 0)
                        .serve(stop)
                        .await
                });
                let _ = done_tx.send(result);
            })?;
        match bound_rx.await {
            Ok(Ok(())) => done.push(done_rx),
            Ok(Err(e)) => {
                stop_all.cancel();
                return Err(e);
            }
            Err(_) => {
                stop_all.cancel();
                return Err(GatewayError::Config(format!("worker {i} failed to start")));
            }
        }
    }
    tracing::info!(workers = n, "gateway workers started");
    on_started(parts.cert_reloader());
    let mut result = Ok(());
    for d in done {
        if let Ok(Err(e)) = d.await {
            result = Err(e);
        }
    }
    result
}
