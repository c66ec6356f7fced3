//! Errors: [`GatewayError`] for starting and running the gateway, and [`error_response`], the
//! OpenWhisk error body `{"error": message, "code": request id}` of every answer the gateway
//! gives itself (413, 429, 502, 503, 504, ...).

use crate::request_id::X_REQUEST_ID;
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use std::path::PathBuf;

pub use crate::body::{Body, BoxError};

/// What can go wrong starting or running the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting is unusable.
    #[error("invalid gateway configuration: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key file could not be read or used.
    #[error("TLS {what} {path}: {message}")]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The gateway has no HTTPS listener, so there is nothing to reload.
    #[error("the gateway has no HTTPS listener")]
    NoTls,
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A response with OpenWhisk's error body, and the request id as `X-Request-ID` too.
pub fn error_response(status: StatusCode, message: &str, request_id: &str) -> Response<Body> {
    let body = serde_json::json!({"error": message, "code": request_id}).to_string();
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        if !request_id.is_empty() {
            headers.insert(X_REQUEST_ID.clone(), id);
        }
    }
    resp
}

/// A [`Body`] holding `bytes`.
pub fn full(bytes: Bytes) -> Body {
    Body::full(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn error_body_shape() {
        let resp = error_response(StatusCode::TOO_MANY_REQUESTS, "slow down", "abc");
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["x-request-id"], "abc");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v, serde_json::json!({"error": "slow down", "code": "abc"}));
    }
}
