//! Request extractors that answer bad input with OpenWhisk's error bodies instead of axum's
//! plain-text rejections: [`Caller`] (the authenticated identity, through
//! [`Identities`]), [`Params`] (the query string, parsed field by field) and [`Body`] (raw
//! bytes up to a limit, 413 beyond it).

use crate::errors::ApiError;
use crate::services::Identities;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use whisk_core::limits::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use whisk_core::{Identity, WhiskError};

/// The authenticated caller of a request (401 without valid credentials).
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Identity>);

impl<S> FromRequestParts<S> for Caller
where
    Identities: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let identities = Identities::from_ref(state);
        Ok(Caller(identities.authenticate_header(header).await?))
    }
}

impl Caller {
    /// The caller's namespace when `ns` (from the path) is it or `_`, else 403 naming `what`
    /// (see [`crate::auth::entitle`]).
    pub fn entitle(&self, ns: &str, what: &str) -> Result<String, ApiError> {
        Ok(crate::auth::entitle(&self.0, ns, what)?)
    }

    /// The namespace a read names: any valid one, `_` being the caller's (what the caller may
    /// see there is for the action resolver to decide; see
    /// [`Entities::readable_package`](crate::services::Entities::readable_package)).
    pub fn read_namespace(&self, ns: &str) -> Result<String, ApiError> {
        let ns = if ns == whisk_core::names::DEFAULT_NAMESPACE {
            self.0.namespace.clone()
        } else {
            ns.to_string()
        };
        whisk_core::EntityName::new(&ns)?;
        Ok(ns)
    }
}

/// The query string as a map; typed accessors answer 400 on bad values.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|q| Params(q.0))
            .map_err(|e| {
                ApiError(WhiskError::bad_request(format!(
                    "The request query was malformed: {e}"
                )))
            })
    }
}

impl Params {
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `true`/`false` (any case); absent → `default`.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(bad(format!(
                "The value '{v}' of parameter '{key}' is not a boolean."
            ))),
        }
    }

    /// `limit`: default 30, `0..=200` (0 = the maximum), else OpenWhisk's range message.
    pub fn list_limit(&self, collection: &str) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(LIST_LIMIT_DEFAULT),
            Some(v) => match v.parse::<i64>() {
                Ok(0) => Ok(LIST_LIMIT_MAX),
                Ok(n) if (1..=LIST_LIMIT_MAX as i64).contains(&n) => Ok(n as usize),
                Ok(_) => Err(bad(format!(
                    "The value '{v}' is not in the range of 0 to {LIST_LIMIT_MAX} for {collection}."
                ))),
                Err(_) => Err(not_integer(v, collection)),
            },
        }
    }

    /// `skip`: a non-negative integer, default 0.
    pub fn skip(&self, collection: &str) -> Result<usize, ApiError> {
        match self.get("skip") {
            None => Ok(0),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as usize),
                Ok(_) => Err(bad(format!(
                    "The value '{v}' is not greater than or equal to 0 for {collection}."
                ))),
                Err(_) => Err(not_integer(v, collection)),
            },
        }
    }

    /// An optional epoch-milliseconds bound (`since`, `upto`).
    pub fn epoch_ms(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    bad(format!(
                        "Parameter is not a valid value for epoch seconds: {v}"
                    ))
                })
            })
            .transpose()
    }
}

fn not_integer(v: &str, collection: &str) -> ApiError {
    bad(format!(
        "The value '{v}' is not an integer for {collection}."
    ))
}

fn bad(message: String) -> ApiError {
    ApiError(WhiskError::bad_request(message))
}

/// The raw request body, at most `LIMIT` bytes (413 with OpenWhisk's body beyond).
#[derive(Debug)]
pub struct Body<const LIMIT: usize>(pub Bytes);

fn too_large(size: Option<u64>, limit: usize) -> ApiError {
    let is = size.map_or_else(|| "more".to_string(), |s| s.to_string());
    ApiError(WhiskError::too_large(format!(
        "Request larger than allowed: {is} > {limit} bytes."
    )))
}

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for Body<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(len) = declared.filter(|l| *l > LIMIT as u64) {
            return Err(too_large(Some(len), LIMIT));
        }
        match axum::body::to_bytes(req.into_body(), LIMIT).await {
            Ok(b) => Ok(Body(b)),
            Err(e) => {
                let is_limit = std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                    || e.to_string().contains("length limit");
                if is_limit {
                    Err(too_large(None, LIMIT))
                } else {
                    Err(bad(format!("The request content could not be read: {e}")))
                }
            }
        }
    }
}

/// Parses a body that must be a JSON object; an empty body is `{}`.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad(
            "The request content was malformed:\nObject expected".to_string()
        )),
        Err(e) => Err(bad(format!("The request content was malformed:\n{e}"))),
    }
}
