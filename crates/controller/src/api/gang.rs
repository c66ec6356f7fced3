//! Gang invoke: `POST .../actions/{name}?instances=N` starts N instances `0..N-1` of an action
//! in one new peer group (`instanceID` = rank, `group` = a fresh `gang-<id>`), admitted as a
//! whole (all or none against the throttles and the invokers' free memory), so that they can
//! find each other through their peer maps. Answers 202 `{"group", "activationIds"}`, or,
//! blocking, `{"group", "activations"}` (or `"results"` with `result=true`) once all ended.

use crate::api::answers::with_id;
use crate::errors::{transaction_id, ApiResult};
use crate::services::{Invocation, Invocations, Invoked};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::time::Duration;
use whisk_core::peers::{GROUP_PARAM, INSTANCE_ID_PARAM};
use whisk_core::{Action, ActivationId, FullyQualifiedName, Identity, StatusCode as Status};

/// Starts the gang and answers.
#[allow(clippy::too_many_arguments)]
pub async fn invoke(
    invocations: &Invocations,
    identity: &Identity,
    fqn: &FullyQualifiedName,
    action: &Action,
    revision: &str,
    content: Map<String, Value>,
    n: u32,
    blocking: bool,
    result_only: bool,
    wait: Duration,
    binding: Option<String>,
) -> ApiResult<Response> {
    invocations.admit_gang(identity, n, action.limits.memory)?;
    let gang_id = ActivationId::generate();
    let group = format!("gang-{gang_id}");
    let tid = transaction_id();
    let calls = (0..n).map(|rank| {
        let mut params = content.clone();
        params.insert(INSTANCE_ID_PARAM.into(), json!(rank));
        params.insert(GROUP_PARAM.into(), json!(group));
        invocations.invoke(Invocation {
            identity,
            fqn,
            action,
            revision,
            content: params,
            blocking,
            wait,
            transaction_id: tid.clone(),
            gang_size: n,
            cause: Some(gang_id.to_string()),
            preadmitted: true,
            binding: binding.clone(),
        })
    });
    let outcomes = futures::future::join_all(calls).await;
    let mut status = StatusCode::OK;
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut items = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match o {
            Ok(Invoked::Accepted(id)) => {
                if blocking {
                    status = StatusCode::ACCEPTED;
                }
                items.push(json!({ "activationId": id }));
                ids.push(id.to_string());
            }
            Ok(Invoked::Completed(a)) => {
                if a.response.status_code != Status::Success && status == StatusCode::OK {
                    status = StatusCode::BAD_GATEWAY;
                }
                items.push(if result_only {
                    a.response.result.clone().unwrap_or_else(|| json!({}))
                } else {
                    a.view()
                });
                ids.push(a.activation_id.to_string());
            }
            Err(e) => {
                if status == StatusCode::OK {
                    status = StatusCode::BAD_GATEWAY;
                }
                items.push(json!({ "error": e.message }));
            }
        }
    }
    let body = if !blocking {
        json!({ "group": group, "activationIds": ids })
    } else if result_only {
        json!({ "group": group, "results": items })
    } else {
        json!({ "group": group, "activationIds": ids, "activations": items })
    };
    let status = if blocking {
        status
    } else {
        StatusCode::ACCEPTED
    };
    Ok(with_id((status, Json(body)).into_response(), &gang_id))
}
