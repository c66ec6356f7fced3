//! [`GatewayConfig`]: every setting of the gateway with its default, in one place. Durations are
//! integer milliseconds in configuration files and environment variables; a listen address may
//! be `""` or `"off"` to disable that listener.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of one gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GatewayConfig {
    /// Plain HTTP listener (OpenWhisk's nginx: port 80). `None` disables it.
    #[serde(deserialize_with = "optional_addr")]
    pub listen_http: Option<SocketAddr>,
    /// HTTPS listener (OpenWhisk's nginx: port 443). `None` disables it; when set,
    /// [`tls_cert`](Self::tls_cert) and [`tls_key`](Self::tls_key) must be readable.
    #[serde(deserialize_with = "optional_addr")]
    pub listen_https: Option<SocketAddr>,
    /// PEM certificate chain of the HTTPS listener (server certificate first).
    pub tls_cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the HTTPS listener.
    pub tls_key: PathBuf,
    /// Event-loop threads of [`run`](crate::run), each a single-threaded runtime with its own
    /// listening sockets (`SO_REUSEPORT`) and keep-alive pool, like nginx's worker processes;
    /// limits, health and the certificate are shared. 0 = one per CPU.
    pub workers: usize,
    /// Offer HTTP/2 through ALPN on the HTTPS listener (the plain listener speaks HTTP/1.1,
    /// and HTTP/2 to a client that starts with its preface).
    pub http2: bool,
    /// Base URLs of the controllers (`http://host:port`, optionally with a path prefix).
    pub backends: Vec<String>,
    /// Largest request body accepted; larger ones are answered 413. OpenWhisk's nginx allows
    /// 50 MB (`client_max_body_size 50M`) so that action code up to 48 MB can be PUT; the
    /// controller itself refuses invocation payloads over 1 MB.
    pub max_body_bytes: u64,
    /// Largest request head (request line and headers) accepted; larger ones are answered 431.
    pub max_header_bytes: usize,
    /// Most headers accepted in one request; more are answered 431.
    pub max_headers: usize,
    /// Most client connections open at once; a further one is answered 503 ("Too many
    /// connections, try again later.") and closed ([`crate::connections`]).
    pub max_connections: usize,
    /// Most requests in flight through the gateway; past it requests are answered 503.
    /// 0 disables the limit.
    pub max_in_flight: usize,
    /// Request rate limits (429).
    pub rate_limit: RateLimits,
    /// Concurrency limits (429).
    pub concurrency_limit: ConcurrencyLimits,
    /// Time a client has to send a complete request head, and the longest a keep-alive
    /// connection may sit idle between requests (slowloris protection).
    #[serde(with = "millis")]
    pub header_read_timeout: Duration,
    /// Time a client has to complete the TLS handshake.
    #[serde(with = "millis")]
    pub tls_handshake_timeout: Duration,
    /// Longest a client may pause while sending a request body (408 after it; nginx's
    /// `client_body_timeout`).
    #[serde(with = "millis")]
    pub body_read_timeout: Duration,
    /// Longest a write to a client may wait for it to read (the connection is closed after it;
    /// nginx's `send_timeout`).
    #[serde(with = "millis")]
    pub send_timeout: Duration,
    /// When the gateway closes a connection the client is still sending on (an answer given
    /// before the body was read: 413, 429, 404), it reads and drops what still comes for at
    /// most this long, so that the client can read the answer (nginx's `lingering_time`).
    /// 0 closes at once.
    #[serde(with = "millis")]
    pub lingering_time: Duration,
    /// Most bytes read and dropped by such a lingering close.
    pub lingering_bytes: u64,
    /// Time to open a TCP connection to a controller; past it the next controller is tried.
    #[serde(with = "millis")]
    pub backend_connect_timeout: Duration,
    /// Time a controller has to answer with a response head (504 after it). OpenWhisk's nginx
    /// uses 70 s: blocking invocations wait up to 60 s in the controller.
    #[serde(with = "millis")]
    pub backend_timeout: Duration,
    /// Idle keep-alive connections to controllers are closed after this long (below the
    /// controllers' own idle timeout, 30 s, so that the gateway is the one that closes them).
    #[serde(with = "millis")]
    pub backend_idle_timeout: Duration,
    /// Idle keep-alive connections kept per controller (nginx's `keepalive 512`).
    pub backend_max_idle: usize,
    /// Path probed on each controller by the health check (any answer below 500 is healthy).
    pub health_path: String,
    /// Interval of the active health checks.
    #[serde(with = "millis")]
    pub health_interval: Duration,
    /// Time a health probe may take.
    #[serde(with = "millis")]
    pub health_timeout: Duration,
    /// On shutdown, time given to requests in flight before connections are dropped.
    #[serde(with = "millis")]
    pub drain_timeout: Duration,
    /// Log one `tracing` event per request (target `whisk_gateway::access`, level info).
    pub access_log: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen_http: Some(SocketAddr::from(([0, 0, 0, 0], 80))),
            listen_https: None,
            tls_cert: PathBuf::from("certs/out/domain.crt"),
            tls_key: PathBuf::from("certs/out/domain.key"),
            workers: 0,
            http2: true,
            backends: vec!["http://127.0.0.1:3233".to_string()],
            max_body_bytes: 50 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            max_connections: 10_000,
            max_in_flight: 10_000,
            rate_limit: RateLimits::default(),
            concurrency_limit: ConcurrencyLimits::default(),
            header_read_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            lingering_time: Duration::from_secs(5),
            lingering_bytes: 64 * 1024 * 1024,
            backend_connect_timeout: Duration::from_secs(2),
            backend_timeout: Duration::from_secs(70),
            backend_idle_timeout: Duration::from_secs(20),
            backend_max_idle: 512,
            health_path: "/api/v1".to_string(),
            health_interval: Duration::from_secs(2),
            health_timeout: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            access_log: true,
        }
    }
}

/// Token-bucket request rate limits, keyed by client IP address and by namespace. The
/// namespace key is a hash of the whole `Authorization` header (so that only the holder of a
/// key spends its bucket: a uuid alone, which the gateway cannot verify, is not enough), or
/// else the `{ns}` of `/api/v1/namespaces/{ns}/...` and `/api/v1/web/{ns}/...`; requests with
/// neither are not counted against a namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Per client IP address.
    pub client: RateLimit,
    /// Per namespace.
    pub namespace: RateLimit,
}

/// One token bucket: `per_second` tokens are added each second up to `burst`; a request takes
/// one. `per_second = 0` disables the limit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    /// Sustained requests per second; 0 = unlimited.
    pub per_second: f64,
    /// Requests allowed at once after a quiet period (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// A limit of `per_second` requests with bursts of `burst`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// Whether this limit does anything.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0
    }
}

/// Requests in flight at once, per client IP address and per namespace (keys as in
/// [`RateLimits`]). 0 disables a limit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct ConcurrencyLimits {
    /// Per client IP address.
    pub client: u32,
    /// Per namespace.
    pub namespace: u32,
}

/// `"host:port"`, or `""` / `"off"` / `"none"` for no listener.
fn optional_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") | Some("off") | Some("none") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("listen address {s:?}: {e}"))),
    }
}

/// Durations as integer milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: GatewayConfig = serde_json::from_value(serde_json::json!({
            "listen_http": "off",
            "listen_https": "127.0.0.1:8443",
            "backend_timeout": 1500,
            "rate_limit": {"client": {"per_second": 5.0, "burst": 10}},
        }))
        .unwrap();
        assert_eq!(c.listen_http, None);
        assert_eq!(c.listen_https, Some("127.0.0.1:8443".parse().unwrap()));
        assert_eq!(c.backend_timeout, Duration::from_millis(1500));
        assert!(c.rate_limit.client.enabled());
        assert!(!c.rate_limit.namespace.enabled());
        assert_eq!(c.max_body_bytes, 50 * 1024 * 1024);
        assert!(
            serde_json::from_value::<GatewayConfig>(serde_json::json!({"listen_http": "x"}))
                .is_err()
        );
    }
}
