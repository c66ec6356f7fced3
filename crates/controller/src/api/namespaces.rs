//! `GET /api/v1/namespaces` (the caller's namespace) and `GET .../{ns}/limits`.

use crate::api::extract::Caller;
use crate::errors::ApiResult;
use crate::services::Invocations;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

/// `GET /api/v1/namespaces`.
pub async fn list(caller: Caller) -> Json<Value> {
    Json(json!([caller.0.namespace]))
}

/// `GET /api/v1/namespaces/{ns}/limits`: the effective per-namespace limits.
pub async fn limits(
    State(invocations): State<Invocations>,
    caller: Caller,
    Path(ns): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.entitle(&ns, "limits")?;
    let l = invocations.limits(&caller.0);
    Ok(Json(json!({
        "invocationsPerMinute": l.invocations_per_minute,
        "concurrentInvocations": l.concurrent_invocations,
        "firesPerMinute": l.fires_per_minute,
    })))
}
