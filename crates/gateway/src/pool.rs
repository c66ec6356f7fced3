//! [`Pool`]: one event loop's keep-alive connections to one controller, on hyper's HTTP/1.1
//! client connection API (what nginx's `upstream { keepalive N; }` does). Idle connections are
//! reused newest first; a connection goes back to the pool when the controller's answer has been
//! read to the end ([`PooledBody`]), so that no task is spawned per request to wait for it; at
//! most `max_idle` are kept, and [`Pool::sweep`] closes those idle longer than the idle timeout.
//! A request that a pooled connection could not even start to send (the controller closed it
//! meanwhile) is sent again on another one.

use crate::backend::Backend;
use crate::error::BoxError;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// Body of requests to the controllers (read whole before forwarding).
pub type ReqBody = Full<Bytes>;

/// Why a request could not be forwarded.
#[derive(Debug)]
pub enum SendError {
    /// No connection to the controller could be made.
    Connect(io::Error),
    /// The controller closed the connection or sent something that is not HTTP.
    Failed(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Failed(e) => write!(f, "{e}"),
        }
    }
}

struct Idle {
    conn: SendRequest<ReqBody>,
    since: Instant,
}

/// See the module documentation.
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool keeping at most `max_idle` connections for `idle_timeout`.
    pub fn new(max_idle: usize, idle_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            connect_timeout,
        }
    }

    /// Sends `req` on an idle connection to `backend`, or on a new one; returns the answer
    /// whose body gives the connection back to the pool once read.
    pub async fn send(
        self: &Arc<Self>,
        backend: &Backend,
        mut req: Request<ReqBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                // Boxed: a large future, needed once per connection, not per request.
                None => (Box::pin(self.connect(backend)).await?, false),
            };
            match conn.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = PooledBody {
                        body,
                        back: Some((conn, self.clone())),
                    };
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    // Closed by the controller while idle: nothing was sent, try another.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(SendError::Failed(e.into_error())),
                },
            }
        }
    }

    /// The newest idle connection that is ready for a request; closed ones are dropped.
    fn take_idle(&self) -> Option<SendRequest<ReqBody>> {
        let mut idle = self.idle.lock();
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            if idle[i].conn.is_ready() {
                return Some(idle.swap_remove(i).conn);
            }
            if idle[i].conn.is_closed() {
                idle.swap_remove(i);
            }
        }
        None
    }

    fn put(&self, conn: SendRequest<ReqBody>) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// Closes the connections idle for longer than the idle timeout, and the closed ones.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.idle
            .lock()
            .retain(|c| !c.conn.is_closed() && now.duration_since(c.since) < self.idle_timeout);
    }

    /// The idle timeout (how often [`sweep`](Self::sweep) is worth calling).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    async fn connect(&self, backend: &Backend) -> Result<SendRequest<ReqBody>, SendError> {
        let authority = backend.authority();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(self.connect_timeout, connect_tcp(host, port))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            .and_then(|r| r)
            .map_err(SendError::Connect)?;
        let (conn, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| SendError::Connect(io::Error::other(e)))?;
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "controller connection ended with an error");
            }
        });
        Ok(conn)
    }
}

/// Connects to the first address of `host` that answers, with `TCP_NODELAY` and keep-alive
/// probes.
async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_keepalive(true)?;
        socket.set_nodelay(true)?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// A controller's response body that gives its connection back to the pool when read to the
/// end (a body dropped before its end takes the connection with it).
pub struct PooledBody {
    body: Incoming,
    back: Option<(SendRequest<ReqBody>, Arc<Pool>)>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((conn, pool)) = self.back.take() {
            pool.put(conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled.map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A controller answering every request with `ok`; it closes each connection after one
    /// answer when `one_shot`. Returns its URL and its count of accepted connections.
    async fn controller(one_shot: bool) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut have = 0;
                    loop {
                        match s.read(&mut buf[have..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => have += n,
                        }
                        if !buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
                            continue;
                        }
                        have = 0;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if s.write_all(answer).await.is_err() || one_shot {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    async fn get(pool: &Arc<Pool>, backend: &Backend) -> String {
        let req = Request::get("/")
            .header(http::header::HOST, backend.host())
            .body(ReqBody::default())
            .unwrap();
        let resp = pool.send(backend, req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_and_closed_ones_replaced() {
        let second = Duration::from_secs(1);
        for one_shot in [false, true] {
            let (url, accepted) = controller(one_shot).await;
            let backend = Backend::parse(&url).unwrap();
            let pool = Arc::new(Pool::new(8, Duration::from_secs(60), second));
            for _ in 0..3 {
                assert_eq!(get(&pool, &backend).await, "ok");
                // Wait for the connection to see the controller's close, as between requests.
                while one_shot && !pool.idle.lock().iter().all(|c| c.conn.is_closed()) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            let expected = if one_shot { 3 } else { 1 };
            assert_eq!(accepted.load(Ordering::SeqCst), expected);
        }
        let (url, _) = controller(false).await;
        let backend = Backend::parse(&url).unwrap();
        let pool = Arc::new(Pool::new(8, Duration::from_millis(1), second));
        assert_eq!(get(&pool, &backend).await, "ok");
        assert_eq!(pool.idle.lock().len(), 1);
        tokio::time::sleep(Duration::from_millis(2)).await; // past the idle timeout
        pool.sweep();
        assert!(pool.idle.lock().is_empty());
    }
}
