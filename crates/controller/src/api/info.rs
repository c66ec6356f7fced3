//! Routes without authentication: `GET /` (platform limits and runtimes), `GET /api/v1` (API
//! info), `GET /ping`, and the controller-internal invoker views `/invokers*` (OpenWhisk's
//! `/invokers` and `/invokers/healthy/count`, plus `/invokers/details` with memory).

use crate::services::Invocations;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};
use whisk_core::{kinds, limits};

const MB: u64 = 1024 * 1024;

/// `GET /`.
pub async fn root(State(invocations): State<Invocations>) -> Json<Value> {
    let limits = invocations.default_limits();
    let runtimes = kinds::manifest();
    Json(json!({
        "description": "OpenWhisk",
        "support": {
            "github": "https://github.com/apache/openwhisk/issues",
            "slack": "http://slack.openwhisk.org",
        },
        "api_paths": ["/api/v1"],
        "limits": {
            "actions_per_minute": limits.invocations_per_minute,
            "triggers_per_minute": limits.fires_per_minute,
            "concurrent_actions": limits.concurrent_invocations,
            "sequence_length": 50,
            "min_action_duration": limits::TIMEOUT_MIN_MS,
            "max_action_duration": limits::TIMEOUT_MAX_MS,
            "default_action_duration": limits::TIMEOUT_DEFAULT_MS,
            "min_action_memory": limits::MEMORY_MIN_MB * MB,
            "max_action_memory": limits::MEMORY_MAX_MB * MB,
            "default_action_memory": limits::MEMORY_DEFAULT_MB * MB,
            "min_action_logs": 0,
            "max_action_logs": limits::LOGS_MAX_MB * MB,
            "default_action_logs": limits::LOGS_DEFAULT_MB * MB,
            "min_action_concurrency": 1,
            "max_action_concurrency": limits::concurrency_max(),
            "default_action_concurrency": limits::CONCURRENCY_DEFAULT,
        },
        "runtimes": runtimes,
    }))
}

/// `GET /api/v1`.
pub async fn api_v1() -> Json<Value> {
    Json(json!({
        "description": "OpenWhisk API",
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": env!("CARGO_PKG_VERSION"),
        "buildno": concat!("whisk-rs-", env!("CARGO_PKG_VERSION")),
        "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"},
    }))
}

/// `GET /ping`.
pub async fn ping() -> &'static str {
    "pong"
}

/// `GET /invokers`: `{"invoker0/0": "up", ...}`.
pub async fn invokers(State(invocations): State<Invocations>) -> Json<Value> {
    let map: Map<String, Value> = invocations
        .invokers()
        .states()
        .into_iter()
        .map(|(i, s)| (format!("invoker{i}/{i}"), Value::from(s)))
        .collect();
    Json(Value::Object(map))
}

/// `GET /invokers/details` (whisk-rs): `[{"name": "invoker0/0", "state": "up",
/// "userMemoryMB", "freeMemoryMB", "reservedMB", "containers", "lastPingMsAgo"}, ...]`.
pub async fn invoker_details(
    State(invocations): State<Invocations>,
) -> Json<Vec<crate::health::InvokerDetail>> {
    Json(invocations.invokers().details())
}

/// `GET /invokers/healthy/count`.
pub async fn healthy_count(State(invocations): State<Invocations>) -> Json<usize> {
    Json(invocations.invokers().healthy_count())
}
