//! The API's HTTP listener: hyper-util's server (HTTP/1.1 and HTTP/2 with prior knowledge)
//! around the axum router ([`TowerToHyperService`]), with the limits that `axum::serve` lacks:
//! - a **header-read timeout** (slowloris: a client that sends its head slowly, or sits idle
//!   on a keep-alive connection, is disconnected);
//! - a **body idle timeout**: a body that stalls fails the read (the route answers 400);
//! - a **send timeout**: a write the client does not read within it ends the connection;
//! - a **lingering close**: when the server ends a connection the client is still sending on
//!   (an answer given before the body was read — 413 for a large invoke payload, 401), the
//!   socket is shut for writing and what the client still sends is read and dropped, up to a
//!   bound in bytes and time, before it is closed. Closing with unread data makes the kernel
//!   send a reset, and a client still writing its body then sees `EPIPE` instead of the 413.
//!
//! The send timeout and lingering close are `whisk_edge_io`'s, shared with the gateway.
//! Shutdown is graceful: stop accepting, let requests in flight finish.

use axum::Router;
use bytes::Bytes;
use http::Request;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use whisk_edge_io::{EdgeIo, Linger, Stall};

/// Timeouts and bounds of the listener.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Time a client has to send a request head, and the longest a keep-alive connection may
    /// sit idle between requests.
    pub header_read_timeout: Duration,
    /// Longest a client may pause while sending a body.
    pub body_idle_timeout: Duration,
    /// Longest a write may wait for the client to read.
    pub send_timeout: Duration,
    /// Longest a lingering close reads what the client still sends (0: none).
    pub lingering_time: Duration,
    /// Most bytes a lingering close reads.
    pub lingering_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            lingering_time: Duration::from_secs(5),
            lingering_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Serves `router` on `listener` with `settings` until `shutdown` is cancelled, then lets
/// requests in flight finish.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let idle = settings.body_idle_timeout;
    let app = router.map_request(move |req: Request<Incoming>| {
        req.map(|body| axum::body::Body::new(IdleBody::new(body, idle)))
    });
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let linger = Linger {
            send_timeout: settings.send_timeout,
            time: settings.lingering_time,
            bytes: settings.lingering_bytes,
        };
        let io = TokioIo::new(EdgeIo::new(stream, linger, None));
        let conn = builder.serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(client = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// A request body that fails when the client sends nothing for the idle timeout.
struct IdleBody {
    body: Incoming,
    idle: Stall,
}

impl IdleBody {
    fn new(body: Incoming, idle: Duration) -> Self {
        Self {
            body,
            idle: Stall::new(idle),
        }
    }
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending => {
                if this.idle.expired(cx) {
                    Poll::Ready(Some(Err("the request body did not arrive in time".into())))
                } else {
                    Poll::Pending
                }
            }
            Poll::Ready(r) => {
                this.idle.progressed();
                Poll::Ready(r.map(|r| r.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
