//! The error type shared by the services and its mapping onto OpenWhisk's HTTP status codes.

use thiserror::Error;

/// What went wrong, in the categories OpenWhisk's REST API distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: malformed request, invalid name, bad parameter.
    BadRequest,
    /// 401: missing or invalid credentials.
    Unauthorized,
    /// 403: the credentials do not cover this namespace.
    Forbidden,
    /// 404: no such entity.
    NotFound,
    /// 409: already exists, or a concurrent modification.
    Conflict,
    /// 413: payload or entity too large.
    TooLarge,
    /// 429: a per-namespace throttle was hit.
    Throttled,
    /// 500: an internal fault.
    Internal,
    /// 502: the action failed (application or developer error).
    ActionFailed,
    /// 503: a backing service is unavailable, or no invoker is healthy.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status code OpenWhisk answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::Throttled => 429,
            ErrorKind::Internal => 500,
            ErrorKind::ActionFailed => 502,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// An error with its kind and the message shown to the client.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct WhiskError {
    /// Category, which decides the HTTP status.
    pub kind: ErrorKind,
    /// Human-readable message, as it appears in the `error` field.
    pub message: String,
}

/// OpenWhisk's standard 404 message.
pub const NOT_FOUND_MESSAGE: &str = "The requested resource does not exist.";

impl WhiskError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    /// 404 with OpenWhisk's standard message.
    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, NOT_FOUND_MESSAGE)
    }
    /// 409 with OpenWhisk's message for an existing entity.
    pub fn conflict() -> Self {
        Self::new(ErrorKind::Conflict, "resource already exists")
    }
    /// 409 for a lost revision race.
    pub fn concurrent_modification() -> Self {
        Self::new(
            ErrorKind::Conflict,
            "Concurrent modification to resource detected.",
        )
    }
    /// 500 with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// 503 with a message.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    /// 413 with a message.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }
}
