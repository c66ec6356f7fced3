//! `/api/v1/namespaces/{ns}/packages[/{name}]`: list (`limit`, `skip`, `count`; another
//! namespace's published packages only), get (with `actions` and `feeds`), create/update
//! (`overwrite`; bindings with `{"binding": {"namespace", "name"}}`), delete (`force` deletes
//! the package's actions first). Writes are for the caller's own namespace only.

use crate::api::extract::{Body, Caller, Params};
use crate::errors::ApiResult;
use crate::services::Entities;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use whisk_core::limits::ACTION_MAX_BYTES;
use whisk_core::package::PackagePut;
use whisk_core::{EntityName, ErrorKind, WhiskError};

/// `GET .../packages`: summaries, `binding` `false` or the bound package.
pub async fn list(
    State(entities): State<Entities>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.read_namespace(&ns)?;
    let limit = params.list_limit("packages")?;
    let skip = params.skip("packages")?;
    // `public` is accepted as OpenWhisk does (which lists by who asks, not by the flag).
    params.bool("public", false)?;
    if params.bool("count", false)? {
        let n = entities.count_packages(&caller.0, &ns).await?;
        return Ok(Json(json!({ "packages": n })));
    }
    Ok(Json(Value::Array(
        entities.list_packages(&caller.0, &ns, skip, limit).await?,
    )))
}

/// `GET .../packages/{name}`.
pub async fn get(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let ns = caller.read_namespace(&ns)?;
    EntityName::new(&name)?;
    // OpenWhisk's execute-only sharing: another namespace's package is bound and invoked, never
    // read, not even through a binding.
    if entities.execute_only() {
        if ns != caller.0.namespace {
            return Err(WhiskError::new(
                ErrorKind::Forbidden,
                format!("GET not permitted for '{ns}/{name}' since it's a shared package"),
            )
            .into());
        }
        let readable = entities.readable_package(&caller.0, &ns, &name).await?;
        if readable.provider().namespace != caller.0.namespace {
            return Err(WhiskError::new(
                ErrorKind::Forbidden,
                format!("GET not permitted since {name} is a binding of a shared package"),
            )
            .into());
        }
    }
    Ok(Json(entities.package_view(&caller.0, &ns, &name).await?))
}

/// `PUT .../packages/{name}` (`?overwrite=true` updates).
pub async fn put(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
    Body(body): Body<ACTION_MAX_BYTES>,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, &format!("packages/{name}"))?;
    EntityName::new(&name)?;
    let overwrite = params.bool("overwrite", false)?;
    let put = PackagePut::from_json(&body)?;
    let package = entities
        .put_package(&caller.0, &ns, &name, put, overwrite)
        .await?;
    Ok(Json(package.view()))
}

/// `DELETE .../packages/{name}` (`?force=true` deletes its actions first): the deleted
/// document.
pub async fn delete(
    State(entities): State<Entities>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, &format!("packages/{name}"))?;
    EntityName::new(&name)?;
    let force = params.bool("force", false)?;
    Ok(Json(
        entities.delete_package(&ns, &name, force).await?.view(),
    ))
}
