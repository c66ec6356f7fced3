//! How an invoke is answered: 202 with the activation id, or the record (or only its result)
//! with the status its outcome implies; every answer names the activation in
//! [`ACTIVATION_ID_HEADER`].

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use whisk_core::{Activation, ActivationId, StatusCode as Status};

/// Header carrying the activation id of every invoke answer.
pub const ACTIVATION_ID_HEADER: &str = "x-openwhisk-activation-id";

/// `resp` naming activation `id` in [`ACTIVATION_ID_HEADER`].
pub fn with_id(mut resp: Response, id: &ActivationId) -> Response {
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
