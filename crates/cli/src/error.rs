//! How commands fail: [`Failure`] carries the message and the process exit code, chosen as
//! `wsk` chooses them, and [`ApiError`] is an `{error, code}` answer of the server.
//!
//! Exit codes (as `wsk`): 0 success; 1 general error; 2 usage error; 3 network error (the API
//! host cannot be reached); an HTTP error answer exits with its status modulo 256 (404 → 148,
//! 409 → 153, 502 → 246), and a blocking invoke that has not finished in time exits 202.

use std::fmt;

/// General failure.
pub const EXIT_GENERAL: i32 = 1;
/// Bad arguments.
pub const EXIT_USAGE: i32 = 2;
/// The API host cannot be reached.
pub const EXIT_NETWORK: i32 = 3;

/// A failure that ends the command with `code`, printing `error: <message>` when there is one.
#[derive(Debug)]
pub struct Failure {
    /// Exit status of the process.
    pub code: i32,
    /// Printed to stderr as `error: <message>`; `None` when the command printed already.
    pub message: Option<String>,
}

impl Failure {
    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: Some(message.into()),
        }
    }
    /// A general error (exit 1).
    pub fn general(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_GENERAL,
            message: Some(message.into()),
        }
    }
    /// Exit with `code` without printing anything more.
    pub fn silent(code: i32) -> Self {
        Self {
            code,
            message: None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Failure {}

/// An error answer of the server (`{"error": .., "code": ..}`), or a failure to reach it.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// The server answered with a non-success status.
    Http {
        /// HTTP status.
        status: u16,
        /// The `error` field (or the raw body when it is not OpenWhisk's error shape).
        message: String,
        /// The `code` field (transaction id), when present.
        code: Option<String>,
        /// The parsed body, when it was JSON (a failed blocking invoke carries the activation).
        body: Option<serde_json::Value>,
    },
    /// The request never got an answer.
    Network(String),
}

impl ApiError {
    /// The exit code `wsk` would use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ApiError::Http { status, .. } => http_exit_code(*status),
            ApiError::Network(_) => EXIT_NETWORK,
        }
    }

    /// Wraps this error in a [`Failure`] whose message starts with `context` (e.g.
    /// `Unable to invoke action 'x'`).
    pub fn failure(&self, context: &str) -> Failure {
        match self {
            ApiError::Network(m) => Failure {
                code: EXIT_NETWORK,
                message: Some(m.clone()),
            },
            _ => Failure {
                code: self.exit_code(),
                message: Some(format!("{context}: {self}")),
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Http {
                message,
                code: Some(code),
                ..
            } => write!(f, "{message} (code {code})"),
            ApiError::Http {
                message,
                code: None,
                ..
            } => f.write_str(message),
            ApiError::Network(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ApiError {}

/// `wsk`'s exit code for an HTTP status: the status modulo 256.
pub fn http_exit_code(status: u16) -> i32 {
    match i32::from(status) % 256 {
        0 => EXIT_GENERAL,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_wsk() {
        assert_eq!(http_exit_code(404), 148);
        assert_eq!(http_exit_code(409), 153);
        assert_eq!(http_exit_code(502), 246);
        assert_eq!(http_exit_code(202), 202);
        assert_eq!(http_exit_code(512), 1);
    }

    #[test]
    fn api_error_message_has_code() {
        let e = ApiError::Http {
            status: 404,
            message: "The requested resource does not exist.".into(),
            code: Some("abc".into()),
            body: None,
        };
        let f = e.failure("Unable to invoke action 'x'");
        assert_eq!(f.code, 148);
        assert_eq!(
            f.message.as_deref(),
            Some("Unable to invoke action 'x': The requested resource does not exist. (code abc)")
        );
    }
}
