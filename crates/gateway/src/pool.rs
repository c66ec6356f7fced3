//! [`Pool`]: one event loop's keep-alive connections to one controller, and the HTTP/1.1
//! client that uses them (what nginx's `upstream { keepalive N; }` does). A request is written,
//! and its answer's head read and parsed ([`h1`]), inside the request's own future: no task per
//! connection, no channel to one. The answer's body is returned whole when it came with the head
//! (the usual case), else read as the response is sent on ([`PooledBody`]); either way the
//! connection goes back to the pool when the body has been read to its end and the controller
//! did not say `Connection: close`. Idle connections are reused newest first; at most `max_idle`
//! are kept, and [`Pool::sweep`] closes those idle longer than the idle timeout. A request that a
//! reused connection could not deliver (the controller closed it meanwhile) is sent again on
//! another one.

use crate::backend::Backend;
use crate::error::BoxError;
use crate::h1::{self, ChunkedDecoder, Decoded, Framing, Head, ParseError, RawHeaders};
use bytes::{Bytes, BytesMut};
use http::{Method, Response};
use hyper::body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Free space kept in a connection's read buffer before each read.
const READ_SPACE: usize = 8 * 1024;

/// Requests longer than this are written while the answer is watched for (shorter ones fit in
/// the socket's buffer whether the controller reads them or not).
const WATCHED_WRITE: usize = 64 * 1024;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection to the controller could be made.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The controller closed the connection before any byte of an answer.
    #[error("connection closed before an answer")]
    Closed,
    /// Writing the request failed.
    #[error("write: {0}")]
    Write(io::Error),
    /// Reading the answer failed.
    #[error("{0}")]
    Io(io::Error),
    /// The answer is not usable HTTP/1.1.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// One connection to a controller, what has been read from it but not used yet, and the buffer
/// requests are written from.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    out: BytesMut,
}

impl Conn {
    /// Whether an idle connection can take a request: nothing arrived on it since its last
    /// answer (an end of file or stray bytes would have).
    fn usable(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if self.stream.poll_read_ready(&mut cx).is_pending() {
            return true;
        }
        // Readiness may be left from the last read: ask the socket.
        matches!(self.stream.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes the request in `out` and reads its answer's head. A large request is written
    /// while the answer is watched for: a controller may answer before it has read the whole
    /// body (and stop reading it), and that answer is then the answer (the connection is not
    /// reused: the rest of the request was not sent).
    async fn exchange(&mut self, method: &Method) -> Result<(Head, Bytes), SendError> {
        let Conn { stream, buf, out } = self;
        if out.len() <= WATCHED_WRITE {
            stream.write_all(out).await.map_err(SendError::Write)?;
            return read_head(stream, buf, method).await;
        }
        let (mut rd, mut wr) = stream.split();
        tokio::select! {
            written = wr.write_all(out) => written.map_err(SendError::Write)?,
            early = read_head(&mut rd, buf, method) => {
                let (mut head, rest) = early?;
                head.keep_alive = false;
                return Ok((head, rest));
            }
        }
        read_head(&mut rd, buf, method).await
    }
}

/// Reads from `rd` into `buf` until a whole answer head has arrived (to a request made with
/// `method`); returns it and the bytes that came after it.
async fn read_head<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<(Head, Bytes), SendError> {
    let mut received = !buf.is_empty();
    loop {
        if buf.capacity() - buf.len() < READ_SPACE / 4 {
            buf.reserve(READ_SPACE);
        }
        match rd.read_buf(buf).await {
            Ok(0) | Err(_) if !received => return Err(SendError::Closed),
            Ok(0) => {
                return Err(SendError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed within the answer head",
                )))
            }
            Ok(_) => received = true,
            Err(e) => return Err(SendError::Io(e)),
        }
        // Frozen, so that header values and the body share the bytes read.
        let data = buf.split().freeze();
        match h1::parse_head(&data, method)? {
            Some((head, len)) => return Ok((head, data.slice(len..))),
            // A head split across reads (rare): keep what came, read on.
            None => *buf = BytesMut::from(data),
        }
    }
}

struct Idle {
    conn: Conn,
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

    /// Sends a request made with `method`, written by `write` (head and body, see
    /// [`h1::RequestWriter`]), on an idle connection to `backend`, or on a new one; returns the
    /// answer. A reused connection found closed is replaced; when it was closed after the
    /// request was written but before any answer, the request is sent again only if it is
    /// `idempotent`.
    pub async fn send(
        self: &Arc<Self>,
        backend: &Backend,
        method: &Method,
        idempotent: bool,
        write: impl Fn(&mut BytesMut),
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                // Boxed: a large future, needed once per connection, not per request.
                None => (Box::pin(self.connect(backend)).await?, false),
            };
            write(&mut conn.out);
            match conn.exchange(method).await {
                Ok((head, rest)) => return Ok(self.answer(conn, head, rest)),
                // Nothing the controller could act on got through: try another connection.
                Err(SendError::Write(_)) if reused => continue,
                Err(SendError::Closed) if reused && idempotent => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The answer to a request: its body whole when it is already here (the connection back
    /// in the pool at once), else one that reads the rest.
    fn answer(self: &Arc<Self>, mut conn: Conn, head: Head, rest: Bytes) -> Response<PooledBody> {
        let keep_alive = head.keep_alive;
        let body = match head.framing {
            Framing::Empty => {
                self.put(conn, keep_alive && rest.is_empty());
                PooledBody::full(Bytes::new())
            }
            Framing::Length(n) if rest.len() as u64 >= n => {
                let whole = rest.len() as u64 == n;
                self.put(conn, keep_alive && whole);
                PooledBody::full(if whole {
                    rest
                } else {
                    rest.slice(..n as usize)
                })
            }
            framing => {
                let left = match framing {
                    Framing::Length(n) => Left::Length(n),
                    Framing::Chunked => Left::Chunked(ChunkedDecoder::default()),
                    _ => Left::Close,
                };
                conn.buf = BytesMut::from(rest);
                PooledBody {
                    state: State::Reading(Box::new(Reading {
                        conn,
                        left,
                        keep_alive,
                        pool: self.clone(),
                    })),
                    headers: None,
                }
            }
        };
        let mut resp = Response::new(body.with_headers(head.headers));
        *resp.status_mut() = head.status;
        *resp.version_mut() = head.version;
        resp
    }

    /// The newest idle connection that can take a request; unusable ones are dropped.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock();
        while let Some(Idle { conn, .. }) = idle.pop() {
            if conn.usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for another request when `keep_alive` and nothing more was sent on it.
    fn put(&self, conn: Conn, keep_alive: bool) {
        if !keep_alive || !conn.buf.is_empty() {
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

    /// Closes the connections idle for longer than the idle timeout.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.idle
            .lock()
            .retain(|c| now.duration_since(c.since) < self.idle_timeout);
    }

    /// The idle timeout (how often [`sweep`](Self::sweep) is worth calling).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    async fn connect(&self, backend: &Backend) -> Result<Conn, SendError> {
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
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_SPACE),
            out: BytesMut::new(),
        })
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

/// What is left of a body being read.
enum Left {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

struct Reading {
    conn: Conn,
    left: Left,
    keep_alive: bool,
    pool: Arc<Pool>,
}

enum State {
    Full(Bytes),
    Reading(Box<Reading>),
    Done,
}

/// A controller's answer body: whole, or read from its connection, which goes back to the pool
/// when the body has been read to its end (a body dropped before its end closes it). It also
/// carries the answer's header lines as they came ([`RawHeaders`]): the HTTP/1.x server writes
/// them as they are, without a header map in between.
pub struct PooledBody {
    state: State,
    headers: Option<RawHeaders>,
}

impl PooledBody {
    /// A body of `data`, whole.
    pub fn full(data: Bytes) -> Self {
        let state = if data.is_empty() {
            State::Done
        } else {
            State::Full(data)
        };
        Self {
            state,
            headers: None,
        }
    }

    /// This body with the header lines of its answer.
    fn with_headers(mut self, headers: RawHeaders) -> Self {
        self.headers = Some(headers);
        self
    }

    /// The header lines of the controller's answer (see [`RawHeaders`]).
    pub fn raw_headers(&self) -> Option<&RawHeaders> {
        self.headers.as_ref()
    }

    /// Takes the header lines of the controller's answer out.
    pub fn take_raw_headers(&mut self) -> Option<RawHeaders> {
        self.headers.take()
    }

    /// The body is read: the connection goes back to the pool if it may.
    fn finish(&mut self) {
        if let State::Reading(r) = std::mem::replace(&mut self.state, State::Done) {
            let Reading {
                conn,
                keep_alive,
                pool,
                ..
            } = *r;
            pool.put(conn, keep_alive);
        }
    }
}

fn broken(e: impl Into<BoxError>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    Poll::Ready(Some(Err(e.into())))
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let r = match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Full(data) => {
                    let data = std::mem::take(data);
                    this.state = State::Done;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::Reading(r) => r,
            };
            let buf = &mut r.conn.buf;
            match &mut r.left {
                Left::Length(left) if !buf.is_empty() => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    *left -= n as u64;
                    if *left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Left::Chunked(decoder) => match decoder.decode(buf) {
                    Ok(Some(Decoded::Data(data))) => {
                        return Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Ok(Some(Decoded::End)) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        this.state = State::Done;
                        return broken(e);
                    }
                },
                Left::Close if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Left::Length(_) | Left::Close => {}
            }
            buf.reserve(READ_SPACE);
            let close_delimited = matches!(r.left, Left::Close);
            match tokio_util::io::poll_read_buf(Pin::new(&mut r.conn.stream), cx, buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) if close_delimited => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    this.state = State::Done;
                    return broken("the controller closed the connection within the body");
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.state = State::Done;
                    return broken(e);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Done => SizeHint::with_exact(0),
            State::Full(data) => SizeHint::with_exact(data.len() as u64),
            State::Reading(r) => match r.left {
                Left::Length(n) => SizeHint::with_exact(n),
                _ => SizeHint::default(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A controller that answers each request head with the next of `answers` (each written in
    /// pieces split at `|`, with a pause between them), closing the connection after those
    /// ending in `<close>`, and every connection after one answer when `one_shot`. Returns its
    /// URL and its count of accepted connections.
    async fn controller(answers: Vec<&'static str>, one_shot: bool) -> (Backend, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let answers = Arc::new(answers);
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (answers, next) = (answers.clone(), next.clone());
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
                        let answer = answers[next.fetch_add(1, Ordering::SeqCst) % answers.len()];
                        let (answer, close) = match answer.strip_suffix("<close>") {
                            Some(a) => (a, true),
                            None => (answer, one_shot),
                        };
                        for piece in answer.split('|') {
                            if s.write_all(piece.as_bytes()).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        if close {
                            return;
                        }
                    }
                });
            }
        });
        (Backend::parse(&url).unwrap(), accepted)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    async fn request(
        pool: &Arc<Pool>,
        backend: &Backend,
        method: Method,
    ) -> Result<(u16, String), SendError> {
        let wire = format!("{method} / HTTP/1.1\r\nhost: c\r\n\r\n");
        let write = |out: &mut BytesMut| {
            out.clear();
            out.extend_from_slice(wire.as_bytes());
        };
        let resp = pool.send(backend, &method, true, write).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| SendError::Io(io::Error::other(e)))?;
        Ok((status, String::from_utf8(body.to_bytes().to_vec()).unwrap()))
    }

    fn pool() -> Arc<Pool> {
        Arc::new(Pool::new(
            8,
            Duration::from_secs(60),
            Duration::from_secs(1),
        ))
    }

    #[tokio::test]
    async fn connections_are_reused_and_closed_ones_replaced() {
        for one_shot in [false, true] {
            let (backend, accepted) = controller(vec![OK], one_shot).await;
            let pool = pool();
            for _ in 0..3 {
                assert_eq!(request(&pool, &backend, Method::GET).await.unwrap().1, "ok");
                // Let the controller's close arrive, as between requests.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let expected = if one_shot { 3 } else { 1 };
            assert_eq!(accepted.load(Ordering::SeqCst), expected);
        }
        let (backend, _) = controller(vec![OK], false).await;
        let pool = Arc::new(Pool::new(
            8,
            Duration::from_millis(1),
            Duration::from_secs(1),
        ));
        assert_eq!(request(&pool, &backend, Method::GET).await.unwrap().1, "ok");
        assert_eq!(pool.idle.lock().len(), 1);
        tokio::time::sleep(Duration::from_millis(2)).await; // past the idle timeout
        pool.sweep();
        assert!(pool.idle.lock().is_empty());
    }

    /// Each answer is read whole, and the connection kept only when it may be.
    #[tokio::test]
    async fn bodies_and_keep_alive() {
        let cases: [(&str, Method, &str, bool); 8] = [
            // Split within the head and within the body.
            ("HTTP/1.1 200 OK\r\ncontent-le|ngth: 5\r\n\r\nhe|llo", Method::GET, "hello", true),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc|\r\n2\r\nde\r|\n0\r\n\r\n", Method::GET, "abcde", true),
            ("HTTP/1.1 200 OK\r\n\r\nuntil|close<close>", Method::GET, "untilclose", false),
            ("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", Method::HEAD, "", true),
            ("HTTP/1.1 204 No Content\r\n\r\n", Method::DELETE, "", true),
            ("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok", Method::GET, "ok", false),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n|x", Method::GET, "x", true),
            (OK, Method::GET, "ok", true),
        ];
        for (answer, method, body, kept) in cases {
            let (backend, _) = controller(vec![answer], false).await;
            let pool = pool();
            let (status, got) = request(&pool, &backend, method).await.unwrap();
            assert!(status == 200 || status == 204, "{answer:?}");
            assert_eq!(got, body, "{answer:?}");
            assert_eq!(pool.idle.lock().len(), usize::from(kept), "{answer:?}");
        }
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        let long_head: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nx: {}\r\n\r\n",
                "a".repeat(h1::MAX_HEAD_BYTES)
            )
            .into_boxed_str(),
        );
        let cases = [
            "garbage\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort<close>",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\ncontent-len<close>",
            "<close>",
            long_head,
        ];
        for answer in cases {
            let (backend, _) = controller(vec![answer], false).await;
            let pool = pool();
            assert!(
                request(&pool, &backend, Method::GET).await.is_err(),
                "{answer:?}"
            );
            assert!(pool.idle.lock().is_empty());
        }
    }

    /// A controller that answers a large request before reading its body (and never reads it):
    /// the answer comes back at once, and the connection is not kept.
    #[tokio::test]
    async fn early_answer_to_a_large_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend =
            Backend::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let _ = s.read(&mut buf).await;
            let answer = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\nno";
            s.write_all(answer).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await; // holds it, reads nothing more
        });
        let pool = pool();
        let body = vec![b'x'; 32 * 1024 * 1024];
        let write = |out: &mut BytesMut| {
            let mut w = h1::RequestWriter::start(out, &Method::POST, &["/"]);
            w.header("content-length", &[body.len().to_string().as_bytes()]);
            w.finish(&body);
        };
        let send = pool.send(&backend, &Method::POST, false, write);
        let resp = tokio::time::timeout(Duration::from_secs(10), send)
            .await
            .expect("answered before the body was read")
            .unwrap();
        assert_eq!(resp.status(), 401);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"no");
        assert!(pool.idle.lock().is_empty());
    }

    /// A reused connection the controller closed without answering: an idempotent request is
    /// sent again on a new one, another is not.
    #[tokio::test]
    async fn closed_while_idle_is_retried_when_idempotent() {
        let (backend, accepted) = controller(vec![OK, "<close>"], false).await;
        let pool = pool();
        assert_eq!(request(&pool, &backend, Method::GET).await.unwrap().1, "ok");
        // Second request: the reused connection closes; the retry gets OK on a new one.
        assert_eq!(request(&pool, &backend, Method::GET).await.unwrap().1, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        let write = |out: &mut BytesMut| {
            let mut w = h1::RequestWriter::start(out, &Method::POST, &["/"]);
            w.header("content-length", &[b"0"]);
            w.finish(b"");
        };
        let sent = pool.send(&backend, &Method::POST, false, write).await;
        assert!(matches!(sent, Err(SendError::Closed)));
    }
}
