//! The REST API: the route table, CORS, and the layers that keep every error in OpenWhisk's
//! `{error, code}` shape.
//!
//! - [`info`]: unauthenticated info routes; [`namespaces`]: namespaces and limits;
//!   [`actions`]: action CRUD and invoke; [`gang`]: gang invoke; [`answers`]: how an invoke
//!   is answered; [`activations`]: activation records; [`packages`]: packages and bindings;
//!   [`sequences`]: sequences and conductor actions (check on `PUT`, invoke);
//!   [`extract`]: the caller, query and body extractors; [`docs`]: the OpenAPI document.
//! - [`web`]: web actions (`/api/v1/web/...`), answered through [`web_answer`]; [`apis`]: API
//!   routes (`wsk api`'s management calls and `/api/{id}/{basepath}/{path}`).
//! - [`triggers`]: trigger CRUD, [`fire`]: firing a trigger, [`rules`]: rule CRUD and status.
//! - [`admin`]: `whisk admin`'s requests on a private unix socket (identity administration is
//!   never on the REST API).
//!
//! The routes' state is [`Services`]; each handler takes the service handles it uses.

pub mod actions;
pub mod activations;
pub mod admin;
pub mod answers;
pub mod apis;
pub mod docs;
pub mod extract;
pub mod feeds;
pub mod fire;
pub mod gang;
pub mod groups;
pub mod info;
pub mod namespaces;
pub mod packages;
pub mod rules;
pub mod sequences;
pub mod triggers;
pub mod web;
pub mod web_answer;

use crate::errors;
use crate::services::Services;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;

/// The whole API over `services`.
pub fn router(services: Services) -> Router {
    let ns = "/api/v1/namespaces/{ns}";
    Router::new()
        .route("/", get(info::root))
        .route("/api/v1", get(info::api_v1))
        .route("/api/v1/", get(info::api_v1))
        .route("/api/v1/api-docs", get(docs::api_docs))
        .route("/api/v1/api-docs/", get(docs::api_docs))
        .route("/api-docs", get(docs::api_docs))
        .route("/ping", get(info::ping))
        .route("/invokers", get(info::invokers))
        .route("/invokers/healthy/count", get(info::healthy_count))
        .route("/invokers/details", get(info::invoker_details))
        .route("/api/v1/namespaces", get(namespaces::list))
        .route(&format!("{ns}/limits"), get(namespaces::limits))
        .route(&format!("{ns}/packages"), get(packages::list))
        .route(
            &format!("{ns}/packages/{{name}}"),
            get(packages::get)
                .put(packages::put)
                .delete(packages::delete),
        )
        .route(&format!("{ns}/triggers"), get(triggers::list))
        .route(
            &format!("{ns}/triggers/{{name}}"),
            get(triggers::get)
                .put(triggers::put)
                .delete(triggers::delete)
                .post(fire::fire),
        )
        .route(&format!("{ns}/rules"), get(rules::list))
        .route(
            &format!("{ns}/rules/{{name}}"),
            get(rules::get)
                .put(rules::put)
                .delete(rules::delete)
                .post(rules::set_status),
        )
        .route(&format!("{ns}/actions"), get(actions::list))
        .route(
            &format!("{ns}/actions/{{*name}}"),
            get(actions::get)
                .put(actions::put)
                .delete(actions::delete)
                .post(actions::invoke),
        )
        .route(&format!("{ns}/activations"), get(activations::list))
        .route(&format!("{ns}/activations/{{id}}"), get(activations::get))
        .route(
            &format!("{ns}/activations/{{id}}/logs"),
            get(activations::logs),
        )
        .route(
            &format!("{ns}/activations/{{id}}/result"),
            get(activations::result),
        )
        .route("/api/v1/web/{*path}", any(web::handle))
        .route("/api/{owner}/{*path}", any(apis::route))
        .merge(whisk_console::router())
        .fallback(errors::not_found)
        .with_state(services)
        .layer(from_fn(errors::normalize))
        .layer(from_fn(cors))
        .layer(whisk_telemetry::http::TraceLayer)
}

const ALLOW_METHODS: &str = "GET, DELETE, POST, PUT, HEAD";
/// The request headers CORS allows (the REST API's and, by default, web actions').
pub const ALLOW_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// Answers `OPTIONS` on any REST path and adds the CORS headers to every response.
async fn cors(req: Request, next: Next) -> Response {
    if web::is_web_path(req.uri().path()) {
        // Web actions answer with their own (or OpenWhisk's web) CORS headers.
        return next.run(req).await;
    }
    let mut resp = if req.method() == Method::OPTIONS {
        Response::new(axum::body::Body::empty())
    } else {
        next.run(req).await
    };
    set_cors(
        resp.headers_mut(),
        ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    resp
}

/// The CORS headers of a response: any origin, `methods`, and `headers` as the allowed
/// request headers.
fn set_cors(h: &mut axum::http::HeaderMap, methods: &'static str, headers: HeaderValue) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
}
