//! OpenWhisk's error bodies: [`ApiError`] turns a [`WhiskError`] into `{"error", "code"}` with
//! the request's transaction id, and [`normalize`] rewrites every other error response (axum's
//! plain-text rejections, 404 and 405 of the router) into the same shape.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use whisk_core::error::NOT_FOUND_MESSAGE;
use whisk_core::{ErrorKind, WhiskError};

tokio::task_local! {
    static TRANSACTION_ID: String;
}

/// The transaction id of the request being served (a fresh one outside a request).
pub fn transaction_id() -> String {
    TRANSACTION_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| whisk_core::transaction_id())
}

/// An error answered with OpenWhisk's body.
#[derive(Debug)]
pub struct ApiError(pub WhiskError);

impl<E: Into<WhiskError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// `{"error": message, "code": tid}` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": message, "code": transaction_id()});
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OpenWhisk secure realm\""),
        );
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.0.kind == ErrorKind::Internal {
            tracing::error!(error = %self.0.message, tid = %transaction_id(), "internal error");
        }
        error_response(status, &self.0.message)
    }
}

/// Marks a response [`normalize`] passes unchanged: a web action's own answer (any status,
/// any body) is not the platform's error.
#[derive(Debug, Clone, Copy)]
pub struct Verbatim;

/// Middleware: runs the request inside its transaction id, and rewrites error responses that
/// are not JSON (router 404/405, extractor rejections) into OpenWhisk's body.
pub async fn normalize(req: Request, next: Next) -> Response {
    let mut resp = normalize_body(req, next).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was not read to its end: the connection cannot carry another request.
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

async fn normalize_body(req: Request, next: Next) -> Response {
    let tid = whisk_core::transaction_id();
    TRANSACTION_ID
        .scope(tid, async move {
            let resp = next.run(req).await;
            let status = resp.status();
            let is_json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if status.as_u16() < 400 || is_json || resp.extensions().get::<Verbatim>().is_some() {
                return resp;
            }
            let allow = resp.headers().get(header::ALLOW).cloned();
            let text = match axum::body::to_bytes(resp.into_body(), 16 * 1024).await {
                Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
                Err(_) => String::new(),
            };
            let message = match status {
                StatusCode::NOT_FOUND => NOT_FOUND_MESSAGE.to_string(),
                StatusCode::METHOD_NOT_ALLOWED => {
                    let methods = allow.as_ref().and_then(|a| a.to_str().ok()).unwrap_or("");
                    format!("HTTP method not allowed, supported methods: {methods}")
                }
                StatusCode::PAYLOAD_TOO_LARGE => "The request content was too large.".to_string(),
                _ if !text.is_empty() => text,
                _ => status.canonical_reason().unwrap_or("Error").to_string(),
            };
            let mut out = error_response(status, &message);
            if let Some(a) = allow {
                out.headers_mut().insert(header::ALLOW, a);
            }
            out
        })
        .await
}

/// The body of a router fallback: OpenWhisk's 404.
pub async fn not_found() -> Response {
    ApiError(WhiskError::not_found()).into_response()
}
