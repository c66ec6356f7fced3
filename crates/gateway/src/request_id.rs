//! The outermost layer: [`RequestIdLayer`] gives every request an `X-Request-ID` (the client's,
//! when it sent a sane one, else a fresh 32-hex id), stores it in the request's
//! [`RequestContext`] (which the server sends along with the body, [`WithContext`], holding the
//! connection facts) for the inner layers and the proxy (which sends it on, replacing the
//! client's, and echoes it on the answer, as [`error_response`](crate::error::error_response)
//! does on the gateway's own), and writes the access log.

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

/// Facts about a request that every layer may need: the server sends one with each request's
/// body ([`WithContext`]) with the connection facts (made once per connection, so that a
/// request costs one clone), and [`RequestIdLayer`] fills in the id.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (also the `code` of error bodies); empty until [`RequestIdLayer`].
    pub id: HeaderValue,
    /// The client's address.
    pub client: SocketAddr,
    /// The client's IP address as a header value (for `X-Forwarded-For`).
    pub client_ip: HeaderValue,
    /// Whether the request came over TLS.
    pub tls: bool,
}

impl RequestContext {
    /// The context of requests from `client`, before an id is given.
    pub fn new(client: SocketAddr, tls: bool) -> Self {
        let ip = client.ip().to_string();
        Self {
            id: HeaderValue::from_static(""),
            client,
            client_ip: HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("")),
            tls,
        }
    }

    /// The request id as text.
    pub fn id(&self) -> &str {
        self.id.to_str().unwrap_or("")
    }
}

/// A request body with its request's [`RequestContext`] alongside: how the context travels
/// through the layers (a field, where an extension would cost a map and a box per request).
#[derive(Debug)]
pub struct WithContext<B> {
    /// The request's context.
    pub ctx: RequestContext,
    /// The body as received.
    pub body: B,
}

/// What gives a request's context: [`WithContext`] bodies.
pub trait HasContext {
    /// The request's context.
    fn ctx(&self) -> &RequestContext;
}

impl<B> HasContext for WithContext<B> {
    fn ctx(&self) -> &RequestContext {
        &self.ctx
    }
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

impl<S, B> Service<Request<WithContext<B>>> for RequestId<S>
where
    S: Service<
        Request<WithContext<B>>,
        Response = Response<Body>,
        Error = Infallible,
        Future = ResponseFuture,
    >,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<WithContext<B>>) -> ResponseFuture {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if valid_id(v).is_some() => v.clone(),
            _ => new_id_value(),
        };
        let ctx = &mut req.body_mut().ctx;
        ctx.id = id.clone();
        let (client, tls) = (ctx.client, ctx.tls);
        let access = self.access_log.then(|| {
            (
                Instant::now(),
                client,
                tls,
                req.method().clone(),
                req.uri().path().to_string(),
            )
        });
        let fut = self.inner.call(req);
        // Without the access log there is nothing to do once the answer is ready (the proxy and
        // the error answers carry the id already): no wrapping future.
        let Some((start, client, tls, method, path)) = access else {
            return fut;
        };
        Box::pin(async move {
            let resp = fut.await?;
            let backend = resp
                .extensions()
                .get::<BackendName>()
                .map(|b| b.0.clone())
                .unwrap_or_else(|| "-".into());
            tracing::info!(
                target: "whisk_gateway::access",
                client = %client.ip(),
                tls,
                %method,
                path,
                status = resp.status().as_u16(),
                micros = start.elapsed().as_micros() as u64,
                backend = %backend,
                request_id = id.to_str().unwrap_or(""),
            );
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
    new_id_value().to_str().unwrap_or_default().to_string()
}

/// [`new_id`] as a header value, written without the formatting machinery.
fn new_id_value() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>().to_be_bytes();
    let mut hex = [0u8; 32];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(bits) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    // Owned bytes: the clones for the request and the response share them without a copy.
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(hex))
        .unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
        assert_eq!(valid_id(&HeaderValue::from_static("abc-1")), Some("abc-1"));
        assert_eq!(valid_id(&HeaderValue::from_static("a b")), None);
        assert_eq!(valid_id(&HeaderValue::from_static("")), None);
        let long = "x".repeat(129);
        assert_eq!(valid_id(&HeaderValue::from_str(&long).unwrap()), None);
    }
}
