//! `/api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`: the caller's activation
//! records, listed with filters or read one at a time.

use crate::api::extract::{Caller, Params};
use crate::errors::{ApiError, ApiResult};
use crate::services::Activations;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use whisk_core::{Activation, ActivationId, EntityName, WhiskError};
use whisk_store::ActivationQuery;

/// `GET .../activations?name=&limit=&skip=&since=&upto=&docs=&count=`.
pub async fn list(
    State(activations): State<Activations>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, "activations")?;
    let name = match params.get("name") {
        None | Some("") => None,
        Some(n) => {
            let n = n.trim_start_matches('/');
            let parts: Vec<&str> = n.split('/').collect();
            if parts.len() > 2 || parts.iter().any(|p| EntityName::new(p).is_err()) {
                return Err(bad_name(n));
            }
            Some(n.to_string())
        }
    };
    let query = ActivationQuery {
        name,
        since: params.epoch_ms("since")?,
        upto: params.epoch_ms("upto")?,
        skip: params.skip("activations")?,
        limit: params.list_limit("activations")?,
    };
    let docs = params.bool("docs", false)?;
    if params.bool("count", false)? {
        if docs {
            return Err(ApiError(WhiskError::bad_request(
                "The parameter 'docs' is not permitted with 'count'.",
            )));
        }
        let n = activations.count(&ns, &query).await?;
        return Ok(Json(json!({ "activations": n })));
    }
    let records = activations.list(&ns, &query).await?;
    let view = if docs {
        Activation::view
    } else {
        Activation::summary
    };
    Ok(Json(Value::Array(records.iter().map(view).collect())))
}

fn bad_name(n: &str) -> ApiError {
    ApiError(WhiskError::bad_request(format!(
        "Parameter may be a 'simple' name or 'package-name/simple' name: {n}"
    )))
}

async fn load(
    activations: &Activations,
    caller: &Caller,
    ns: &str,
    id: &str,
) -> ApiResult<Activation> {
    let ns = caller.entitle(ns, &format!("activations/{id}"))?;
    let id = ActivationId::parse(id)?;
    Ok(activations.get(&ns, &id).await?)
}

/// `GET .../activations/{id}`.
pub async fn get(
    State(activations): State<Activations>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(load(&activations, &caller, &ns, &id).await?.view()))
}

/// `GET .../activations/{id}/logs`.
pub async fn logs(
    State(activations): State<Activations>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({ "logs": load(&activations, &caller, &ns, &id).await?.logs }),
    ))
}

/// `GET .../activations/{id}/result`.
pub async fn result(
    State(activations): State<Activations>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        load(&activations, &caller, &ns, &id).await?.response.view(),
    ))
}
