//! `GET /api/v1/api-docs` (also with a trailing slash, and `/api-docs`): the OpenAPI document
//! of the REST API, as OpenWhisk serves its `apiv1swagger.json` there (the path `GET /api/v1`
//! names in `swagger_paths`). The document is `openapi.json` next to this file, written for
//! this API from OpenWhisk's; the controller's tests check that every route of the router is in
//! it.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// The OpenAPI document (OpenAPI 3.0, absolute paths).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/api-docs`.
pub async fn api_docs() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI)
}
