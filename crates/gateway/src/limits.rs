//! Limits as tower layers, each answering with OpenWhisk's error body:
//! - [`RateLimitLayer`]: a token bucket per key (client IP or namespace) → 429 + `Retry-After`;
//! - [`ConcurrencyLimitLayer`]: requests in flight per key → 429;
//! - [`InFlightLimitLayer`]: requests in flight through the whole gateway → 503.
//!
//! [`LimitKey`] says how a request is keyed. Each layer needs the [`RequestContext`] extension
//! set by [`RequestIdLayer`](crate::request_id::RequestIdLayer).

use crate::error::{error_response, Body};
use crate::request_id::{RequestContext, ResponseFuture};
use base64::Engine;
use http::{header, HeaderValue, Request, Response, StatusCode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};

/// What a limit counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    /// The client's IP address.
    Client,
    /// The namespace: the subject uuid of Basic credentials, else the `{ns}` of
    /// `/api/v1/namespaces/{ns}/...` or `/api/v1/web/{ns}/...` (not `_`). Requests with neither
    /// are not limited.
    Namespace,
}

impl LimitKey {
    /// The key of `req`, if it has one.
    pub fn of<B>(self, req: &Request<B>) -> Option<String> {
        match self {
            LimitKey::Client => req
                .extensions()
                .get::<RequestContext>()
                .map(|c| c.client.ip().to_string()),
            LimitKey::Namespace => namespace_key(req),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            LimitKey::Client => "client",
            LimitKey::Namespace => "namespace",
        }
    }
}

/// `subject:<uuid>` from Basic credentials, else `ns:<name>` from the path.
pub fn namespace_key<B>(req: &Request<B>) -> Option<String> {
    if let Some(uuid) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_subject)
    {
        return Some(format!("subject:{uuid}"));
    }
    let path = req.uri().path();
    let rest = path
        .strip_prefix("/api/v1/namespaces/")
        .or_else(|| path.strip_prefix("/api/v1/web/"))?;
    let ns = rest.split('/').next().unwrap_or("");
    (!ns.is_empty() && ns != "_" && ns.len() <= 256).then(|| format!("ns:{ns}"))
}

/// The part before `:` of `Basic base64(uuid:key)`.
fn basic_subject(value: &str) -> Option<String> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || b64.len() > 1024 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, _) = text.split_once(':')?;
    (!user.is_empty()).then(|| user.to_string())
}

fn request_id<B>(req: &Request<B>) -> String {
    req.extensions()
        .get::<RequestContext>()
        .map_or_else(String::new, |c| c.id().to_string())
}

const SHARDS: usize = 16;
/// A shard sweeps idle entries when it grows past this.
const SWEEP_AT: usize = 4096;

/// A map split in [`SHARDS`] locks.
struct Sharded<V> {
    shards: Vec<Mutex<HashMap<String, V>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<V> Sharded<V> {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, V>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }
}

/// Token buckets by key.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Sharded<(f64, Instant)>,
}

impl RateLimiter {
    /// `per_second` tokens a second, at most `burst` (at least 1) saved up.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Sharded::new(),
        }
    }

    /// Takes a token for `key`, or says how many seconds until one is there.
    pub fn try_acquire(&self, key: &str) -> Result<(), f64> {
        let now = Instant::now();
        let mut shard = self.buckets.shard(key).lock();
        if shard.len() >= SWEEP_AT && !shard.contains_key(key) {
            // Drop buckets that have refilled: they behave like absent ones.
            let (rate, burst) = (self.per_second, self.burst);
            shard.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < burst
            });
        }
        let (tokens, last) = shard.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.per_second)
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct RateLimitLayer {
    key: LimitKey,
    limiter: Option<Arc<RateLimiter>>,
}

impl RateLimitLayer {
    /// `per_second` requests (0 = unlimited) with bursts of `burst`, counted by `key`.
    pub fn new(key: LimitKey, per_second: f64, burst: u32) -> Self {
        let limiter = (per_second > 0.0).then(|| Arc::new(RateLimiter::new(per_second, burst)));
        Self { key, limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`RateLimitLayer`].
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    layer: RateLimitLayer,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible, Future = ResponseFuture>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        if let Some(limiter) = &self.layer.limiter {
            if let Some(key) = self.layer.key.of(&req) {
                if let Err(wait) = limiter.try_acquire(&key) {
                    let message = format!(
                        "Too many requests from this {} (allowed: {} per second, burst {}).",
                        self.layer.key.noun(),
                        limiter.per_second,
                        limiter.burst
                    );
                    let mut resp =
                        error_response(StatusCode::TOO_MANY_REQUESTS, &message, &request_id(&req));
                    let secs = wait.ceil().clamp(1.0, 3600.0) as u64;
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                    return Box::pin(async move { Ok(resp) });
                }
            }
        }
        self.inner.call(req)
    }
}

/// Requests in flight by key.
pub struct ConcurrencyCounter {
    max: u32,
    counts: Sharded<u32>,
}

impl ConcurrencyCounter {
    /// At most `max` at once per key.
    pub fn new(max: u32) -> Self {
        Self {
            max,
            counts: Sharded::new(),
        }
    }

    /// Counts one more for `key`, or returns the count already in flight.
    pub fn try_acquire(self: &Arc<Self>, key: String) -> Result<ConcurrencyGuard, u32> {
        let mut shard = self.counts.shard(&key).lock();
        let count = shard.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return Err(*count);
        }
        *count += 1;
        drop(shard);
        Ok(ConcurrencyGuard {
            counter: self.clone(),
            key,
        })
    }
}

/// One request counted by a [`ConcurrencyCounter`] until dropped.
pub struct ConcurrencyGuard {
    counter: Arc<ConcurrencyCounter>,
    key: String,
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        let mut shard = self.counter.counts.shard(&self.key).lock();
        if let Some(count) = shard.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                shard.remove(&self.key);
            }
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct ConcurrencyLimitLayer {
    key: LimitKey,
    counter: Option<Arc<ConcurrencyCounter>>,
}

impl ConcurrencyLimitLayer {
    /// At most `max` requests (0 = unlimited) in flight per `key`.
    pub fn new(key: LimitKey, max: u32) -> Self {
        let counter = (max > 0).then(|| Arc::new(ConcurrencyCounter::new(max)));
        Self { key, counter }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;
    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`ConcurrencyLimitLayer`].
#[derive(Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    layer: ConcurrencyLimitLayer,
}

impl<S, B> Service<Request<B>> for ConcurrencyLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible, Future = ResponseFuture>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let Some(counter) = &self.layer.counter else {
            return self.inner.call(req);
        };
        let Some(key) = self.layer.key.of(&req) else {
            return self.inner.call(req);
        };
        match counter.try_acquire(key) {
            Ok(guard) => {
                let fut = self.inner.call(req);
                Box::pin(async move {
                    let resp = fut.await;
                    drop(guard);
                    resp
                })
            }
            Err(count) => {
                let message = format!(
                    "Too many concurrent requests in flight (count: {count}, allowed: {}).",
                    counter.max
                );
                let resp =
                    error_response(StatusCode::TOO_MANY_REQUESTS, &message, &request_id(&req));
                Box::pin(async move { Ok(resp) })
            }
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct InFlightLimitLayer {
    max: usize,
    count: Arc<AtomicUsize>,
}

impl InFlightLimitLayer {
    /// At most `max` requests (0 = unlimited) in flight.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            count: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<S> Layer<S> for InFlightLimitLayer {
    type Service = InFlightLimit<S>;
    fn layer(&self, inner: S) -> InFlightLimit<S> {
        InFlightLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`InFlightLimitLayer`].
#[derive(Clone)]
pub struct InFlightLimit<S> {
    inner: S,
    layer: InFlightLimitLayer,
}

struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S, B> Service<Request<B>> for InFlightLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible, Future = ResponseFuture>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        if self.layer.max == 0 {
            return self.inner.call(req);
        }
        let before = self.layer.count.fetch_add(1, Ordering::Relaxed);
        let guard = InFlightGuard(self.layer.count.clone());
        if before >= self.layer.max {
            let resp = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "System is overloaded, try again later.",
                &request_id(&req),
            );
            return Box::pin(async move { Ok(resp) });
        }
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await;
            drop(guard);
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, auth: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(path);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn namespace_keys() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("uuid-1:secret");
        assert_eq!(
            namespace_key(&req(
                "/api/v1/namespaces/_/actions",
                Some(&format!("Basic {b64}"))
            )),
            Some("subject:uuid-1".into())
        );
        assert_eq!(
            namespace_key(&req("/api/v1/namespaces/guest/actions/x", None)),
            Some("ns:guest".into())
        );
        assert_eq!(
            namespace_key(&req("/api/v1/web/guest/default/hello.json", None)),
            Some("ns:guest".into())
        );
        assert_eq!(
            namespace_key(&req("/api/v1/namespaces/_/actions", None)),
            None
        );
        assert_eq!(namespace_key(&req("/api/v1", Some("Basic !!!"))), None);
        assert_eq!(namespace_key(&req("/api/v1", Some("Bearer x"))), None);
    }

    #[test]
    fn token_bucket() {
        let l = RateLimiter::new(1.0, 2);
        assert!(l.try_acquire("a").is_ok());
        assert!(l.try_acquire("a").is_ok());
        let wait = l.try_acquire("a").unwrap_err();
        assert!(wait > 0.0 && wait <= 1.0);
        assert!(l.try_acquire("b").is_ok());
    }

    #[test]
    fn concurrency_counter() {
        let c = Arc::new(ConcurrencyCounter::new(1));
        let g = c.try_acquire("a".into()).ok().unwrap();
        assert_eq!(c.try_acquire("a".into()).err(), Some(1));
        assert!(c.try_acquire("b".into()).is_ok());
        drop(g);
        assert!(c.try_acquire("a".into()).is_ok());
    }
}
