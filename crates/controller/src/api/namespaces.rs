//! `GET /api/v1/namespaces` (the caller's namespace), `GET .../{ns}/limits`, and the listing
//! routes of collections this controller stores but does not manage yet (packages, triggers,
//! rules), so that clients listing a namespace's contents get empty lists, not 404.

use crate::api::extract::{Caller, Params};
use crate::errors::ApiResult;
use crate::services::{Entities, Invocations};
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

async fn list_kind(
    entities: &Entities,
    caller: &Caller,
    ns: &str,
    kind: EntityKind,
    params: &Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(ns, kind.as_str())?;
    let limit = params.list_limit(kind.as_str())?;
    let skip = params.skip(kind.as_str())?;
    if params.bool("count", false)? {
        let n = entities.count(kind, &ns).await?;
        return Ok(Json(json!({ kind.as_str(): n })));
    }
    Ok(Json(Value::Array(
        entities.list(kind, &ns, skip, limit).await?,
    )))
}

/// `GET .../{ns}/packages`.
pub async fn packages(
    State(entities): State<Entities>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&entities, &caller, &ns, EntityKind::Package, &params).await
}

/// `GET .../{ns}/triggers`.
pub async fn triggers(
    State(entities): State<Entities>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&entities, &caller, &ns, EntityKind::Trigger, &params).await
}

/// `GET .../{ns}/rules`.
pub async fn rules(
    State(entities): State<Entities>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_kind(&entities, &caller, &ns, EntityKind::Rule, &params).await
}
