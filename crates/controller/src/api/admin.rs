//! `whisk admin` on a running standalone: `POST /admin` with an [`AdminRequest`] on a private
//! unix socket (never on the REST API), answered through [`Identities::administer`].

use crate::admin::AdminRequest;
use crate::services::Identities;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Largest admin request body.
const MAX_REQUEST: usize = 64 * 1024;

/// Serves admin requests on `listener` (from [`crate::admin::bind_private`]) until
/// `shutdown`, then removes the socket at `path`.
pub async fn serve(
    listener: tokio::net::UnixListener,
    path: PathBuf,
    identities: Identities,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/admin", post(request))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(identities);
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    let _ = std::fs::remove_file(&path);
    result
}

async fn request(State(identities): State<Identities>, body: axum::body::Bytes) -> Response {
    let request: AdminRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let error = format!("The admin request is malformed: {e}");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
        }
    };
    match identities.administer(request).await {
        Ok(answer) => Json(answer.body).into_response(),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Json(json!({"error": e.message}))).into_response()
        }
    }
}
