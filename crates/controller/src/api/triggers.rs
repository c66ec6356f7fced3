//! `/api/v1/namespaces/{ns}/triggers[/{name}]`: list (`limit`, `skip`, `count`), get,
//! create/update (`?overwrite=true`; an update keeps the trigger's rules), delete (its rules
//! stay, orphaned). Firing (`POST`) is in [`crate::api::fire`].

use crate::api::extract::{Body, Caller, Params};
use crate::errors::ApiResult;
use crate::services::Triggers;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use whisk_core::limits::PAYLOAD_MAX_BYTES;
use whisk_core::trigger::TriggerPut;
use whisk_core::FullyQualifiedName;
use whisk_store::EntityKind;

/// The trigger `name` of `ns` (the caller's own; `_` stands for it), or 403.
pub fn trigger_name(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    let ns = caller.entitle(ns, &format!("triggers/{name}"))?;
    Ok(FullyQualifiedName::from_route(&ns, name)?)
}

/// `GET .../triggers`.
pub async fn list(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, "triggers")?;
    let limit = params.list_limit("triggers")?;
    let skip = params.skip("triggers")?;
    if params.bool("count", false)? {
        let n = triggers.count(EntityKind::Trigger, &ns).await?;
        return Ok(Json(json!({ "triggers": n })));
    }
    Ok(Json(Value::Array(
        triggers.list_triggers(&ns, skip, limit).await?,
    )))
}

/// `GET .../triggers/{name}`.
pub async fn get(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = trigger_name(&caller, &ns, &name)?;
    Ok(Json(json!(triggers.trigger(&fqn).await?)))
}

/// `PUT .../triggers/{name}` (`?overwrite=true` updates).
pub async fn put(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let fqn = trigger_name(&caller, &ns, &name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = TriggerPut::from_json(&body)?;
    Ok(Json(json!(
        triggers.put_trigger(&fqn, put, overwrite).await?
    )))
}

/// `DELETE .../triggers/{name}`: answers the deleted trigger.
pub async fn delete(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = trigger_name(&caller, &ns, &name)?;
    Ok(Json(json!(triggers.delete_trigger(&fqn).await?)))
}
