//! Limits as tower layers, each answering with OpenWhisk's error body:
//! - [`RateLimitLayer`]: a token bucket per key (client IP or namespace) → 429 + `Retry-After`;
//! - [`ConcurrencyLimitLayer`]: requests in flight per key → 429;
//! - [`InFlightLimitLayer`]: requests in flight through the whole gateway → 503.
//!
//! All three are one [`LimitLayer`] with a different [`Policy`]: the policy admits a request
//! (possibly with a guard held until the response) or answers it. [`LimitKey`] says how a
//! request is keyed. Each layer needs the request's context
//! ([`WithContext`](crate::request_id::WithContext)), its id set by
//! [`RequestIdLayer`](crate::request_id::RequestIdLayer).

use crate::error::{error_response, Body};
use crate::request_id::{HasContext, ResponseFuture};
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
    /// The namespace: the whole credential (a keyed hash of the `Authorization` header: a
    /// stranger who knows a namespace's uuid but not its key gets a bucket of their own), else
    /// the `{ns}` of `/api/v1/namespaces/{ns}/...` or `/api/v1/web/{ns}/...` (not `_`).
    /// Requests with neither are not limited.
    Namespace,
}

impl LimitKey {
    /// The key of `req`, if it has one.
    pub fn of<B: HasContext>(self, req: &Request<B>) -> Option<String> {
        match self {
            LimitKey::Client => Some(req.body().ctx().client.ip().to_string()),
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

/// `cred:<hash>` of the `Authorization` header, else `ns:<name>` from the path.
pub fn namespace_key<B>(req: &Request<B>) -> Option<String> {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        return Some(format!("cred:{:016x}", credential_hash(auth.as_bytes())));
    }
    let path = req.uri().path();
    let rest = path
        .strip_prefix("/api/v1/namespaces/")
        .or_else(|| path.strip_prefix("/api/v1/web/"))?;
    let ns = rest.split('/').next().unwrap_or("");
    (!ns.is_empty() && ns != "_" && ns.len() <= 256).then(|| format!("ns:{ns}"))
}

/// A hash of a credential under a key drawn at random once per process (SipHash): whoever does
/// not hold the credential can neither compute its bucket nor aim at it with another one.
fn credential_hash(credential: &[u8]) -> u64 {
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    KEY.get_or_init(Default::default).hash_one(credential)
}

fn request_id<B: HasContext>(req: &Request<B>) -> &str {
    req.body().ctx().id()
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

/// What a [`LimitLayer`] decides for each request.
pub trait Policy: Clone {
    /// Held while the request is in flight (dropped when its response is ready).
    type Guard: Send + 'static;
    /// Lets `req` through (with a guard to hold, or `None` when there is nothing to hold), or
    /// answers it.
    fn admit<B: HasContext>(&self, req: &Request<B>) -> Result<Option<Self::Guard>, Refusal>;
}

/// Two policies as one, `A` asked first: one layer instead of two in the stack (one hop and
/// one move of the request fewer); a refusal by `B` releases what `A` held.
impl<A: Policy, B: Policy> Policy for (A, B) {
    type Guard = (Option<A::Guard>, Option<B::Guard>);

    fn admit<R: HasContext>(&self, req: &Request<R>) -> Result<Option<Self::Guard>, Refusal> {
        let a = self.0.admit(req)?;
        let b = self.1.admit(req)?;
        Ok((a.is_some() || b.is_some()).then_some((a, b)))
    }
}

impl<P: Policy> LimitLayer<P> {
    /// This limit, then `next`, as one layer.
    pub fn and<Q: Policy>(self, next: LimitLayer<Q>) -> LimitLayer<(P, Q)> {
        LimitLayer {
            policy: (self.policy, next.policy),
        }
    }
}

/// The answer of a [`Policy`] to a request it does not let through.
pub type Refusal = Box<Response<Body>>;

/// A limit as a tower layer; see the module documentation.
#[derive(Clone)]
pub struct LimitLayer<P> {
    policy: P,
}

impl<S, P: Policy> Layer<S> for LimitLayer<P> {
    type Service = Limit<S, P>;
    fn layer(&self, inner: S) -> Limit<S, P> {
        Limit {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Service of [`LimitLayer`].
#[derive(Clone)]
pub struct Limit<S, P> {
    inner: S,
    policy: P,
}

impl<S, B: HasContext, P: Policy> Service<Request<B>> for Limit<S, P>
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
        match self.policy.admit(&req) {
            Ok(None) => self.inner.call(req),
            Ok(Some(guard)) => {
                let fut = self.inner.call(req);
                Box::pin(async move {
                    let resp = fut.await;
                    drop(guard);
                    resp
                })
            }
            Err(resp) => Box::pin(std::future::ready(Ok(*resp))),
        }
    }
}

/// A policy counting requests by a [`LimitKey`] in a `T` (none: no limit).
pub struct Keyed<T> {
    key: LimitKey,
    state: Option<Arc<T>>,
}

impl<T> Clone for Keyed<T> {
    fn clone(&self) -> Self {
        Self {
            key: self.key,
            state: self.state.clone(),
        }
    }
}

impl<T> Keyed<T> {
    /// The counting state and the key of `req`, when both exist.
    fn find<B: HasContext>(&self, req: &Request<B>) -> Option<(&Arc<T>, String)> {
        let state = self.state.as_ref()?;
        Some((state, self.key.of(req)?))
    }
}

/// Token buckets by key: 429 + `Retry-After`.
pub type RatePolicy = Keyed<RateLimiter>;

/// Rate limit layer.
pub type RateLimitLayer = LimitLayer<RatePolicy>;

impl RateLimitLayer {
    /// `per_second` requests (0 = unlimited) with bursts of `burst`, counted by `key`.
    pub fn new(key: LimitKey, per_second: f64, burst: u32) -> Self {
        let state = (per_second > 0.0).then(|| Arc::new(RateLimiter::new(per_second, burst)));
        LimitLayer {
            policy: Keyed { key, state },
        }
    }
}

impl Policy for RatePolicy {
    type Guard = ();

    fn admit<B: HasContext>(&self, req: &Request<B>) -> Result<Option<()>, Refusal> {
        let Some((limiter, key)) = self.find(req) else {
            return Ok(None);
        };
        let Err(wait) = limiter.try_acquire(&key) else {
            return Ok(None);
        };
        whisk_metrics::gateway_refused("rate");
        let message = format!(
            "Too many requests from this {} (allowed: {} per second, burst {}).",
            self.key.noun(),
            limiter.per_second,
            limiter.burst
        );
        let mut resp = error_response(StatusCode::TOO_MANY_REQUESTS, &message, request_id(req));
        let secs = wait.ceil().clamp(1.0, 3600.0) as u64;
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        Err(Box::new(resp))
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

/// Requests in flight by key: 429.
pub type ConcurrencyPolicy = Keyed<ConcurrencyCounter>;

/// Concurrency limit layer.
pub type ConcurrencyLimitLayer = LimitLayer<ConcurrencyPolicy>;

impl ConcurrencyLimitLayer {
    /// At most `max` requests (0 = unlimited) in flight per `key`.
    pub fn new(key: LimitKey, max: u32) -> Self {
        let state = (max > 0).then(|| Arc::new(ConcurrencyCounter::new(max)));
        LimitLayer {
            policy: Keyed { key, state },
        }
    }
}

impl Policy for ConcurrencyPolicy {
    type Guard = ConcurrencyGuard;

    fn admit<B: HasContext>(&self, req: &Request<B>) -> Result<Option<ConcurrencyGuard>, Refusal> {
        let Some((counter, key)) = self.find(req) else {
            return Ok(None);
        };
        match counter.try_acquire(key) {
            Ok(guard) => Ok(Some(guard)),
            Err(count) => {
                whisk_metrics::gateway_refused("concurrency");
                let message = format!(
                    "Too many concurrent requests in flight (count: {count}, allowed: {}).",
                    counter.max
                );
                Err(Box::new(error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &message,
                    request_id(req),
                )))
            }
        }
    }
}

/// Requests in flight through the whole gateway: 503.
#[derive(Clone)]
pub struct InFlightPolicy {
    max: usize,
    count: Arc<AtomicUsize>,
}

/// In-flight limit layer.
pub type InFlightLimitLayer = LimitLayer<InFlightPolicy>;

impl InFlightLimitLayer {
    /// At most `max` requests (0 = unlimited) in flight.
    pub fn new(max: usize) -> Self {
        LimitLayer {
            policy: InFlightPolicy {
                max,
                count: Arc::new(AtomicUsize::new(0)),
            },
        }
    }
}

/// One request counted by an [`InFlightPolicy`] until dropped.
pub struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Policy for InFlightPolicy {
    type Guard = InFlightGuard;

    fn admit<B: HasContext>(&self, req: &Request<B>) -> Result<Option<InFlightGuard>, Refusal> {
        if self.max == 0 {
            return Ok(None);
        }
        let before = self.count.fetch_add(1, Ordering::Relaxed);
        let guard = InFlightGuard(self.count.clone());
        if before >= self.max {
            whisk_metrics::gateway_refused("in_flight");
            return Err(Box::new(error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "System is overloaded, try again later.",
                request_id(req),
            )));
        }
        Ok(Some(guard))
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
        use base64::Engine;
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let key = |auth: &str| namespace_key(&req("/api/v1/namespaces/_/actions", Some(auth)));
        let alice = key(&basic("uuid-1:secret")).unwrap();
        assert!(alice.starts_with("cred:"), "{alice}");
        assert_eq!(key(&basic("uuid-1:secret")).unwrap(), alice);
        // The same uuid with another key is another bucket.
        assert_ne!(key(&basic("uuid-1:guess")).unwrap(), alice);
        assert_ne!(key(&basic("uuid-2:secret")).unwrap(), alice);
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
        assert!(namespace_key(&req("/api/v1", Some("Bearer x"))).is_some());
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
