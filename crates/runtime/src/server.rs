//! The HTTP side: `POST /init`, `POST /run`, `GET /health`.
//!
//! One request touches the launcher at a time (a mutex around the state), except the runs of
//! a launcher that takes concurrent activations (Node.js): once initialized, those go to it
//! at once, each answered by its id (OpenWhisk's intra-container concurrency; the invoker
//! sends at most the action's `limits.concurrency`). After every `/run` and every failed `/init` the proxy writes [`SENTINEL`]
//! to its stdout and stderr, after the launcher has flushed the function's
//! output, so the invoker can cut the activation's logs there.

use std::future::Future;
use std::io::{self, Write};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::action;
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::launcher::{Launcher, LauncherError};
use crate::protocol;

/// The line that ends an activation's logs on stdout and stderr.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// The largest `/init` or `/run` body accepted (zipped code can be big).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Where the action is in its life.
#[derive(Debug)]
enum Phase {
    /// Waiting for `/init`.
    Fresh,
    /// Initialized; `/run` calls the function.
    Ready,
    /// `/init` failed with this message.
    Failed(String),
    /// The launcher exited.
    Gone,
}

#[derive(Debug)]
struct Slot {
    launcher: Launcher,
    phase: Phase,
}

/// One action proxy: its settings and its launcher.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    slot: Mutex<Slot>,
}

impl Proxy {
    /// Starts the launcher (prewarm) for `config`.
    pub fn start(config: ProxyConfig) -> Result<Arc<Self>, LauncherError> {
        let launcher = Launcher::spawn(&config)?;
        Ok(Arc::new(Proxy {
            config,
            slot: Mutex::new(Slot {
                launcher,
                phase: Phase::Fresh,
            }),
        }))
    }

    /// The settings this proxy runs with.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Handles a `/init` body; on failure the sentinels are written.
    pub async fn init(&self, body: &[u8]) -> Result<(), ProxyError> {
        let mut slot = self.slot.lock().await;
        let result = self.init_locked(&mut slot, body).await;
        if let Err(err) = &result {
            tracing::debug!(error = %err, "init failed");
            write_sentinels();
        }
        result
    }

    async fn init_locked(&self, slot: &mut Slot, body: &[u8]) -> Result<(), ProxyError> {
        if !matches!(slot.phase, Phase::Fresh) {
            return Err(ProxyError::AlreadyInitialized);
        }
        let init = protocol::parse_init(body)?;
        let dir = self.config.action_dir();
        let launcher = self.config.launcher;
        let (dir, init) = tokio::task::spawn_blocking(move || {
            action::materialize(launcher, &dir, &init).map(|()| (dir, init))
        })
        .await
        .map_err(|err| ProxyError::Internal(format!("init task failed: {err}")))??;
        let answer = match slot.launcher.init(&dir, &init).await {
            Ok(answer) => answer,
            Err(err) => return Err(launcher_failed(slot, err)),
        };
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
        if answer.get("ok") == Some(&Value::Bool(true)) {
            slot.phase = Phase::Ready;
            return Ok(());
        }
        let message = match answer.get("error") {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => format!("The launcher answered init with {answer}"),
        };
        slot.phase = Phase::Failed(message.clone());
        Err(ProxyError::InitFailed(message))
    }

    /// Handles a `/run` body and returns the result object's JSON text;
    /// the sentinels are always written afterwards.
    pub async fn run(&self, body: &[u8]) -> Result<Vec<u8>, ProxyError> {
        let mut slot = self.slot.lock().await;
        if let (Phase::Ready, Some(io)) = (&slot.phase, slot.launcher.concurrent()) {
            drop(slot);
            let result = match protocol::parse_run(body) {
                Ok(run) => match io.run(&run).await {
                    Ok(answer) => check_answer(answer, false),
                    Err(err) => Err(launcher_failed(&mut *self.slot.lock().await, err)),
                },
                Err(err) => Err(err),
            };
            write_sentinels();
            return result;
        }
        let result = Self::run_locked(&mut slot, body).await;
        write_sentinels();
        result
    }

    async fn run_locked(slot: &mut Slot, body: &[u8]) -> Result<Vec<u8>, ProxyError> {
        match &slot.phase {
            Phase::Ready => {}
            Phase::Fresh => return Err(ProxyError::NotInitialized),
            Phase::Failed(why) => {
                return Err(ProxyError::InitFailed(format!(
                    "The action failed to initialize: {why}"
                )))
            }
            Phase::Gone => return Err(ProxyError::Gone),
        }
        let run = protocol::parse_run(body)?;
        let answer = match slot.launcher.run(&run).await {
            Ok(answer) => answer,
            Err(err) => return Err(launcher_failed(slot, err)),
        };
        check_answer(answer, slot.launcher.returns_arrays())
    }

    /// Kills the launcher (at shutdown).
    pub async fn stop(&self) {
        let mut slot = self.slot.lock().await;
        slot.launcher.kill().await;
        slot.phase = Phase::Gone;
    }
}

/// A result must be a JSON object (or an array, for the native launcher).
fn check_answer(answer: Vec<u8>, arrays: bool) -> Result<Vec<u8>, ProxyError> {
    match answer.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(answer),
        Some(b'[') if arrays => Ok(answer),
        _ => Err(ProxyError::NotADictionary),
    }
}

fn launcher_failed(slot: &mut Slot, err: LauncherError) -> ProxyError {
    tracing::debug!(error = %err, "launcher failed");
    match err {
        LauncherError::Exited(_) => {
            slot.phase = Phase::Gone;
            ProxyError::Exited
        }
        // The native launcher's process of one activation: the next may run.
        LauncherError::Killed(_) => ProxyError::Exited,
        LauncherError::NoResult => ProxyError::NoResult,
        other => ProxyError::Internal(other.to_string()),
    }
}

/// Writes the end-of-activation line to stdout and stderr.
fn write_sentinels() {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{SENTINEL}");
    let _ = out.flush();
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{SENTINEL}");
    let _ = err.flush();
}

/// The proxy's routes. `/init` and `/run` answer 403 to a caller without the container's
/// secret (when the proxy has one), before their body is read.
pub fn router(proxy: Arc<Proxy>) -> Router {
    let guarded = Router::new()
        .route("/init", post(init))
        .route("/run", post(run))
        .route_layer(middleware::from_fn_with_state(proxy.clone(), invoker_only));
    guarded
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(proxy)
}

/// Lets a request through only with `Authorization: Bearer <secret>` of this container.
async fn invoker_only(State(proxy): State<Arc<Proxy>>, request: Request, next: Next) -> Response {
    if let Some(secret) = &proxy.config.secret {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !same_bytes(presented, secret.as_bytes()) {
            return ProxyError::NotTheInvoker.into_response();
        }
    }
    next.run(request).await
}

/// Compares in time that depends on the lengths only, not on where the bytes differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Serves `proxy` on `listener` until `shutdown` resolves, then kills the
/// launcher.
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, router(proxy.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    proxy.stop().await;
    result
}

async fn init(State(proxy): State<Arc<Proxy>>, body: Bytes) -> Response {
    match proxy.init(&body).await {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn run(State(proxy): State<Arc<Proxy>>, body: Bytes) -> Response {
    match proxy.run(&body).await {
        Ok(result) => ([(CONTENT_TYPE, "application/json")], result).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}
