//! `GET /api/v1/namespaces` (the caller's namespace), `GET .../{ns}/limits`, and the listing
//! routes of collections this controller stores but does not manage yet (packages, triggers,
//! rules), so that clients listing a namespace's contents get empty lists, not 404.

use crate::api::extract::Params;
use crate::auth::Caller;
use crate::errors::ApiResult;
use crate::service::Controller;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use whisk_store::EntityKind;

/// `GET /api/v1/namespaces`.
pub async fn list(caller: Caller) -> Json<Value> {
    Json(json!([caller.0.namespace]))
}

/// `GET /api/v1/namespaces/{ns}/limits`: the effective per-namespace limits.
pub async fn limits(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(ns): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.entitle(&ns, "limits")?;
    let l = caller.0.limits;
    let cfg = ctl.config();
    Ok(Json(json!({
        "invocationsPerMinute": l.invocations_per_minute.unwrap_or(cfg.invocations_per_minute),
        "concurrentInvocations": l.concurrent_invocations.unwrap_or(cfg.concurrent_invocations),
        "firesPerMinute": l.fires_per_minute.unwrap_or(cfg.fires_per_minute),
    })))
}

async fn list_kind(
    ctl: &Controller,
    caller: &Caller,
    ns: &str,
    kind: EntityKind,
    params: &Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(ns, kind.as_str())?;
    let limit = params.list_limit(kind.as_str())?;
    let skip = params.skip(kind.as_str())?;
    if params.bool("count", false)? {
        let n = ctl.store().count_entities(kind, &ns).await?;
        return Ok(Json(json!({ kind.as_str(): n })));
    }
    Ok(Json(Value::Array(
        ctl.store().list_entities(kind, &ns, skip, limit).await?,
    )))
}

/// `GET .../{ns}/packages`.
pub async fn packages(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&ctl, &caller, &ns, EntityKind::Package, &params).await
}

/// `GET .../{ns}/triggers`.
pub async fn triggers(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&ctl, &caller, &ns, EntityKind::Trigger, &params).await
}

/// `GET .../{ns}/rules`.
pub async fn rules(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&ctl, &caller, &ns, EntityKind::Rule, &params).await
}
