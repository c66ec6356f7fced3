//! `/api/v1/namespaces/{ns}/actions[/{pkg}/{name}]`: list (also `.../actions/{pkg}/`: the
//! actions of a package or of a binding's package), get, create/update, delete, invoke.
//! Reads and invokes go through the action resolver ([`Entities::resolve_action`]), which
//! allows another namespace's published packages and follows bindings; writes are for the
//! caller's own namespace only, in a package that exists and is not a binding.

use crate::api::answers::{accepted, completed};
use crate::api::extract::{json_object, Body, Caller, Params};
use crate::api::gang;
use crate::api::sequences;
use crate::errors::{transaction_id, ApiError, ApiResult};
use crate::services::{Entities, Invocation, Invocations, Invoked, Sequences};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;
use whisk_core::entity::ActionPut;
use whisk_core::limits::{ACTION_MAX_BYTES, BLOCKING_WAIT_MAX_MS, PAYLOAD_MAX_BYTES};
use whisk_core::{Action, EntityName, ErrorKind, FullyQualifiedName, WhiskError};
use whisk_store::EntityKind;

fn resolve(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    let ns = caller.entitle(ns, &format!("actions/{name}"))?;
    Ok(FullyQualifiedName::from_route(&ns, name)?)
}

/// The name of a read or an invoke: any namespace (`_` is the caller's); the resolver decides
/// what the caller may see.
fn target(caller: &Caller, ns: &str, name: &str) -> ApiResult<FullyQualifiedName> {
    Ok(FullyQualifiedName::from_route(
        &caller.read_namespace(ns)?,
        name,
    )?)
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

/// `GET .../actions/{name}` (`?code=false` omits the code): the action with its package's
/// (and binding's) parameters merged in; `GET .../actions/{pkg}/` lists the package's actions.
pub async fn get(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    if let Some(pkg) = name.strip_suffix('/').filter(|p| !p.contains('/')) {
        return list_package(&entities, &caller, &ns, pkg, &params).await;
    }
    let fqn = target(&caller, &ns, &name)?;
    let code = params.bool("code", true)?;
    // OpenWhisk's execute-only sharing: another namespace's action is invoked, never read.
    let execute_only = entities.execute_only();
    if execute_only && fqn.namespace.as_str() != caller.0.namespace {
        let path = match &fqn.package {
            Some(p) => format!("{}/{p}", fqn.namespace),
            None => fqn.namespace.to_string(),
        };
        return Err(WhiskError::new(
            ErrorKind::Forbidden,
            format!("GET not permitted for '{path}' since it's an action in a shared package"),
        )
        .into());
    }
    let resolved = entities.resolve_action_stored(&caller.0, &fqn).await?;
    if execute_only && resolved.fqn.namespace.as_str() != caller.0.namespace {
        return Err(WhiskError::new(
            ErrorKind::Forbidden,
            format!(
                "GET not permitted for '{}'. Resource does not exist or is an action in a shared package binding.",
                fqn.to_string().trim_start_matches('/')
            ),
        )
        .into());
    }
    Ok(Json(resolved.merged_action().view(code)))
}

/// `GET .../actions/{pkg}/`: summaries of the actions of a package (of the bound package for
/// a binding), with `limit`/`skip`.
async fn list_package(
    entities: &Entities,
    caller: &Caller,
    ns: &str,
    pkg: &str,
    params: &Params,
) -> ApiResult<Json<Value>> {
    let limit = params.list_limit("actions")?;
    let skip = params.skip("actions")?;
    let ns = caller.read_namespace(ns)?;
    EntityName::new(pkg)?;
    let readable = entities.readable_package(&caller.0, &ns, pkg).await?;
    let mut actions = entities.actions_of(readable.provider()).await?;
    actions.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| a.name.cmp(&b.name)));
    if params.bool("count", false)? {
        return Ok(Json(json!({ "actions": actions.len() })));
    }
    Ok(Json(Value::Array(
        actions
            .iter()
            .skip(skip)
            .take(limit)
            .map(Action::summary)
            .collect(),
    )))
}

/// `PUT .../actions/{name}` (`?overwrite=true` updates); a sequence is checked first.
pub async fn put(
    State(entities): State<Entities>,
    State(invocations): State<Invocations>,
    State(seqs): State<Sequences>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<ACTION_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let fqn = resolve(&caller, &ns, &name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = ActionPut::from_json(&body)?;
    let steps = sequences::ServiceSteps::new(&entities, &invocations);
    let put = sequences::check_put(&seqs, &steps, &caller.0, &fqn, put).await?;
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

/// `POST .../actions/{name}?blocking=&result=&timeout=`: invokes (a sequence or a conductor
/// action through [`sequences::invoke`]).
#[allow(clippy::too_many_arguments)] // axum extractors, one per service used
pub async fn invoke(
    State(entities): State<Entities>,
    State(invocations): State<Invocations>,
    State(seqs): State<Sequences>,
    State(feeds): State<crate::services::Feeds>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Response> {
    let fqn = target(&caller, &ns, &name)?;
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
    let resolved = entities.resolve_action(&caller.0, &fqn).await?;
    if let Some(feed) = whisk_feeds::Feed::of(resolved.action()) {
        let (b, r) = (blocking, result_only);
        return crate::api::feeds::invoke(&feeds, &caller, &resolved, feed, body, b, r).await;
    }
    if sequences::is_composite(resolved.action()) {
        let wait = blocking.then(|| Duration::from_millis(wait));
        return sequences::invoke(
            &seqs,
            &entities,
            &invocations,
            &caller.0,
            &resolved,
            body,
            wait,
            result_only,
        )
        .await;
    }
    let (fqn, action) = (&resolved.fqn, resolved.action());
    let content = resolved.merge(body)?;
    if let Some(n) = params.get("instances") {
        let n = parse_instances(n)?;
        return gang::invoke(
            &invocations,
            &caller.0,
            fqn,
            action,
            &resolved.action.rev,
            content,
            n,
            blocking,
            result_only,
            Duration::from_millis(wait),
            resolved.binding.clone(),
        )
        .await;
    }
    whisk_core::peers::instance(&content, &fqn.to_string())?;
    let outcome = invocations
        .invoke(Invocation {
            identity: &caller.0,
            fqn,
            action,
            revision: &resolved.action.rev,
            content,
            blocking,
            wait: Duration::from_millis(wait),
            transaction_id: transaction_id(),
            gang_size: 0,
            cause: None,
            preadmitted: false,
            binding: resolved.binding.clone(),
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
