//! The whisk-rs gateway, the nginx of an OpenWhisk deployment: terminates TLS (rustls, the
//! certificate reloadable on SIGHUP), forwards every request (`/api/v1/...`, web actions) to
//! one of the controllers (round robin, health checks, failover, keep-alive pools), enforces
//! request size, rate and concurrency limits, and answers its own errors with OpenWhisk's
//! `{"error", "code"}` body. [`certs`] makes the CA and server certificates it serves.
//!
//! Layout:
//! - [`config`]: [`GatewayConfig`], every setting with its default.
//! - [`server`]: [`Gateway`]: listeners, TLS handshakes, HTTP/1.1 and HTTP/2 (hyper-util's
//!   auto connection builder), header-read timeout, graceful shutdown.
//! - each client connection's send timeout and lingering close: `whisk_edge_io`, shared
//!   with the controller's listener.
//! - [`connections`]: the cap on client connections (503 past it) and its count.
//! - [`request_id`]: the outermost layer: `X-Request-ID`, connection facts, access log.
//! - [`limits`]: rate, concurrency and in-flight limits as tower layers (429, 503).
//! - [`proxy`]: refused paths (404), body limit (413), forwarding, failover, 502 and 504.
//! - [`body`]: request bodies streamed under the size limit and idle timeout; answer bodies.
//! - [`pool`]: each event loop's keep-alive connections to each controller (hyper's HTTP/1.1
//!   client connections).
//! - [`backend`]: the controllers, round robin, health.
//! - [`tls`]: the reloadable certificate resolver and rustls configuration.
//! - [`workers`]: [`run`]'s event-loop threads (`SO_REUSEPORT`, one runtime each).
//! - [`certs`]: CA and server certificates with rcgen.
//! - [`error`]: [`GatewayError`] and the error body.
//! - this file: [`run`].

#![deny(missing_docs)]

pub mod backend;
pub mod body;
pub mod certs;
pub mod config;
pub mod connections;
pub mod error;
pub mod limits;
pub mod pool;
pub mod proxy;
pub mod request_id;
pub mod server;
pub mod tls;
pub mod workers;

pub use certs::{
    generate_ca, issue_server_cert, write_bundle, CertAuthority, CertError, ServerCert,
};
pub use config::{ConcurrencyLimits, GatewayConfig, RateLimit, RateLimits};
pub use error::GatewayError;
pub use server::Gateway;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Binds the listeners of `config` and serves with [`GatewayConfig::workers`] event-loop
/// threads until `shutdown` is cancelled, then drains; on Unix, SIGHUP reloads the certificate
/// files. (To serve on the caller's runtime instead, use [`Gateway::bind`] and
/// [`Gateway::serve`].)
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
    let stop = shutdown.clone();
    workers::run_workers(config, shutdown, move |reloader| {
        spawn_reload_on_sighup(reloader, stop)
    })
    .await
}

/// On SIGHUP, reloads the certificate (when there is one) until `stop`.
fn spawn_reload_on_sighup(reloader: Option<Arc<tls::CertReloader>>, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    s = hangups.recv() => if s.is_none() { return },
                }
                match &reloader {
                    Some(r) => {
                        if let Err(e) = r.reload() {
                            tracing::error!(error = %e, "SIGHUP: certificate reload failed; keeping the old one");
                        }
                    }
                    None => tracing::info!("SIGHUP: no HTTPS listener, nothing to reload"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (reloader, stop);
}
