//! `/api/v1/namespaces/{ns}/rules[/{name}]`: list (`limit`, `skip`, `count`), get (with the
//! status read from the trigger), create/update (`{"trigger": "/ns/t", "action": "/ns/a"}`;
//! both must exist — 400 `trigger /ns/t does not exist` otherwise; the trigger must be the
//! caller's, the action one the caller may invoke), delete, and `POST {"status": "active" |
//! "inactive"}`. What they do to trigger documents is in [`crate::services::Triggers`].

use crate::api::extract::{json_object, Body, Caller, Params};
use crate::api::triggers::{list_of, own_entity};
use crate::errors::ApiResult;
use crate::services::{rule_does_not_exist as does_not_exist, Entities, Triggers};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use whisk_core::limits::PAYLOAD_MAX_BYTES;
use whisk_core::rule::RulePut;
use whisk_core::trigger::RuleStatus;
use whisk_core::{now_ms, ErrorKind, FullyQualifiedName, WhiskError};
use whisk_store::EntityKind;

fn rule_name(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    own_entity(caller, ns, "rules", name)
}

/// `GET .../rules`.
pub async fn list(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    list_of(&triggers, &caller, &ns, &params, EntityKind::Rule).await
}

/// `GET .../rules/{name}`.
pub async fn get(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = rule_name(&caller, &ns, &name)?;
    Ok(Json(triggers.rule(&fqn).await?))
}

/// `PUT .../rules/{name}` (`?overwrite=true` updates).
pub async fn put(
    State(triggers): State<Triggers>,
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let fqn = rule_name(&caller, &ns, &name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = RulePut::from_json(&body)?.resolve(&caller.0.namespace)?;
    let existing = triggers
        .find_rule(fqn.namespace.as_str(), fqn.name.as_str())
        .await?;
    if existing.is_some() && !overwrite {
        return Err(WhiskError::conflict().into());
    }
    let rule = put.apply(
        &fqn.namespace,
        &fqn.name,
        existing.as_ref().map(|r| &r.doc),
        now_ms(),
    )?;
    // The referenced entities: the trigger in the caller's namespace, an action it may read.
    let trigger = rule.trigger.fqn()?;
    caller.entitle(
        trigger.namespace.as_str(),
        &format!("triggers/{}", trigger.name),
    )?;
    if trigger.package.is_some()
        || triggers
            .find_trigger(trigger.namespace.as_str(), trigger.name.as_str())
            .await?
            .is_none()
    {
        return Err(does_not_exist("trigger", &rule.trigger).into());
    }
    let action = rule.action.fqn()?;
    match entities.resolve_action_stored(&caller.0, &action).await {
        Ok(_) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(does_not_exist("action", &rule.action).into())
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(triggers.put_rule(existing, rule, overwrite).await?))
}

/// `DELETE .../rules/{name}`: answers the deleted rule (inactive).
pub async fn delete(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let fqn = rule_name(&caller, &ns, &name)?;
    Ok(Json(triggers.delete_rule(&fqn).await?))
}

/// `POST .../rules/{name}` with `{"status": "active" | "inactive"}`: 200 `OK` once the rule
/// has that status (changed or not).
pub async fn set_status(
    State(triggers): State<Triggers>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Response> {
    let fqn = rule_name(&caller, &ns, &name)?;
    let status = RuleStatus::from_request(&json_object(&body)?)?;
    triggers.set_rule_status(&fqn, status).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "OK",
    )
        .into_response())
}
