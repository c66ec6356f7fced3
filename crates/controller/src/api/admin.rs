//! `PUT /admin/identities/{subject}` (not OpenWhisk's API): creates the identity of a subject,
//! or reuses the existing one of its namespace; only `whisk.system` may call it. Used by
//! `whisk admin user create` when the server holds the database.

use crate::api::extract::Body;
use crate::auth::Caller;
use crate::errors::{ApiError, ApiResult};
use crate::service::Controller;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use whisk_core::{EntityName, ErrorKind, Identity, UserLimits, WhiskError};

/// The namespace allowed to administer identities.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityPut {
    namespace: Option<String>,
    limits: Option<UserLimits>,
}

/// `PUT /admin/identities/{subject}` with `{"namespace"?, "limits"?}`.
pub async fn put_identity(
    State(ctl): State<Controller>,
    caller: Caller,
    Path(subject): Path<String>,
    Body(body): Body<65536>,
) -> ApiResult<Json<Value>> {
    if caller.0.namespace != SYSTEM_NAMESPACE {
        return Err(ApiError(WhiskError::new(
            ErrorKind::Forbidden,
            "The supplied authentication is not authorized to access 'admin/identities'.",
        )));
    }
    let put: IdentityPut = if body.iter().all(u8::is_ascii_whitespace) {
        IdentityPut::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            WhiskError::bad_request(format!("The request content was malformed:\n{e}"))
        })?
    };
    let subject = EntityName::new(&subject)?.to_string();
    let namespace = EntityName::new(put.namespace.as_deref().unwrap_or(&subject))?.to_string();
    let existing = ctl
        .store()
        .identities_of_namespace(&namespace)
        .await?
        .into_iter()
        .next();
    let identity = match existing {
        Some(mut id) => {
            if let Some(l) = put.limits {
                id.limits = l;
                ctl.store().put_identity(&id).await?;
                ctl.identities().invalidate(&id.uuid);
            }
            id
        }
        None => {
            let mut id = Identity::generate(&subject, &namespace);
            id.limits = put.limits.unwrap_or_default();
            ctl.store().put_identity(&id).await?;
            id
        }
    };
    Ok(Json(json!({
        "subject": identity.subject,
        "namespace": identity.namespace,
        "key": identity.api_key(),
        "limits": identity.limits,
    })))
}
