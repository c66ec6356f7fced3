//! Test harness: controller stand-ins (each on its own thread and runtime, so that killing one
//! closes all of its sockets like a dead process would), a backend that resets every connection,
//! and a gateway started on 127.0.0.1:0.

#![allow(dead_code)]

use axum::extract::{Query, Request, State};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_gateway::{Gateway, GatewayConfig, RateLimit, RateLimits};

/// A controller stand-in: `GET /api/v1`, `/echo/...` (any method), `GET /sleep?ms=N`,
/// `GET /hang`, `GET /big` (32 MB).
pub struct TestBackend {
    pub addr: SocketAddr,
    pub name: String,
    /// Requests that reached `/sleep`.
    pub sleeping: Arc<AtomicUsize>,
    /// Requests served in all.
    pub served: Arc<AtomicUsize>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone)]
struct St {
    name: String,
    sleeping: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
}

async fn api(State(st): State<St>) -> Json<Value> {
    st.served.fetch_add(1, Ordering::SeqCst);
    Json(json!({"description": "OpenWhisk API", "api_version": "1.0.0", "backend": st.name}))
}

async fn echo(State(st): State<St>, req: Request) -> Json<Value> {
    st.served.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let headers: HashMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Json(json!({
        "backend": st.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
    }))
}

async fn sleep(State(st): State<St>, Query(q): Query<HashMap<String, u64>>) -> Json<Value> {
    st.served.fetch_add(1, Ordering::SeqCst);
    st.sleeping.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(100))).await;
    Json(json!({"slept": true, "backend": st.name}))
}

async fn hang() -> &'static str {
    std::future::pending::<()>().await;
    "never"
}

impl TestBackend {
    /// Waits until `n` requests have reached `/sleep`.
    pub async fn wait_sleeping(&self, n: usize) {
        let what = format!("{n} requests sleeping in backend {}", self.name);
        whisk_test_support::wait_until(&what, Duration::from_secs(10), || {
            self.sleeping.load(Ordering::SeqCst) == n
        })
        .await;
    }

    pub fn start(name: &str) -> Self {
        let st = St {
            name: name.to_string(),
            sleeping: Arc::new(AtomicUsize::new(0)),
            served: Arc::new(AtomicUsize::new(0)),
        };
        let (sleeping, served) = (st.sleeping.clone(), st.served.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = Router::new()
                    .route("/api/v1", get(api))
                    .route("/echo/{*rest}", any(echo))
                    .route("/sleep", get(sleep))
                    .route("/hang", get(hang))
                    .route("/big", get(|| async { vec![b'b'; 32 << 20] }))
                    .with_state(st);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = kill_rx => {}
                }
            });
            // Dropping the runtime drops every connection task: all sockets close at once.
            rt.shutdown_background();
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            name: name.to_string(),
            sleeping,
            served,
            kill: Some(kill_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the backend as a killed process would: listener and connections closed.
    pub fn kill(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A backend that accepts, reads a little, and resets every connection.
pub async fn start_reset_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                // Zero linger: drop sends a reset (no blocking with a zero timeout).
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                drop(stream);
            });
        }
    });
    addr
}

/// A config for tests: HTTP on 127.0.0.1:0, no HTTPS, fast health checks, no access log.
pub fn test_config(backends: Vec<String>) -> GatewayConfig {
    GatewayConfig {
        listen_http: Some("127.0.0.1:0".parse().unwrap()),
        listen_https: None,
        backends,
        health_interval: Duration::from_millis(100),
        health_timeout: Duration::from_millis(500),
        backend_connect_timeout: Duration::from_millis(500),
        access_log: false,
        drain_timeout: Duration::from_secs(10),
        ..GatewayConfig::default()
    }
}

/// [`test_config`] for `backend` with these rate limits.
pub fn rate_limited(backend: &TestBackend, rate_limit: RateLimits) -> GatewayConfig {
    GatewayConfig {
        rate_limit,
        ..test_config(vec![backend.url()])
    }
}

/// A bucket of `n` requests that (almost) never refills.
pub fn bucket(n: u32) -> RateLimit {
    RateLimit::new(0.001, n)
}

/// A running gateway.
pub struct TestGateway {
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub reloader: Option<Arc<whisk_gateway::tls::CertReloader>>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), whisk_gateway::GatewayError>>,
}

impl TestGateway {
    pub async fn start(config: GatewayConfig) -> Self {
        whisk_test_support::init_logs();
        let gw = Gateway::bind(config).await.expect("gateway binds");
        let shutdown = CancellationToken::new();
        let (http, https, reloader) = (gw.http_addr(), gw.https_addr(), gw.cert_reloader());
        let task = tokio::spawn(gw.serve(shutdown.clone()));
        Self {
            http,
            https,
            reloader,
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http.unwrap(), path)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `GET url` with `c`, its JSON answer.
pub async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    let r = c.get(url).send().await.unwrap();
    r.json().await.expect("a JSON answer")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Asserts an OpenWhisk error body and returns its message; `code` must be the request id.
pub async fn error_body(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let rid = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let v: Value = resp.json().await.expect("a JSON error body");
    let obj = v.as_object().expect("an object");
    assert_eq!(obj.len(), 2, "only error and code: {v}");
    assert_eq!(obj["code"].as_str(), rid.as_deref());
    obj["error"]
        .as_str()
        .expect("error is a string")
        .to_string()
}
