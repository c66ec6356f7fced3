//! Bodies on their way through the gateway:
//! - [`Body`]: what the gateway answers with — bytes it has whole (its own error bodies), or a
//!   controller's answer streamed through as it arrives, the controller's connection going
//!   back to its pool when the answer has been read to its end;
//! - [`RequestBody`]: a client's body streamed to a controller, never gathered: cut with
//!   [`BodyRefused::TooLarge`] as soon as it passes the size limit, and with
//!   [`BodyRefused::Timeout`] when the client sends nothing for the idle timeout.

use crate::pool::Checkin;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use whisk_edge_io::Stall;

/// Error type of [`Body`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// See the module documentation.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream {
        body: Incoming,
        checkin: Option<Checkin>,
    },
}

impl Body {
    /// A body holding `bytes`.
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A controller's answer; `checkin` puts its connection back into the pool once the answer
    /// has been read to its end.
    pub(crate) fn stream(body: Incoming, checkin: Checkin) -> Self {
        let mut checkin = Some(checkin);
        if body.is_end_stream() {
            // Nothing to read (HEAD, 204, Content-Length: 0): the connection is free now.
            if let Some(c) = checkin.take() {
                c.put_back();
            }
        }
        Self {
            kind: Kind::Stream { body, checkin },
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Stream { body, checkin } => {
                let r = Pin::new(&mut *body).poll_frame(cx);
                match &r {
                    Poll::Ready(None) => {
                        if let Some(c) = checkin.take() {
                            c.put_back();
                        }
                    }
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                        if let Some(c) = checkin.take() {
                            c.put_back();
                        }
                    }
                    _ => {}
                }
                r.map(|o| o.map(|r| r.map_err(Into::into)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Stream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream { body, .. } => body.size_hint(),
        }
    }
}

/// Why the gateway stopped reading a client's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefused {
    /// It passed the size limit (413).
    #[error("the request body is larger than allowed")]
    TooLarge,
    /// The client sent nothing for the idle timeout (408).
    #[error("the request body did not arrive in time")]
    Timeout,
}

impl BodyRefused {
    /// The refusal behind a client connection's error, if that is what it is.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if let Some(r) = e.downcast_ref::<BodyRefused>() {
                return Some(*r);
            }
            cur = e.source();
        }
        None
    }
}

/// See the module documentation.
pub struct RequestBody {
    inner: Option<Box<Limited>>,
}

struct Limited {
    body: Incoming,
    left: u64,
    idle: Stall,
    done: bool,
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        Self { inner: None }
    }

    /// `body`, at most `max` bytes, each frame within `idle` of the one before.
    pub fn limited(body: Incoming, max: u64, idle: Duration) -> Self {
        if body.is_end_stream() {
            return Self::empty();
        }
        Self {
            inner: Some(Box::new(Limited {
                body,
                left: max,
                idle: Stall::new(idle),
                done: false,
            })),
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(l) = self.get_mut().inner.as_deref_mut() else {
            return Poll::Ready(None);
        };
        if l.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut l.body).poll_frame(cx) {
            Poll::Pending => {
                if !l.idle.expired(cx) {
                    return Poll::Pending;
                }
                l.done = true;
                Poll::Ready(Some(Err(BodyRefused::Timeout.into())))
            }
            Poll::Ready(None) => {
                l.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                l.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                l.idle.progressed();
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > l.left {
                    l.done = true;
                    return Poll::Ready(Some(Err(BodyRefused::TooLarge.into())));
                }
                l.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|l| l.done || l.body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            None => SizeHint::with_exact(0),
            Some(l) => l.body.size_hint(),
        }
    }
}
