//! [`Connections`]: the gateway's cap on client connections, and its count. Each open
//! connection holds one of `max_connections` slots (released when it and its lingering close
//! end). A connection accepted while every slot is taken is refused: it is answered
//! `503 {"error": "Too many connections, try again later.", "code": <request id>}` with
//! `Connection: close` ([`Refusal`]; over HTTPS after the handshake), and counted. Refusals
//! are bounded too: at most [`REFUSING_MAX`] are being answered at once, each within
//! [`REFUSAL_TIME`]; past that a connection is closed at once, unanswered.

use crate::error::{error_response, Body};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The message of a refused connection.
pub const TOO_MANY_CONNECTIONS: &str = "Too many connections, try again later.";

/// Most refused connections being answered at once.
pub const REFUSING_MAX: usize = 64;

/// Longest a refused connection is kept to be answered.
pub const REFUSAL_TIME: Duration = Duration::from_secs(5);

/// The connection slots of one gateway (shared by its event loops) and their counts.
pub struct Connections {
    max: usize,
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    refused: AtomicU64,
}

/// What to do with a connection just accepted.
pub(crate) enum Admission {
    /// Serve it; the slot is held until it ends.
    Serve(OwnedSemaphorePermit),
    /// Answer it 503 and close; the permit bounds the refusals being answered.
    Refuse(OwnedSemaphorePermit),
    /// Close it at once.
    Drop,
}

impl Connections {
    /// `max` slots (at least 1).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            slots: Arc::new(Semaphore::new(max)),
            refusing: Arc::new(Semaphore::new(REFUSING_MAX)),
            refused: AtomicU64::new(0),
        }
    }

    /// The cap (`max_connections`).
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    /// Connections refused because all slots were taken.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub(crate) fn admit(&self) -> Admission {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Admission::Serve(p);
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        whisk_metrics::gateway_refused("connections");
        match self.refusing.clone().try_acquire_owned() {
            Ok(p) => Admission::Refuse(p),
            Err(_) => Admission::Drop,
        }
    }
}

/// The hyper service of a refused connection: every request is answered 503, and the
/// connection closed.
#[derive(Clone, Copy)]
pub(crate) struct Refusal;

impl hyper::service::Service<Request<Incoming>> for Refusal {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn call(&self, _req: Request<Incoming>) -> Self::Future {
        let id = crate::request_id::new_id();
        let mut resp = error_response(StatusCode::SERVICE_UNAVAILABLE, TOO_MANY_CONNECTIONS, &id);
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        std::future::ready(Ok(resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_then_bounded_refusals() {
        let c = Connections::new(1);
        let Admission::Serve(slot) = c.admit() else {
            panic!("the first connection is served")
        };
        assert_eq!((c.open(), c.refused()), (1, 0));
        let mut refusing = Vec::new();
        for _ in 0..REFUSING_MAX {
            match c.admit() {
                Admission::Refuse(p) => refusing.push(p),
                _ => panic!("refused with an answer"),
            }
        }
        assert!(matches!(c.admit(), Admission::Drop));
        assert_eq!(c.refused(), REFUSING_MAX as u64 + 1);
        drop(slot);
        assert_eq!(c.open(), 0);
        assert!(matches!(c.admit(), Admission::Serve(_)));
    }
}
