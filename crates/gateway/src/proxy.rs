//! The innermost service: [`Proxy`] reads the request body (413 past the limit, 408 when it does
//! not arrive in time), forwards the request to a controller over a keep-alive pool, fails over
//! to the next controller when one cannot be reached, and streams the answer back — or answers
//! 502 (connection reset, invalid answer, no controller reachable) or 504 (no answer in time)
//! with OpenWhisk's error body.

use crate::backend::Backend;
use crate::backend::Backends;
use crate::config::GatewayConfig;
use crate::error::{error_response, Body, BoxError};
use crate::h1::{decimal, find_header, RequestWriter};
use crate::h1_server::{BodyRefused, DRAIN_CAP};
use crate::pool::{Pool, PooledBody, SendError};
use crate::request_id::{BackendName, RequestContext, ResponseFuture, WithContext, X_REQUEST_ID};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::Service;

/// Builds a pooled client to the controllers (the health checks' client).
pub fn backend_client<B>(config: &GatewayConfig) -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(config.backend_connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(config.backend_idle_timeout)
        .pool_max_idle_per_host(config.backend_max_idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

struct Inner {
    backends: Arc<Backends>,
    /// One keep-alive pool per controller, in the order of [`Backends::all`].
    pools: Vec<Arc<Pool>>,
    /// Round-robin turns of this proxy (one per event loop: no counter shared between them).
    turn: AtomicUsize,
    max_body: u64,
    body_timeout: Duration,
    backend_timeout: Duration,
    access_log: bool,
}

/// See the module documentation. Each event loop has its own (its own keep-alive pools).
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl Proxy {
    /// A proxy to `backends` with the limits and timeouts of `config`.
    pub fn new(config: &GatewayConfig, backends: Arc<Backends>) -> Self {
        let pools = backends
            .all()
            .iter()
            .map(|_| {
                Arc::new(Pool::new(
                    config.backend_max_idle,
                    config.backend_idle_timeout,
                    config.backend_connect_timeout,
                ))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                backends,
                pools,
                turn: AtomicUsize::new(0),
                max_body: config.max_body_bytes,
                body_timeout: config.body_read_timeout,
                backend_timeout: config.backend_timeout,
                access_log: config.access_log,
            }),
        }
    }

    /// Closes idle controller connections past the idle timeout, every half of it, until
    /// `stop`.
    pub async fn sweep_idle(self, stop: CancellationToken) {
        let Some(every) = self.inner.pools.first().map(|p| p.idle_timeout() / 2) else {
            return;
        };
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => self.inner.pools.iter().for_each(|p| p.sweep()),
            }
        }
    }
}

impl<B> Service<Request<WithContext<B>>> for Proxy
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<WithContext<B>>) -> ResponseFuture {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.forward(req).await) })
    }
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

impl Inner {
    async fn forward<B>(&self, req: Request<WithContext<B>>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, WithContext { ctx, body }) = req.into_parts();
        let id = ctx.id();
        if parts.method == Method::CONNECT {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported.",
                id,
            );
        }
        let body = if body.is_end_stream() {
            Bytes::new()
        } else {
            let declared = content_length(&parts.headers);
            // Boxed: a large future that most requests (those without a body) never need.
            match Box::pin(read_body(body, declared, self.max_body, self.body_timeout)).await {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    let msg = format!(
                        "The request content was too large (at most {} bytes are allowed).",
                        self.max_body
                    );
                    return closing(error_response(StatusCode::PAYLOAD_TOO_LARGE, &msg, id));
                }
                Err(BodyError::Timeout) => {
                    return closing(error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        "The request body was not received in time.",
                        id,
                    ))
                }
                Err(BodyError::Broken) => {
                    return closing(error_response(
                        StatusCode::BAD_REQUEST,
                        "The request body could not be read.",
                        id,
                    ))
                }
            }
        };
        if parts.headers.keys().any(|name| name == header::CONNECTION) {
            strip_hop_by_hop(&mut parts.headers);
        }
        let idempotent = matches!(
            parts.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let backends = self.backends.all();
        let mut order = self.backends.order(turn).peekable();
        while let Some(i) = order.next() {
            let backend = &backends[i];
            let last = order.peek().is_none();
            let write = |out: &mut BytesMut| {
                write_request(out, &parts, backend, Some(&ctx), &body);
            };
            let attempt = self.pools[i].send(backend, &parts.method, idempotent, write);
            match tokio::time::timeout(self.backend_timeout, attempt).await {
                Err(_) => {
                    tracing::warn!(backend = %backend.name, request_id = %id, "controller timed out");
                    return error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "The controller did not answer in time.",
                        id,
                    );
                }
                Ok(Ok(resp)) => return self.backend_response(resp, &backend.name, &ctx),
                Ok(Err(e @ SendError::Connect(_))) => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "cannot connect to controller");
                    backend.set_healthy(false);
                }
                Ok(Err(e)) if idempotent && !last => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "controller failed, retrying elsewhere");
                }
                Ok(Err(e)) => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "controller failed");
                    return error_response(
                        StatusCode::BAD_GATEWAY,
                        "The controller closed the connection or sent an invalid response.",
                        id,
                    );
                }
            }
        }
        error_response(
            StatusCode::BAD_GATEWAY,
            "No controller could be reached.",
            id,
        )
    }

    fn backend_response(
        &self,
        resp: Response<PooledBody>,
        backend: &Arc<str>,
        ctx: &RequestContext,
    ) -> Response<Body> {
        // The pool's answers carry no header map and no extensions: the controller's header
        // lines travel in the body, hop-by-hop ones already dropped by the parser (h1).
        let (mut parts, body) = resp.into_parts();
        parts.headers.insert(X_REQUEST_ID.clone(), ctx.id.clone());
        if self.access_log {
            parts.extensions.insert(BackendName(backend.clone()));
        }
        Response::from_parts(parts, body)
    }
}

/// Adds `Connection: close`: the rest of the request may still be on the wire.
fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    find_header(headers, &header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Reads the whole body, at most `max` bytes, before `timeout` (a body the HTTP/1.x server
/// refused says why as its error).
async fn read_body<B>(
    mut body: B,
    declared: Option<u64>,
    max: u64,
    timeout: Duration,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let deadline = Instant::now() + timeout;
    let mut buf = BytesMut::new();
    // A body in one frame (all of them from the HTTP/1.x server) is kept as it is: no copy.
    let mut first: Option<Bytes> = None;
    let mut too_large = declared.is_some_and(|n| n > max);
    let mut total: u64 = 0;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let e: BoxError = e.into();
                return Err(match e.downcast_ref::<BodyRefused>() {
                    Some(BodyRefused::TooLarge) => BodyError::TooLarge,
                    Some(BodyRefused::Timeout) => BodyError::Timeout,
                    None => BodyError::Broken,
                });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len() as u64;
        if total > max {
            too_large = true;
        }
        if too_large {
            buf.clear();
            first = None;
            if total > max.saturating_add(DRAIN_CAP) {
                break;
            }
        } else if buf.is_empty() && first.is_none() {
            first = Some(data);
        } else {
            if let Some(f) = first.take() {
                // Within the limit (else `too_large`): room for all of it at once.
                buf.reserve(declared.map_or(0, |n| n as usize));
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&data);
        }
    }
    if too_large {
        Err(BodyError::TooLarge)
    } else {
        Ok(first.unwrap_or_else(|| buf.freeze()))
    }
}

/// Headers that belong to one connection and are never forwarded.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there is none: one pass over the names is cheaper than a lookup for each.
    if !headers.keys().any(|name| {
        matches!(
            name.as_str(),
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "expect"
        )
    }) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Writes the controller's request for `parts` and `body` into `out`: the client's headers but
/// the hop-by-hop ones (those named in `Connection` are already gone), `Host` (the client's,
/// else the request's authority, else the controller's), the `Content-Length` of the body read,
/// and, with a context, `X-Request-ID`, `X-Forwarded-For` and `X-Forwarded-Proto` (replacing the
/// client's).
fn write_request(
    out: &mut BytesMut,
    parts: &http::request::Parts,
    backend: &Backend,
    ctx: Option<&RequestContext>,
    body: &[u8],
) {
    let headers = &parts.headers;
    let mut w = RequestWriter::start(out, &parts.method, &backend.target(&parts.uri));
    // One pass: what is forwarded, and the two headers looked at.
    let mut has_host = false;
    let mut forwarded_for = None;
    for (name, value) in headers {
        let skip = match name.as_str() {
            "content-length" | "connection" | "keep-alive" | "proxy-connection" | "te"
            | "trailer" | "transfer-encoding" | "upgrade" | "expect" => true,
            "x-forwarded-for" => {
                forwarded_for = forwarded_for.or(Some(value));
                ctx.is_some()
            }
            "x-request-id" | "x-forwarded-proto" => ctx.is_some(),
            "host" => {
                has_host = true;
                false
            }
            _ => false,
        };
        if !skip {
            w.header(name.as_str(), &[value.as_bytes()]);
        }
    }
    if !has_host {
        let host = match parts.uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            None => backend.host().as_bytes(),
        };
        w.header("host", &[host]);
    }
    if !body.is_empty() || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        let mut digits = [0u8; 20];
        w.header("content-length", &[decimal(body.len() as u64, &mut digits)]);
    }
    if let Some(ctx) = ctx {
        w.header("x-request-id", &[ctx.id.as_bytes()]);
        let ip = ctx.client_ip.as_bytes();
        match forwarded_for {
            Some(prev) => w.header("x-forwarded-for", &[prev.as_bytes(), b", ", ip]),
            None => w.header("x-forwarded-for", &[ip]),
        }
        let proto: &[u8] = if ctx.tls { b"https" } else { b"http" };
        w.header("x-forwarded-proto", &[proto]);
    }
    w.finish(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use std::net::SocketAddr;

    #[test]
    fn headers_forwarded() {
        let req = Request::post("https://gw.example:443/api/v1/x?y=1")
            .header("connection", "keep-alive, x-secret")
            .header("x-secret", "1")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-proto", "gopher")
            .header("x-request-id", "from-client")
            .header("authorization", "Basic abc")
            .header("transfer-encoding", "chunked")
            .header("content-length", "99")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let mut ctx = RequestContext::new(SocketAddr::from(([192, 168, 1, 2], 5000)), true);
        ctx.id = HeaderValue::from_static("the-id");
        let backend = Backend::parse("http://c:1/base").unwrap();
        let mut out = BytesMut::new();
        write_request(&mut out, &parts, &backend, Some(&ctx), b"abc");
        let text = String::from_utf8(out.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines: Vec<&str> = head.lines().collect();
        assert_eq!(lines.remove(0), "POST /base/api/v1/x?y=1 HTTP/1.1");
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "authorization: Basic abc",
                "content-length: 3",
                "host: gw.example:443",
                "x-forwarded-for: 10.0.0.1, 192.168.1.2",
                "x-forwarded-proto: https",
                "x-request-id: the-id",
            ]
        );
        assert_eq!(body, "abc");

        let (parts, ()) = Request::get("/x").body(()).unwrap().into_parts();
        write_request(&mut out, &parts, &backend, None, b"");
        assert_eq!(&out[..], b"GET /base/x HTTP/1.1\r\nhost: c:1\r\n\r\n");
        let mut digits = [0u8; 20];
        assert_eq!(decimal(0, &mut digits), b"0");
        assert_eq!(
            decimal(u64::MAX, &mut digits),
            u64::MAX.to_string().as_bytes()
        );
    }

    #[tokio::test]
    async fn body_limits() {
        let small = Full::new(Bytes::from_static(b"hello"));
        let ok = read_body(small, Some(5), 10, Duration::from_secs(5)).await;
        assert_eq!(ok.ok().unwrap(), Bytes::from_static(b"hello"));
        let big = Full::new(Bytes::from(vec![0u8; 11]));
        assert!(matches!(
            read_body(big, None, 10, Duration::from_secs(5)).await,
            Err(BodyError::TooLarge)
        ));
        let declared = Full::new(Bytes::from_static(b"x"));
        assert!(matches!(
            read_body(declared, Some(1000), 10, Duration::from_secs(5)).await,
            Err(BodyError::TooLarge)
        ));
    }
}
