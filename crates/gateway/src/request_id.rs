//! The outermost layer: [`RequestIdLayer`] gives every request an `X-Request-ID` (the client's,
//! when it sent a sane one, else a fresh 32-hex id), stores it with the connection facts as a
//! [`RequestContext`] extension for the inner layers, echoes it on the response, and writes the
//! access log.

use crate::error::Body;
use http::{HeaderName, HeaderValue, Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Facts about a request that every layer may need; inserted by [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (also the `code` of error bodies).
    pub id: Arc<str>,
    /// The client's address.
    pub client: SocketAddr,
    /// Whether the request came over TLS.
    pub tls: bool,
}

/// Connection facts, inserted into each request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub client: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// The controller that answered, set as a response extension by the proxy (for the access log).
#[derive(Debug, Clone)]
pub struct BackendName(pub Arc<str>);

/// Boxed response future of the gateway's services.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send + 'static>>;

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct RequestIdLayer {
    access_log: bool,
}

impl RequestIdLayer {
    /// With or without the access log.
    pub fn new(access_log: bool) -> Self {
        Self { access_log }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;
    fn layer(&self, inner: S) -> RequestId<S> {
        RequestId {
            inner,
            access_log: self.access_log,
        }
    }
}

/// Service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
    access_log: bool,
}

impl<S, B> Service<Request<B>> for RequestId<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible, Future = ResponseFuture>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> ResponseFuture {
        let conn = req
            .extensions()
            .get::<ConnInfo>()
            .copied()
            .unwrap_or(ConnInfo {
                client: SocketAddr::from(([0, 0, 0, 0], 0)),
                tls: false,
            });
        let id: Arc<str> = match req.headers().get(&X_REQUEST_ID).and_then(valid_id) {
            Some(id) => id.into(),
            None => {
                let id = new_id();
                if let Ok(v) = HeaderValue::from_str(&id) {
                    req.headers_mut().insert(X_REQUEST_ID.clone(), v);
                }
                id.into()
            }
        };
        req.extensions_mut().insert(RequestContext {
            id: id.clone(),
            client: conn.client,
            tls: conn.tls,
        });
        let access = self.access_log.then(|| {
            (
                Instant::now(),
                req.method().clone(),
                req.uri().path().to_string(),
            )
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(X_REQUEST_ID.clone(), v);
            }
            if let Some((start, method, path)) = access {
                let backend = resp
                    .extensions()
                    .get::<BackendName>()
                    .map(|b| b.0.clone())
                    .unwrap_or_else(|| "-".into());
                tracing::info!(
                    target: "whisk_gateway::access",
                    client = %conn.client.ip(),
                    tls = conn.tls,
                    %method,
                    path,
                    status = resp.status().as_u16(),
                    micros = start.elapsed().as_micros() as u64,
                    backend = %backend,
                    request_id = %id,
                );
            }
            Ok(resp)
        })
    }
}

/// The client's id if it is 1..=128 visible ASCII characters.
fn valid_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(s)
}

/// A fresh 32-hex request id (128 random bits from the thread's generator: no system call).
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(new_id().len(), 32);
        assert_eq!(valid_id(&HeaderValue::from_static("abc-1")), Some("abc-1"));
        assert_eq!(valid_id(&HeaderValue::from_static("a b")), None);
        assert_eq!(valid_id(&HeaderValue::from_static("")), None);
        let long = "x".repeat(129);
        assert_eq!(valid_id(&HeaderValue::from_str(&long).unwrap()), None);
    }
}
