//! `/api/v1/namespaces/{ns}/actions[/{pkg}/{name}]`: list, get, create/update, delete, invoke.
//! Packages do not exist as entities yet: `pkg/name` only becomes namespace `ns/pkg`.

use crate::api::extract::{json_object, Body, Params};
use crate::api::gang;
use crate::auth::Caller;
use crate::errors::{transaction_id, ApiError, ApiResult};
use crate::invoke::{merge_parameters, Invocation, Invoked};
use crate::service::Controller;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;
use whisk_core::entity::ActionPut;
use whisk_core::limits::{ACTION_MAX_BYTES, BLOCKING_WAIT_MAX_MS, PAYLOAD_MAX_BYTES};
use whisk_core::{
    now_ms, Action, Activation, ActivationId, ErrorKind, FullyQualifiedName, StatusCode as Status,
    WhiskError,
};
use whisk_store::{ActionStore, EntityKind, Revisioned, StoreError};

/// Header carrying the activation id of every invoke answer.
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

fn resolve(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    let ns = caller.entitle(ns, &format!("actions/{name}"))?;
    Ok(FullyQualifiedName::from_route(&ns, name)?)
}

async fn load(ctl: &Controller, fqn: &FullyQualifiedName) -> ApiResult<Revisioned<Action>> {
    ctl.store()
        .get_action(fqn)
        .await?
        .ok_or_else(|| ApiError(WhiskError::not_found()))
}

/// `GET .../actions`.
pub async fn list(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, "actions")?;
    let limit = params.list_limit("actions")?;
    let skip = params.skip("actions")?;
    if params.bool("count", false)? {
        let n = ctl.store().count_entities(EntityKind::Action, &ns).await?;
        return Ok(Json(json!({ "actions": n })));
    }
    let docs = ctl
        .store()
        .list_entities(EntityKind::Action, &ns, skip, limit)
        .await?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        match serde_json::from_value::<Action>(doc) {
            Ok(a) => out.push(a.summary()),
            Err(e) => {
                tracing::warn!(error = %e, namespace = %ns, "skipping a corrupt action document")
            }
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET .../actions/{name}` (`?code=false` omits the code).
pub async fn get(
    State(ctl): State<Controller>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let code = params.bool("code", true)?;
    Ok(Json(load(&ctl, &fqn).await?.doc.view(code)))
}

/// `PUT .../actions/{name}` (`?overwrite=true` updates).
pub async fn put(
    State(ctl): State<Controller>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<ACTION_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = ActionPut::from_json(&body)?;
    let existing = ctl.store().get_action(&fqn).await?;
    if existing.is_some() && !overwrite {
        return Err(ApiError(WhiskError::conflict()));
    }
    let action = put.apply(&fqn, existing.as_ref().map(|r| &r.doc), now_ms())?;
    check_blackbox_image(&action, &ctl.config().blackbox_images)?;
    let params_size = serde_json::to_vec(&action.parameters).map_or(0, |v| v.len());
    if params_size > PAYLOAD_MAX_BYTES {
        return Err(ApiError(WhiskError::too_large(format!(
            "Parameters larger than allowed: {params_size} > {PAYLOAD_MAX_BYTES} bytes."
        ))));
    }
    let doc = serde_json::to_value(&action).map_err(|e| WhiskError::internal(e.to_string()))?;
    let size = doc.to_string().len();
    if size > ACTION_MAX_BYTES {
        return Err(ApiError(WhiskError::too_large(format!(
            "Action larger than allowed: {size} > {ACTION_MAX_BYTES} bytes."
        ))));
    }
    let rev = existing.as_ref().map(|r| r.rev.as_str());
    match ctl
        .store()
        .put_entity(EntityKind::Action, &fqn.to_string(), &doc, rev)
        .await
    {
        Ok(_) => {
            ctl.invalidate_action(&fqn);
            Ok(Json(action.view(true)))
        }
        Err(StoreError::Conflict) if rev.is_none() => Err(ApiError(WhiskError::conflict())),
        Err(e) => Err(e.into()),
    }
}

/// Refuses (403) a blackbox action whose image is not on the platform's list: an arbitrary
/// image is arbitrary code with the image's own user and files, chosen by the tenant.
fn check_blackbox_image(action: &Action, allowed: &[String]) -> ApiResult<()> {
    let Some(image) = action.exec.image.as_deref() else {
        return Ok(());
    };
    if image_allowed(image, allowed) {
        return Ok(());
    }
    let list = if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    };
    Err(ApiError(WhiskError::new(
        ErrorKind::Forbidden,
        format!(
            "The image '{image}' is not allowed for blackbox actions on this platform (allowed: {list})."
        ),
    )))
}

pub use whisk_core::kinds::image_allowed;

/// `DELETE .../actions/{name}`: answers the deleted action.
pub async fn delete(
    State(ctl): State<Controller>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let existing = load(&ctl, &fqn).await?;
    ctl.store()
        .delete_entity(EntityKind::Action, &fqn.to_string(), Some(&existing.rev))
        .await?;
    ctl.invalidate_action(&fqn);
    Ok(Json(existing.doc.view(true)))
}

/// `POST .../actions/{name}?blocking=&result=&timeout=`: invokes.
pub async fn invoke(
    State(ctl): State<Controller>,
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
    let cached = ctl
        .cached_action(&fqn)
        .await?
        .ok_or_else(|| ApiError(WhiskError::not_found()))?;
    let action = &cached.doc;
    let content = merge_parameters(action, body)?;
    if let Some(n) = params.get("instances") {
        let n = parse_instances(n)?;
        return gang::invoke(
            &ctl,
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
    let outcome = ctl
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

fn with_id(mut resp: Response, id: &ActivationId) -> Response {
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        resp.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    resp
}

/// 202 `{"activationId"}`.
pub fn accepted(id: &ActivationId) -> Response {
    with_id(
        (StatusCode::ACCEPTED, Json(json!({ "activationId": id }))).into_response(),
        id,
    )
}

/// 200 (success), 502 (application or developer error) or 500 (whisk error) with the record's
/// view, or only its result.
pub fn completed(a: &Activation, result_only: bool) -> Response {
    let status = match a.response.status_code {
        Status::Success => StatusCode::OK,
        Status::ApplicationError | Status::DeveloperError => StatusCode::BAD_GATEWAY,
        Status::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = if result_only {
        a.response.result.clone().unwrap_or_else(|| json!({}))
    } else {
        a.view()
    };
    with_id((status, Json(body)).into_response(), &a.activation_id)
}
