//! Everything `/init` and `/run` can fail with, and the one mapping from an
//! error to its HTTP status and `{"error": "..."}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The answer when the launcher dies during a request.
pub const EXITED: &str = "The action did not produce a valid response and exited unexpectedly.";
/// The answer when the function's result is not a JSON object.
pub const NOT_A_DICTIONARY: &str = "The action did not return a dictionary.";
/// The answer when a native action's last line is not a JSON object or array (OpenWhisk's
/// skeleton's words).
pub const NO_RESULT: &str = "The action did not return a dictionary or array.";
/// The answer to a second `/init`.
pub const ALREADY_INITIALIZED: &str = "Cannot initialize the action more than once.";

/// A failed `/init` or `/run`.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The body is not JSON, or lacks `value` or `code` (400).
    #[error("{0}")]
    BadRequest(String),
    /// `/init` after a previous `/init` (403).
    #[error("{ALREADY_INITIALIZED}")]
    AlreadyInitialized,
    /// `/run` before `/init` (403).
    #[error("The action has not been initialized.")]
    NotInitialized,
    /// The code could not be unpacked or loaded (502).
    #[error("{0}")]
    InitFailed(String),
    /// The function returned something other than an object (502).
    #[error("{NOT_A_DICTIONARY}")]
    NotADictionary,
    /// A native action printed no JSON object or array as its last line (502).
    #[error("{NO_RESULT}")]
    NoResult,
    /// The launcher exited during this request (502).
    #[error("{EXITED}")]
    Exited,
    /// The launcher had exited before this request (502).
    #[error("The action's process exited during an earlier request; it cannot run again.")]
    Gone,
    /// The proxy itself failed, e.g. could not write the code (500).
    #[error("{0}")]
    Internal(String),
    /// The caller did not present this container's secret (403).
    #[error("The caller is not this container's invoker.")]
    NotTheInvoker,
}

impl ProxyError {
    /// The HTTP status OpenWhisk's proxies answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::AlreadyInitialized
            | ProxyError::NotInitialized
            | ProxyError::NotTheInvoker => StatusCode::FORBIDDEN,
            ProxyError::InitFailed(_)
            | ProxyError::NotADictionary
            | ProxyError::NoResult
            | ProxyError::Exited
            | ProxyError::Gone => StatusCode::BAD_GATEWAY,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({ "error": self.to_string() }))).into_response()
    }
}
