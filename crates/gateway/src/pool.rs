//! [`Pool`]: one event loop's keep-alive connections to one controller, each a hyper HTTP/1.1
//! client connection (`hyper::client::conn::http1`). A connection is taken out for one request
//! and comes back ([`Checkin`]) when the controller's answer has been read to its end; idle
//! ones are closed after the idle timeout. Taking out a connection opens a new one when none is
//! idle, so a controller that cannot be reached fails before the request (and its body) is
//! handed to it, and the proxy can try the next one.

use crate::backend::Backend;
use crate::body::RequestBody;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Why no connection to a controller could be had.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connection failed.
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    /// The TCP connection took longer than the connect timeout.
    #[error("connect timed out")]
    Timeout,
    /// The HTTP/1.1 handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// See the module documentation.
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

/// A connection taken out of a [`Pool`], to be put back when its answer has been read.
pub(crate) struct Checkin {
    pool: Arc<Pool>,
    sender: SendRequest<RequestBody>,
}

impl Checkin {
    /// Puts the connection back (unless it is closing).
    pub(crate) fn put_back(self) {
        self.pool.put(self.sender);
    }
}

impl Pool {
    /// At most `max_idle` idle connections, each closed after `idle_timeout`; new ones must be
    /// open within `connect_timeout`.
    pub fn new(max_idle: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            connect_timeout,
        }
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// An idle connection that is still open, else a new one to `backend`.
    pub(crate) async fn checkout(
        self: &Arc<Self>,
        backend: &Backend,
        fresh: bool,
    ) -> Result<SendRequest<RequestBody>, ConnectError> {
        if !fresh {
            let now = Instant::now();
            loop {
                let Some(mut idle) = self.idle.lock().pop() else {
                    break;
                };
                if idle.sender.is_closed() || now.duration_since(idle.since) >= self.idle_timeout {
                    continue;
                }
                if idle.sender.ready().await.is_ok() {
                    return Ok(idle.sender);
                }
            }
        }
        self.connect(backend).await
    }

    /// Wraps `sender` to be put back here.
    pub(crate) fn checkin(self: &Arc<Self>, sender: SendRequest<RequestBody>) -> Checkin {
        Checkin {
            pool: self.clone(),
            sender,
        }
    }

    fn put(&self, sender: SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than the idle timeout.
    pub fn sweep(&self) {
        let now = Instant::now();
        let timeout = self.idle_timeout;
        self.idle
            .lock()
            .retain(|i| !i.sender.is_closed() && now.duration_since(i.since) < timeout);
    }

    async fn connect(&self, backend: &Backend) -> Result<SendRequest<RequestBody>, ConnectError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(backend.addr()))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(256 * 1024)
            .handshake(TokioIo::new(tcp))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "controller connection ended with an error");
            }
        });
        Ok(sender)
    }
}
