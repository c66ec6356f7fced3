//! The innermost service: [`Proxy`] reads the request body (413 past the limit, 408 when it does
//! not arrive in time), forwards the request to a controller over a keep-alive pool, fails over
//! to the next controller when one cannot be reached, and streams the answer back — or answers
//! 502 (connection reset, invalid answer, no controller reachable) or 504 (no answer in time)
//! with OpenWhisk's error body.

use crate::backend::{Backend, Backends};
use crate::config::GatewayConfig;
use crate::error::{error_response, Body, BoxError};
use crate::request_id::{BackendName, RequestContext, ResponseFuture, X_REQUEST_ID};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower::Service;

/// Past the body limit, at most this much more is read and thrown away so that the client sees
/// the 413 instead of a reset connection; beyond it the connection is just closed.
const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// The pooled HTTP/1.1 client to the controllers.
pub type BackendClient = Client<HttpConnector, Full<Bytes>>;

/// Builds the keep-alive client to the controllers.
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
    client: BackendClient,
    max_body: u64,
    body_timeout: Duration,
    backend_timeout: Duration,
}

/// See the module documentation.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

impl Proxy {
    /// A proxy to `backends` with the limits and timeouts of `config`.
    pub fn new(config: &GatewayConfig, backends: Arc<Backends>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backends,
                client: backend_client(config),
                max_body: config.max_body_bytes,
                body_timeout: config.body_read_timeout,
                backend_timeout: config.backend_timeout,
            }),
        }
    }
}

impl<B> Service<Request<B>> for Proxy
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

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
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
    async fn forward<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let ctx = parts.extensions.get::<RequestContext>().cloned();
        let id = ctx
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_else(|| "".into());
        if parts.method == Method::CONNECT {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported.",
                &id,
            );
        }
        let declared = content_length(&parts.headers);
        let body = match read_body(body, declared, self.max_body, self.body_timeout).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                let msg = format!(
                    "The request content was too large (at most {} bytes are allowed).",
                    self.max_body
                );
                return closing(error_response(StatusCode::PAYLOAD_TOO_LARGE, &msg, &id));
            }
            Err(BodyError::Timeout) => {
                return closing(error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body was not received in time.",
                    &id,
                ))
            }
            Err(BodyError::Broken) => {
                return closing(error_response(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.",
                    &id,
                ))
            }
        };
        let headers = forward_headers(&parts, ctx.as_ref(), body.len());
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/");
        let idempotent = matches!(
            parts.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let order = self.backends.pick_order();
        let last = order.len() - 1;
        for (i, backend) in order.iter().enumerate() {
            let attempt = self.attempt(backend, &parts.method, path_and_query, &headers, &body);
            match tokio::time::timeout(self.backend_timeout, attempt).await {
                Err(_) => {
                    tracing::warn!(backend = %backend.name, request_id = %id, "controller timed out");
                    return error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "The controller did not answer in time.",
                        &id,
                    );
                }
                Ok(Ok(resp)) => return backend_response(resp, backend),
                Ok(Err(e)) if e.is_connect() => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "cannot connect to controller");
                    backend.set_healthy(false);
                }
                Ok(Err(e)) if idempotent && i < last => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "controller failed, retrying elsewhere");
                }
                Ok(Err(e)) => {
                    tracing::warn!(backend = %backend.name, request_id = %id, error = %e, "controller failed");
                    return error_response(
                        StatusCode::BAD_GATEWAY,
                        "The controller closed the connection or sent an invalid response.",
                        &id,
                    );
                }
            }
        }
        error_response(
            StatusCode::BAD_GATEWAY,
            "No controller could be reached.",
            &id,
        )
    }

    fn attempt(
        &self,
        backend: &Backend,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> hyper_util::client::legacy::ResponseFuture {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = headers.clone();
        match backend.uri(path_and_query) {
            Ok(uri) => *req.uri_mut() = uri,
            // The client answers a request without a host with an error that is not a
            // connect error: the caller turns it into a 502.
            Err(_) => *req.uri_mut() = http::Uri::from_static("/"),
        }
        if !req.headers().contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(backend.authority().as_str()) {
                req.headers_mut().insert(header::HOST, v);
            }
        }
        self.client.request(req)
    }
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

/// Reads the whole body, at most `max` bytes, before `timeout`.
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
    let mut too_large = declared.is_some_and(|n| n > max);
    let mut total: u64 = 0;
    if !too_large {
        if let Some(n) = declared {
            buf.reserve(n as usize);
        }
    }
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
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
            if total > max.saturating_add(DRAIN_CAP) {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if too_large {
        Err(BodyError::TooLarge)
    } else {
        Ok(buf.freeze())
    }
}

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
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

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client's headers less hop-by-hop ones, plus `Host` (from an HTTP/2 `:authority`),
/// `Content-Length`, `X-Forwarded-For` and `X-Forwarded-Proto`.
fn forward_headers(
    parts: &http::request::Parts,
    ctx: Option<&RequestContext>,
    body_len: usize,
) -> HeaderMap {
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    if body_len > 0 || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    }
    if !headers.contains_key(header::HOST) {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(header::HOST, v);
        }
    }
    if let Some(ctx) = ctx {
        let ip = ctx.client.ip().to_string();
        let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            headers.insert(X_FORWARDED_FOR.clone(), v);
        }
        let proto = if ctx.tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
        if let Ok(v) = HeaderValue::from_str(&ctx.id) {
            headers.insert(X_REQUEST_ID.clone(), v);
        }
    }
    headers
}

fn backend_response(resp: Response<hyper::body::Incoming>, backend: &Backend) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.extensions = http::Extensions::new();
    parts.extensions.insert(BackendName(backend.name.clone()));
    Response::from_parts(parts, body.map_err(BoxError::from).boxed())
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
            .header("authorization", "Basic abc")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let ctx = RequestContext {
            id: "rid".into(),
            client: SocketAddr::from(([192, 168, 1, 2], 5000)),
            tls: true,
        };
        let h = forward_headers(&parts, Some(&ctx), 3);
        assert!(h.get("x-secret").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h["host"], "gw.example:443");
        assert_eq!(h["content-length"], "3");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.168.1.2");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-request-id"], "rid");
        assert_eq!(h["authorization"], "Basic abc");
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
