//! Web actions: `/api/v1/web/{ns}/{pkg|default}/{action}[.ext][/more/path]`, any method, no
//! credentials unless the action asks for them (OpenWhisk's `WebActions.scala`).
//!
//! The action must carry `web-export: true` (else 404, as a missing one). It runs on behalf of
//! its namespace's owner ([`Web::owner`]) with the action's parameters, then the query, then
//! the body (a JSON object or form fields; any other body is `__ow_body`), plus `__ow_method`,
//! `__ow_headers`, `__ow_path` and, for an authenticated caller, `__ow_user`. With
//! `raw-http: true` the query and body arrive unparsed (`__ow_query`, `__ow_body`, base64 for
//! binary content types). A request that sets one of those names, or a parameter the action
//! made final, is refused (400). `require-whisk-auth` (`true`: Basic credentials of any key;
//! a string or number: header `X-Require-Whisk-Auth`) answers 401 when unmet. `OPTIONS` gets
//! default CORS headers unless `web-custom-options: true`, when the action answers it. The
//! result becomes the response through [`web_answer::project`]; an application error
//! projects its `error` field, any other failure is 400.
//!
//! The route management actions of `wsk api` (`whisk.system/apimgmt/*`) are served natively
//! by [`super::apis`]; API routes call [`serve`] with their stored target.

use super::answers::with_id;
use super::apis;
use super::sequences::{self, ServiceSteps};
use super::web_answer::{self, is_binary, is_json, media_type, Ext};
use crate::auth::MISSING_MESSAGE;
use crate::errors::{error_response, transaction_id, ApiError, Verbatim};
use crate::services::{Composite, Invocation, Invoked, Ran, Services};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use whisk_core::entity::lookup;
use whisk_core::limits::{BLOCKING_WAIT_MAX_MS, PAYLOAD_MAX_BYTES};
use whisk_core::{ErrorKind, FullyQualifiedName, Identity, StatusCode as Status, WhiskError};

/// The names a request may not set (OpenWhisk's reserved web properties).
pub const RESERVED: [&str; 6] = [
    "__ow_method",
    "__ow_headers",
    "__ow_path",
    "__ow_user",
    "__ow_query",
    "__ow_body",
];

const NOT_ALLOWED: &str =
    "Request defines parameters that are not allowed (e.g., reserved properties).";
const REQUIRE_AUTH_HEADER: &str = "x-require-whisk-auth";

/// Whether `path` is answered by web actions or API routes, whose responses are the
/// actions' own (the REST API's CORS layer leaves them alone).
pub fn is_web_path(path: &str) -> bool {
    match path.strip_prefix("/api/") {
        Some(rest) => rest.starts_with("v1/web/") || !(rest == "v1" || rest.starts_with("v1/")),
        None => false,
    }
}

/// Which web action a request names, and how to answer it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The action's namespace.
    pub namespace: String,
    /// Its package, if any.
    pub package: Option<String>,
    /// Its name.
    pub name: String,
    /// The response type.
    pub ext: Ext,
    /// The rest of the path after the action (`__ow_path`).
    pub path: String,
}

/// An incoming web request, read.
pub struct WebRequest {
    /// Its method.
    pub method: Method,
    /// Its headers.
    pub headers: HeaderMap,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl WebRequest {
    /// Reads `req`'s body (413 beyond the payload limit).
    pub async fn read(req: Request) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts.clone(), body);
        let super::extract::Body(body) =
            <super::extract::Body<PAYLOAD_MAX_BYTES> as axum::extract::FromRequest<()>>::from_request(req, &())
                .await?;
        Ok(Self {
            method: parts.method,
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
        })
    }
}

/// `ANY /api/v1/web/{*path}`.
pub async fn handle(
    State(services): State<Services>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 3 || segments[..3].iter().any(|s| s.is_empty()) {
        return ApiError(WhiskError::not_found()).into_response();
    }
    let (name, ext) = Ext::split(segments[2]);
    let rest = &segments[3..];
    let request = match WebRequest::read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if segments[0] == apis::SYSTEM_NAMESPACE && segments[1] == apis::PACKAGE {
        return apis::manage(&services, name, ext, request).await;
    }
    let target = Target {
        namespace: segments[0].to_string(),
        package: (segments[1] != "default").then(|| segments[1].to_string()),
        name: name.to_string(),
        ext,
        path: if rest.is_empty() {
            String::new()
        } else {
            format!("/{}", rest.join("/"))
        },
    };
    serve(&services, &target, request).await
}

/// The caller's identity when the request carries valid Basic credentials.
pub async fn caller(services: &Services, headers: &HeaderMap) -> Option<Arc<Identity>> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    services.identities.authenticate_header(Some(h)).await.ok()
}

/// Runs web action `target` for `req` and answers.
pub async fn serve(services: &Services, target: &Target, req: WebRequest) -> Response {
    match run(services, target, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(services: &Services, target: &Target, req: WebRequest) -> Result<Response, ApiError> {
    let owner = services.web.owner(&target.namespace).await?;
    let path = match &target.package {
        Some(p) => format!("{p}/{}", target.name),
        None => target.name.clone(),
    };
    let fqn = FullyQualifiedName::from_route(&target.namespace, &path)
        .map_err(|_| ApiError(WhiskError::not_found()))?;
    let resolved = services
        .entities
        .resolve_action(&owner, &fqn)
        .await
        .map_err(|e| match e.kind {
            // Nothing about packages the owner cannot read leaks out of a web URL.
            ErrorKind::Forbidden => ApiError(WhiskError::not_found()),
            _ => ApiError(e),
        })?;
    let action = resolved.action();
    let flag = |k: &str| lookup(&action.annotations, k) == Some(&Value::Bool(true));
    if !flag("web-export") {
        return Err(ApiError(WhiskError::not_found()));
    }
    let custom_options = flag("web-custom-options");
    if !custom_options && req.method == Method::OPTIONS {
        return Ok(with_cors(Response::new(Body::empty()), &req.headers));
    }
    let user = caller(services, &req.headers).await;
    let allowed = (custom_options && req.method == Method::OPTIONS)
        || authorized(
            lookup(&action.annotations, "require-whisk-auth"),
            &req.headers,
            user.is_some(),
        );
    if !allowed {
        return Err(ApiError(WhiskError::new(
            ErrorKind::Unauthorized,
            MISSING_MESSAGE,
        )));
    }
    let raw = flag("raw-http");
    let is_final = flag("final");
    let overrides = |k: &str| {
        RESERVED.contains(&k)
            || (is_final
                && resolved
                    .parameters
                    .iter()
                    .any(|p| p.key == k && !p.value.is_null()))
    };
    let args = arguments(target, &req, user.as_deref(), raw, &overrides)?;
    let mut payload = args.request;
    payload.extend(args.context);
    let outcome = if sequences::is_composite(action) {
        let top = Composite {
            identity: (*owner).clone(),
            component: sequences::component(resolved.clone()),
            payload,
            wait: Some(Duration::from_millis(BLOCKING_WAIT_MAX_MS)),
        };
        let steps = Arc::new(ServiceSteps::new(&services.entities, &services.invocations));
        match services.sequences.invoke(steps, top).await? {
            Ran::Accepted(id) => Invoked::Accepted(id),
            Ran::Completed(a) => Invoked::Completed(a),
        }
    } else {
        let mut content = whisk_core::entity::to_object(&resolved.parameters);
        content.extend(payload);
        services
            .invocations
            .invoke(Invocation {
                identity: &owner,
                fqn: &resolved.fqn,
                action,
                revision: &resolved.action.rev,
                content,
                blocking: true,
                wait: Duration::from_millis(BLOCKING_WAIT_MAX_MS),
                transaction_id: transaction_id(),
                gang_size: 0,
                cause: None,
                preadmitted: false,
                binding: resolved.binding.clone(),
            })
            .await?
    };
    let resp = match outcome {
        Invoked::Accepted(id) => with_id(
            error_response(StatusCode::ACCEPTED, "Response not yet ready."),
            &id,
        ),
        Invoked::Completed(a) => {
            let projected = match a.response.status_code {
                Status::Success => {
                    let result = a.response.result.clone().unwrap_or_else(|| json!({}));
                    web_answer::project(target.ext, &result)
                }
                Status::ApplicationError => {
                    match a.response.result.as_ref().and_then(|r| r.get("error")) {
                        Some(e) => web_answer::project(target.ext, e),
                        None => Err(web_answer::property_not_found()),
                    }
                }
                _ => Err(WhiskError::bad_request(
                    "There was an error processing your request.",
                )),
            };
            let mut resp = match projected {
                Ok(r) => {
                    let mut r = negotiate(r, &req.headers);
                    r.extensions_mut().insert(Verbatim);
                    r
                }
                Err(e) => ApiError(e).into_response(),
            };
            resp = with_id(resp, &a.activation_id);
            resp
        }
    };
    Ok(if custom_options {
        resp
    } else {
        with_cors(resp, &req.headers)
    })
}

/// `resp`, or 406 when the request's `Accept` header admits no media range of its content
/// type (OpenWhisk's HTTP stack answers so, in plain text).
fn negotiate(resp: Response, req: &HeaderMap) -> Response {
    let (Some(accept), Some(ct)) = (
        req.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
        resp.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) else {
        return resp;
    };
    if accepts(accept, ct) {
        return resp;
    }
    let ct = ct.to_string();
    let mut out = Response::new(Body::from(format!(
        "Resource representation is only available with these types:\n{ct}"
    )));
    *out.status_mut() = StatusCode::NOT_ACCEPTABLE;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    out
}

/// Whether `Accept` header value `accept` admits content type `ct`.
fn accepts(accept: &str, ct: &str) -> bool {
    let Some(media) = media_type(ct) else {
        return true;
    };
    let (main, _) = media.split_once('/').unwrap_or((media.as_str(), ""));
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let r = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        !zero && (r == "*/*" || r == media || r.strip_suffix("/*") == Some(main) || r.is_empty())
    })
}

/// Whether the `require-whisk-auth` annotation `value` lets the request through.
fn authorized(value: Option<&Value>, headers: &HeaderMap, authenticated: bool) -> bool {
    let header = || {
        headers
            .get(REQUIRE_AUTH_HEADER)
            .and_then(|v| v.to_str().ok())
    };
    match value {
        None | Some(Value::Bool(false)) => true,
        Some(Value::Bool(true)) => authenticated,
        Some(Value::String(s)) => header() == Some(s.as_str()),
        Some(Value::Number(n)) => header() == Some(n.to_string().as_str()),
        Some(_) => false,
    }
}

/// OpenWhisk's default CORS headers of web actions (the request's
/// `Access-Control-Request-Headers` echoed when present).
fn with_cors(mut resp: Response, req: &HeaderMap) -> Response {
    let allow = req
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(super::ALLOW_HEADERS));
    super::set_cors(
        resp.headers_mut(),
        "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH",
        allow,
    );
    resp
}

/// The action's arguments from a request: what the caller chose (query and body, checked
/// against reserved and final names unless raw) and the request's context (`__ow_*`).
pub struct Arguments {
    /// Query and body parameters (or, raw, `__ow_query` and `__ow_body`).
    pub request: Map<String, Value>,
    /// `__ow_method`, `__ow_headers`, `__ow_path`, `__ow_user`.
    pub context: Map<String, Value>,
}

fn arguments(
    target: &Target,
    req: &WebRequest,
    user: Option<&Identity>,
    raw: bool,
    overrides: &dyn Fn(&str) -> bool,
) -> Result<Arguments, ApiError> {
    let mut context = Map::new();
    context.insert(
        "__ow_method".into(),
        json!(req.method.as_str().to_ascii_lowercase()),
    );
    let mut headers = Map::new();
    for (k, v) in &req.headers {
        headers.insert(
            k.as_str().to_string(),
            json!(String::from_utf8_lossy(v.as_bytes())),
        );
    }
    context.insert("__ow_headers".into(), Value::Object(headers));
    context.insert("__ow_path".into(), json!(target.path));
    if let Some(u) = user {
        context.insert("__ow_user".into(), json!(u.namespace));
    }
    let body = body_value(req, raw)?;
    let mut request = Map::new();
    if raw {
        request.insert(
            "__ow_query".into(),
            json!(req.query.clone().unwrap_or_default()),
        );
        request.insert("__ow_body".into(), body.unwrap_or_else(|| json!("")));
    } else {
        for (k, v) in form_pairs(req.query.as_deref().unwrap_or("").as_bytes()) {
            request.insert(k, json!(v));
        }
        let body_keys = match &body {
            Some(Value::Object(m)) => m.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        if request
            .keys()
            .map(String::as_str)
            .chain(body_keys)
            .any(overrides)
        {
            return Err(ApiError(WhiskError::bad_request(NOT_ALLOWED)));
        }
        match body {
            Some(Value::Object(m)) => request.extend(m),
            Some(v) => {
                request.insert("__ow_body".into(), v);
            }
            None => {}
        }
    }
    Ok(Arguments { request, context })
}

/// The body as an argument: JSON (parsed unless raw), form fields (unless raw), else a
/// string — base64 when the content type is binary (or JSON, raw).
fn body_value(req: &WebRequest, raw: bool) -> Result<Option<Value>, ApiError> {
    if req.body.is_empty() {
        return Ok(None);
    }
    let media = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(media_type)
        .unwrap_or_else(|| "application/octet-stream".to_string());
    if !raw && is_json(&media) {
        return match serde_json::from_slice::<Value>(&req.body) {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(ApiError(WhiskError::bad_request(format!(
                "The request content was malformed:\n{e}"
            )))),
        };
    }
    if !raw && media == "application/x-www-form-urlencoded" {
        let fields: Map<String, Value> = form_pairs(&req.body)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        return Ok(Some(Value::Object(fields)));
    }
    if is_binary(&media) || media == "application/json" {
        return Ok(Some(json!(
            base64::engine::general_purpose::STANDARD.encode(&req.body)
        )));
    }
    Ok(Some(json!(String::from_utf8_lossy(&req.body))))
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body); a repeated key
/// keeps its last value.
pub fn form_pairs(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut kv = p.splitn(2, |b| *b == b'=');
            let k = decode(kv.next().unwrap_or_default());
            let v = decode(kv.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn decode(s: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
