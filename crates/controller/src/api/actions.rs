//! `/api/v1/namespaces/{ns}/actions[/{pkg}/{name}]`: list, get, create/update, delete, invoke.
//! Packages do not exist as entities yet: `pkg/name` only becomes namespace `ns/pkg`.

use crate::api::answers::{accepted, completed};
use crate::api::extract::{json_object, Body, Caller, Params};
use crate::api::gang;
use crate::errors::{transaction_id, ApiError, ApiResult};
use crate::services::{merge_parameters, Entities, Invocation, Invocations, Invoked};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;
use whisk_core::entity::ActionPut;
use whisk_core::limits::{ACTION_MAX_BYTES, BLOCKING_WAIT_MAX_MS, PAYLOAD_MAX_BYTES};
use whisk_core::{FullyQualifiedName, WhiskError};
use whisk_store::EntityKind;

fn resolve(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    let ns = caller.entitle(ns, &format!("actions/{name}"))?;
    Ok(FullyQualifiedName::from_route(&ns, name)?)
}

/// `GET .../actions`.
pub async fn list(
    State(entities): State<Entities>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, "actions")?;
    let limit = params.list_limit("actions")?;
    let skip = params.skip("actions")?;
    if params.bool("count", false)? {
        let n = entities.count(EntityKind::Action, &ns).await?;
        return Ok(Json(json!({ "actions": n })));
    }
    Ok(Json(Value::Array(
        entities.list_actions(&ns, skip, limit).await?,
    )))
}

/// `GET .../actions/{name}` (`?code=false` omits the code).
pub async fn get(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let code = params.bool("code", true)?;
    Ok(Json(entities.action(&fqn).await?.doc.view(code)))
}

/// `PUT .../actions/{name}` (`?overwrite=true` updates).
pub async fn put(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<ACTION_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = ActionPut::from_json(&body)?;
    let action = entities.put_action(&fqn, put, overwrite).await?;
    Ok(Json(action.view(true)))
}

/// `DELETE .../actions/{name}`: answers the deleted action.
pub async fn delete(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    Ok(Json(entities.delete_action(&fqn).await?.view(true)))
}

/// `POST .../actions/{name}?blocking=&result=&timeout=`: invokes.
pub async fn invoke(
    State(entities): State<Entities>,
    State(invocations): State<Invocations>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Response> {
    let fqn = resolve(&caller, &ns, &name)?;
    let blocking = params.bool("blocking", false)?;
    let result_only = params.bool("result", false)?;
    let wait = match params.get("timeout") {
        None => BLOCKING_WAIT_MAX_MS,
        Some(t) => match t.parse::<u64>() {
            Ok(ms) if (1..=BLOCKING_WAIT_MAX_MS).contains(&ms) => ms,
            _ => {
                return Err(ApiError(WhiskError::bad_request(format!(
                    "Timeout must be number of milliseconds up to {BLOCKING_WAIT_MAX_MS}."
                ))))
            }
        },
    };
    let body = json_object(&body)?;
    let cached = entities
        .cached_action(&fqn)
        .await?
        .ok_or_else(|| ApiError(WhiskError::not_found()))?;
    let action = &cached.doc;
    let content = merge_parameters(action, body)?;
    if let Some(n) = params.get("instances") {
        let n = parse_instances(n)?;
        return gang::invoke(
            &invocations,
            &caller.0,
            &fqn,
            action,
            content,
            n,
            blocking,
            result_only,
            Duration::from_millis(wait),
        )
        .await;
    }
    whisk_core::peers::instance(&content, &fqn.to_string())?;
    let outcome = invocations
        .invoke(Invocation {
            identity: &caller.0,
            fqn: &fqn,
            action,
            content,
            blocking,
            wait: Duration::from_millis(wait),
            transaction_id: transaction_id(),
            gang_size: 0,
            cause: None,
            preadmitted: false,
        })
        .await?;
    Ok(match outcome {
        Invoked::Accepted(id) => accepted(&id),
        Invoked::Completed(a) => completed(&a, result_only),
    })
}

/// Largest gang one request may start.
pub const MAX_INSTANCES: u32 = 1024;

fn parse_instances(v: &str) -> ApiResult<u32> {
    match v.parse::<u32>() {
        Ok(n) if (1..=MAX_INSTANCES).contains(&n) => Ok(n),
        _ => Err(ApiError(WhiskError::bad_request(format!(
            "The value of 'instances' must be a number from 1 to {MAX_INSTANCES}."
        )))),
    }
}
