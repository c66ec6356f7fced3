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
    own_entity(caller, ns, "triggers", name)
}

/// Entity `name` of `collection` in `ns`, which must be the caller's own (`_` stands for
/// it), else 403.
pub fn own_entity(
    caller: &Caller,
    ns: &str,
    collection: &str,
    name: &str,
) -> ApiResult<FullyQualifiedName> {
    let ns = caller.entitle(ns, &format!("{collection}/{name}"))?;
    Ok(FullyQualifiedName::from_route(&ns, name)?)
}

/// `GET .../triggers`.
pub async fn list(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_of(&triggers, &caller, &ns, &params, EntityKind::Trigger).await
}

/// A list route of triggers or rules: `limit`, `skip`, `count=true` (→ `{"triggers": N}`).
pub async fn list_of(
    triggers: &Triggers,
    caller: &Caller,
    ns: &str,
    params: &Params,
    kind: EntityKind,
) -> ApiResult<Json<Value>> {
    let collection = kind.as_str();
    let ns = caller.entitle(ns, collection)?;
    let limit = params.list_limit(collection)?;
    let skip = params.skip(collection)?;
    if params.bool("count", false)? {
        let n = triggers.count(kind, &ns).await?;
        return Ok(Json(json!({ collection: n })));
    }
    let page = match kind {
        EntityKind::Rule => triggers.list_rules(&ns, skip, limit).await?,
        _ => triggers.list_triggers(&ns, skip, limit).await?,
    };
    Ok(Json(Value::Array(page)))
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
