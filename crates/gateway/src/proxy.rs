//! The innermost service: [`Proxy`] refuses what never goes to a controller (operational paths:
//! 404; `CONNECT`: 405; a declared body over the limit: 413, before a byte of it is read),
//! forwards the rest to a controller over its keep-alive [`Pool`] with the body streamed as it
//! arrives ([`RequestBody`]: cut at the limit, 413, or when the client stalls, 408), fails over
//! to the next controller when one cannot be reached, and streams the answer back — or answers
//! 502 (connection reset, invalid answer, no controller reachable) or 504 (no answer in time)
//! with OpenWhisk's error body.
//!
//! Traced when the process exports spans: each request is a server span continuing the
//! client's `traceparent`, and the controller gets that span's context in its place (when not
//! exporting, the client's `traceparent` passes on untouched, as any header).

use crate::backend::Backends;
use crate::body::{Body, BodyRefused, BoxError, RequestBody};
use crate::config::GatewayConfig;
use crate::error::error_response;
use crate::pool::Pool;
use crate::request_id::{BackendName, RequestContext, ResponseFuture, WithContext, X_REQUEST_ID};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
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
        .pool_max_idle_per_host(2)
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

    /// Closes controller connections idle past the idle timeout, every half of it, until
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

impl Service<Request<WithContext<Incoming>>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<WithContext<Incoming>>) -> ResponseFuture {
        let inner = self.inner.clone();
        let span = whisk_telemetry::exporting().then(|| whisk_telemetry::http::server_span(&req));
        let fut: ResponseFuture = Box::pin(async move {
            let start = std::time::Instant::now();
            let resp = inner.forward(req).await;
            whisk_metrics::gateway_request(resp.status().as_u16(), start.elapsed());
            Ok(resp)
        });
        match span {
            Some(span) => Box::pin(tracing::Instrument::instrument(fut, span)),
            None => fut,
        }
    }
}

/// Paths of the controllers' operational endpoints, which are not for the outside: the
/// gateway answers them 404 itself (matched after `%`-decoding, ignoring case and extra
/// leading slashes).
const REFUSED_PREFIXES: [&str; 3] = ["admin", "invokers", "metrics"];

/// Whether `path` is one of the [`REFUSED_PREFIXES`].
pub fn is_refused_path(path: &str) -> bool {
    let decoded;
    let path = if path.contains('%') {
        decoded = percent_decode(path);
        decoded.as_str()
    } else {
        path
    };
    let rest = path.trim_start_matches('/');
    REFUSED_PREFIXES.iter().any(|p| {
        rest.len() >= p.len() && rest.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Inner {
    async fn forward(&self, req: Request<WithContext<Incoming>>) -> Response<Body> {
        let (mut parts, WithContext { ctx, body }) = req.into_parts();
        let id = ctx.id();
        if parts.method == Method::CONNECT {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported.",
                id,
            );
        }
        if is_refused_path(parts.uri.path()) {
            return error_response(
                StatusCode::NOT_FOUND,
                "The requested resource does not exist.",
                id,
            );
        }
        if content_length(&parts.headers).is_some_and(|n| n > self.max_body) {
            return closing(self.too_large(id));
        }
        let body = RequestBody::limited(body, self.max_body, self.body_timeout);
        forwarded_headers(&mut parts.headers, &parts.uri, &ctx);
        if whisk_telemetry::exporting() {
            if let Some(cx) = whisk_telemetry::current_context() {
                whisk_telemetry::propagation::inject_headers(&cx, &mut parts.headers);
            }
        }
        parts.version = Version::HTTP_11;
        let target = std::mem::take(&mut parts.uri);
        let mut req = Request::from_parts(parts, body);

        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let backends = self.backends.all();
        for i in self.backends.order(turn) {
            let backend = &backends[i];
            let pool = &self.pools[i];
            if req.headers().get(header::HOST).is_none() {
                req.headers_mut()
                    .insert(header::HOST, backend.host().clone());
            }
            match backend.target(target.clone()) {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => {
                    return error_response(StatusCode::BAD_REQUEST, "Invalid request target.", id)
                }
            }
            // A reused connection that turns out closed gives the request back: one more try
            // on a new connection.
            for fresh in [false, true] {
                let mut sender = match pool.checkout(backend, fresh).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "cannot connect to controller");
                        backend.set_healthy(false);
                        break;
                    }
                };
                let sent = tokio::time::timeout(self.backend_timeout, sender.try_send_request(req));
                match sent.await {
                    Err(_) => {
                        tracing::warn!(backend = %backend.name, request_id = %id, "controller timed out");
                        return error_response(
                            StatusCode::GATEWAY_TIMEOUT,
                            "The controller did not answer in time.",
                            id,
                        );
                    }
                    Ok(Ok(resp)) => {
                        let checkin = pool.checkin(sender);
                        let (mut parts, body) = resp.into_parts();
                        strip_hop_by_hop(&mut parts.headers);
                        parts.headers.insert(X_REQUEST_ID.clone(), ctx.id.clone());
                        if self.access_log {
                            parts.extensions.insert(BackendName(backend.name.clone()));
                        }
                        return Response::from_parts(parts, Body::stream(body, checkin));
                    }
                    Ok(Err(mut e)) => {
                        if let Some(back) = e.take_message() {
                            req = back;
                            continue;
                        }
                        return self.failed(e.into_error(), &backend.name, &ctx);
                    }
                }
            }
        }
        error_response(
            StatusCode::BAD_GATEWAY,
            "No controller could be reached.",
            id,
        )
    }

    fn too_large(&self, id: &str) -> Response<Body> {
        let msg = format!(
            "The request content was too large (at most {} bytes are allowed).",
            self.max_body
        );
        error_response(StatusCode::PAYLOAD_TOO_LARGE, &msg, id)
    }

    /// The answer to a request the controller's connection failed on: the client's body was
    /// refused (413, 408), or the controller failed (502).
    fn failed(&self, e: hyper::Error, backend: &str, ctx: &RequestContext) -> Response<Body> {
        let id = ctx.id();
        match BodyRefused::of(&e) {
            Some(BodyRefused::TooLarge) => closing(self.too_large(id)),
            Some(BodyRefused::Timeout) => closing(error_response(
                StatusCode::REQUEST_TIMEOUT,
                "The request body was not received in time.",
                id,
            )),
            None if is_client_body_error(&e) => closing(error_response(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
                id,
            )),
            None => {
                tracing::warn!(backend, request_id = %id, error = %e, "controller failed");
                error_response(
                    StatusCode::BAD_GATEWAY,
                    "The controller closed the connection or sent an invalid response.",
                    id,
                )
            }
        }
    }
}

/// Whether the error came from reading the client's body (a broken chunk, a client gone).
fn is_client_body_error(e: &hyper::Error) -> bool {
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        if s.downcast_ref::<hyper::Error>().is_some() {
            return true;
        }
        cur = s.source();
    }
    false
}

/// Adds `Connection: close`: the rest of the request may still be on the wire.
fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Headers that belong to one connection and are never forwarded, either way.
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

fn is_hop_by_hop(name: &HeaderName) -> bool {
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
}

/// Drops the hop-by-hop headers and those `Connection` names (hyper frames each side's body
/// itself: the client's `Content-Length` stays, it has been checked against the body).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there is none: one pass over the names is cheaper than a lookup for each.
    if !headers.keys().any(is_hop_by_hop) {
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

/// The client's headers as the controller gets them: without the hop-by-hop ones; `Host` the
/// client's, else the request's authority (HTTP/2), else (later) the controller's;
/// `X-Request-ID`, `X-Forwarded-For` (appended to) and `X-Forwarded-Proto` the gateway's.
fn forwarded_headers(headers: &mut HeaderMap, uri: &http::Uri, ctx: &RequestContext) {
    strip_hop_by_hop(headers);
    let forwarded_for = match headers.get("x-forwarded-for") {
        None => ctx.client_ip.clone(),
        Some(prev) => {
            let mut v = prev.as_bytes().to_vec();
            v.extend_from_slice(b", ");
            v.extend_from_slice(ctx.client_ip.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| ctx.client_ip.clone())
        }
    };
    headers.insert(HeaderName::from_static("x-forwarded-for"), forwarded_for);
    headers.insert(X_REQUEST_ID.clone(), ctx.id.clone());
    let proto = if ctx.tls { "https" } else { "http" };
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(proto),
    );
    if !headers.contains_key(header::HOST) {
        if let Some(a) = uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                headers.insert(header::HOST, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            .header("expect", "100-continue")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        let mut ctx = RequestContext::new(SocketAddr::from(([192, 168, 1, 2], 5000)), true);
        ctx.id = HeaderValue::from_static("the-id");
        forwarded_headers(&mut parts.headers, &parts.uri, &ctx);
        let mut lines: Vec<String> = parts
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                "authorization: Basic abc",
                "host: gw.example:443",
                "x-forwarded-for: 10.0.0.1, 192.168.1.2",
                "x-forwarded-proto: https",
                "x-request-id: the-id",
            ]
        );
    }

    #[test]
    fn refused_paths() {
        for p in [
            "/admin",
            "/admin/identities/x",
            "/invokers",
            "/invokers/0/health",
            "/metrics",
            "//admin",
            "/%61dmin",
            "/ADMIN",
            "/%2Fmetrics",
        ] {
            assert!(is_refused_path(p), "{p}");
        }
        for p in ["/api/v1", "/api/v1/namespaces/admin", "/", "/%", "/%6"] {
            assert!(!is_refused_path(p), "{p}");
        }
    }
}
