//! The controllers behind the gateway: [`Backends`] parses their base URLs, hands them out in
//! round-robin order (healthy ones first), and keeps their health up to date — passively (a
//! failed connect marks a controller down at once) and actively ([`Backends::run_health_checks`]
//! probes each one every interval and brings it back when it answers).

use crate::error::GatewayError;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One controller.
#[derive(Debug)]
pub struct Backend {
    /// The base URL as configured (for logs).
    pub name: Arc<str>,
    authority: Authority,
    /// `host:port` to connect to (port 80 when the URL has none).
    addr: String,
    /// `Host` sent when the client gave none.
    host: HeaderValue,
    /// Path prefix without a trailing `/` (usually empty).
    prefix: String,
    healthy: AtomicBool,
}

impl Backend {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(url: &str) -> Result<Self, GatewayError> {
        let bad = |why: &str| GatewayError::Config(format!("backend {url:?}: {why}"));
        let uri: Uri = url.trim().parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(bad("only http:// controllers are supported"));
        }
        let authority = uri.authority().cloned().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query is not allowed"));
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?;
        let addr = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        Ok(Self {
            name: url.trim().trim_end_matches('/').into(),
            authority,
            addr,
            host,
            prefix,
            healthy: AtomicBool::new(true),
        })
    }

    /// The URI of `path_and_query` on this controller.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.prefix, path_and_query))
            .build()
    }

    /// The request target of `uri` on this controller: the origin form (path and query) with
    /// the path prefix added (`uri` itself when it is in origin form and there is no prefix).
    pub fn target(&self, uri: Uri) -> Result<Uri, http::Error> {
        if self.prefix.is_empty() && uri.scheme().is_none() && uri.authority().is_none() {
            return Ok(uri);
        }
        let pq = uri.path_and_query().map_or("", |pq| pq.as_str());
        let slash = if pq.starts_with('/') || (pq == "*" && self.prefix.is_empty()) {
            ""
        } else {
            "/"
        };
        Ok(Uri::try_from(format!("{}{slash}{pq}", self.prefix))?)
    }

    /// `host:port` to connect to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `host:port` of this controller.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// `host:port` of this controller as a `Host` header value.
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Whether the last probe or request reached it.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records a probe or request outcome; logs transitions.
    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            if healthy {
                tracing::info!(backend = %self.name, "controller is up");
            } else {
                tracing::warn!(backend = %self.name, "controller is down");
            }
        }
    }
}

/// Most controllers one gateway routes to.
pub const MAX_BACKENDS: usize = 64;

/// The controllers, in configured order.
#[derive(Debug)]
pub struct Backends {
    list: Vec<Arc<Backend>>,
    next: AtomicUsize,
}

impl Backends {
    /// Parses every base URL; at least one, at most [`MAX_BACKENDS`], are needed.
    pub fn new(urls: &[String]) -> Result<Self, GatewayError> {
        if urls.is_empty() {
            return Err(GatewayError::Config("no backends configured".into()));
        }
        if urls.len() > MAX_BACKENDS {
            return Err(GatewayError::Config(format!(
                "at most {MAX_BACKENDS} backends are supported"
            )));
        }
        let list = urls
            .iter()
            .map(|u| Backend::parse(u).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            list,
            next: AtomicUsize::new(0),
        })
    }

    /// All controllers.
    pub fn all(&self) -> &[Arc<Backend>] {
        &self.list
    }

    /// The order to try controllers in for one request: healthy ones starting at the next
    /// round-robin position, then the unhealthy ones (in case their state is stale).
    pub fn pick_order(&self) -> Vec<Arc<Backend>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        self.order(turn).map(|i| self.list[i].clone()).collect()
    }

    /// [`pick_order`](Self::pick_order) as indexes into [`all`](Self::all), for round-robin
    /// position `turn` (the caller counts turns, so that event loops share no counter), without
    /// allocating: health is read once, when this is called.
    pub fn order(&self, turn: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.list.len();
        let start = if n == 1 { 0 } else { turn % n };
        let healthy = self
            .list
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, b)| m | (u64::from(b.is_healthy()) << i));
        let rotated = move || (0..n).map(move |i| (start + i) % n);
        let up = rotated().filter(move |i| healthy & (1 << i) != 0);
        let down = rotated().filter(move |i| healthy & (1 << i) == 0);
        up.chain(down)
    }

    /// Probes every controller each `interval` until `shutdown`.
    pub async fn run_health_checks(
        self: Arc<Self>,
        client: Client<HttpConnector, Empty<Bytes>>,
        path: String,
        interval: Duration,
        timeout: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let probes = self.list.iter().map(|b| {
                let client = client.clone();
                let path = path.clone();
                async move {
                    let ok = match b.uri(&path) {
                        Ok(uri) => probe(&client, uri, timeout).await,
                        Err(_) => false,
                    };
                    b.set_healthy(ok);
                }
            });
            futures::future::join_all(probes).await;
        }
    }
}

async fn probe(client: &Client<HttpConnector, Empty<Bytes>>, uri: Uri, timeout: Duration) -> bool {
    let Ok(req) = Request::get(uri).body(Empty::new()) else {
        return false;
    };
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(resp)) => resp.status().as_u16() < 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert!(Backends::new(&[]).is_err());
        assert!(Backend::parse("https://x:1").is_err());
        assert!(Backend::parse("nonsense url").is_err());
        let b = Backend::parse("http://127.0.0.1:3233/base/").unwrap();
        assert_eq!(
            b.uri("/api/v1?x=1").unwrap().to_string(),
            "http://127.0.0.1:3233/base/api/v1?x=1"
        );
        let bs = Backends::new(&["http://a:1".into(), "http://b:2".into()]).unwrap();
        let first = bs.pick_order()[0].name.clone();
        let second = bs.pick_order()[0].name.clone();
        assert_ne!(first, second);
        bs.all()[0].set_healthy(false);
        for _ in 0..3 {
            let order = bs.pick_order();
            assert_eq!(&*order[0].name, "http://b:2");
            assert_eq!(order.len(), 2);
        }
        for turn in 0..3 {
            assert_eq!(bs.order(turn).collect::<Vec<_>>(), [1, 0]);
        }
        bs.all()[0].set_healthy(true);
        assert_eq!(bs.order(0).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(bs.order(1).collect::<Vec<_>>(), [1, 0]);
        let target = |b: &Backend, uri: &str| b.target(uri.parse().unwrap()).unwrap().to_string();
        assert_eq!(target(&b, "http://gw:1/api/v1?x=1"), "/base/api/v1?x=1");
        let plain = Backend::parse("http://127.0.0.1:3233").unwrap();
        for uri in ["/api/v1?x=1", "https://gw/api/v1?x=1"] {
            assert_eq!(target(&plain, uri), "/api/v1?x=1");
        }
        assert_eq!(target(&plain, "*"), "*");
        assert_eq!(target(&plain, "http://gw"), "/");
        assert_eq!(Backend::parse("http://c").unwrap().addr(), "c:80");
        assert_eq!(plain.addr(), "127.0.0.1:3233");
    }
}
