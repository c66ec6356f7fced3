//! [`EdgeIo`]: a client's TCP connection as an HTTP server at the edge (the gateway, the
//! controller's own listener) hands it to hyper, with the two things hyper
//! leaves to the socket's owner:
//! - a **send timeout**: a write (or flush) that cannot make progress for
//!   [`Linger::send_timeout`] fails, so a client that stops reading cannot hold a connection
//!   and its buffers forever (nginx's `send_timeout`);
//! - a **lingering close**: when the server ends a connection the client has not closed (an
//!   answer given before the body was read: 413, 429, 401; a refused head), the socket is
//!   shut down for writing (the client sees the answer end) and what the client still sends is
//!   read and thrown away — up to [`Linger::bytes`] and [`Linger::time`] — before it is closed.
//!   Closing a socket with unread data makes the kernel send a reset, which can destroy the
//!   answer before the client reads it (a client writing a large body then sees `EPIPE` or
//!   `ECONNRESET` instead of 413). nginx does the same (`lingering_close`).
//!
//! The connection slot (`max_connections`) is held until the lingering close ends.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// Send timeout and lingering close of a listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    /// Longest a write may wait for the client to read.
    pub send_timeout: Duration,
    /// Longest a lingering close reads what the client still sends (0: no lingering close).
    pub time: Duration,
    /// Most bytes a lingering close reads.
    pub bytes: u64,
}

/// A deadline that runs while a stream makes no progress: armed by the first `Pending`,
/// disarmed by progress. The send timeout here and the body idle timeouts of the gateway and
/// the controller are each one of these.
#[derive(Debug)]
pub struct Stall {
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl Stall {
    /// A deadline of `limit` without progress.
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            timer: None,
            armed: false,
        }
    }

    /// Call after the stream answered `Pending`: starts the deadline if it is not running,
    /// and says whether it has passed (if not, `cx` is woken when it does).
    pub fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.limit;
            match &mut self.timer {
                Some(t) => t.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        self.timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
    }

    /// Call after the stream made progress: the next `Pending` starts a new deadline.
    pub fn progressed(&mut self) {
        self.armed = false;
    }
}

/// See the module documentation.
pub struct EdgeIo {
    io: Option<TcpStream>,
    linger: Linger,
    /// Runs while a write is blocked.
    send: Stall,
    /// The client closed its side (or the socket failed): nothing to linger for.
    read_done: bool,
    slot: Option<OwnedSemaphorePermit>,
}

impl EdgeIo {
    /// Wraps an accepted connection; `slot` is released when the connection (and its lingering
    /// close) ends.
    pub fn new(io: TcpStream, linger: Linger, slot: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            io: Some(io),
            linger,
            send: Stall::new(linger.send_timeout),
            read_done: false,
            slot,
        }
    }

    fn io(&mut self) -> io::Result<&mut TcpStream> {
        self.io
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Called when a write or flush is pending: arms the send timer on the first one, and
    /// fails once it has run out.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.send.expired(cx) {
            return Poll::Pending;
        }
        self.read_done = true; // no lingering for a client that does not read
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "send timeout: the client does not read",
        ))
    }

    fn written<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.send.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => self.blocked(cx).map(Err),
        }
    }
}

impl AsyncRead for EdgeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let r = Pin::new(this.io()?).poll_read(cx, buf);
        match &r {
            Poll::Ready(Ok(())) if wanted && buf.filled().len() == before => this.read_done = true,
            Poll::Ready(Err(_)) => this.read_done = true,
            _ => {}
        }
        r
    }
}

impl AsyncWrite for EdgeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(this.io()?).poll_write(cx, buf);
        this.written(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(this.io()?).poll_write_vectored(cx, bufs);
        this.written(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(this.io()?).poll_flush(cx);
        this.written(r, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(this.io()?).poll_shutdown(cx);
        this.written(r, cx)
    }
}

impl Drop for EdgeIo {
    fn drop(&mut self) {
        let Some(io) = self.io.take() else { return };
        if self.read_done || self.linger.time.is_zero() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (linger, slot) = (self.linger, self.slot.take());
        runtime.spawn(async move {
            lingering_close(io, linger).await;
            drop(slot);
        });
    }
}

/// Shuts the write side, then reads and drops what the client sends until it closes, or
/// `linger.bytes` or `linger.time` are used up.
async fn lingering_close(mut io: TcpStream, linger: Linger) {
    let deadline = Instant::now() + linger.time;
    let _ = tokio::time::timeout_at(deadline, io.shutdown()).await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut read: u64 = 0;
    while read <= linger.bytes {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => read += n as u64,
            _ => return,
        }
    }
}
