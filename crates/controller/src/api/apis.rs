//! API routes (`wsk api`, the npm client's `ow.routes`), served natively instead of
//! OpenWhisk's API gateway and its `whisk.system/apimgmt` actions.
//!
//! Management: the clients call `{apihost}/api/v1/web/whisk.system/apimgmt/{createApi,
//! getApi,deleteApi}.http` with their key; [`manage`] answers those requests as the apimgmt
//! actions do through `.http` (200 with the JSON body, or 502 `{"error"}`). An API is one
//! route document per base path of a namespace ([`crate::services::Web`]): its swagger
//! (`basePath`, `info.title`, `paths.{relpath}.{verb}` with `operationId` and `x-openwhisk`
//! `{namespace, package, action, url}`) and its URL, `{apihost}/api/{key uuid}{basepath}`.
//!
//! Calls: [`route`] answers `ANY /api/{uuid or namespace}/{basepath}{relpath}` by finding
//! the operation (path templates such as `/books/{id}` match any segment) and running its
//! web action with the request's method, headers, query and body, answered with the
//! operation's response type.

use super::web::{self, form_pairs, Target, WebRequest};
use super::web_answer::Ext;
use crate::auth::MISSING_MESSAGE;
use crate::errors::ApiError;
use crate::services::Services;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use whisk_core::{now_ms, ErrorKind, Identity, WhiskError};

/// The namespace of the route management package.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";
/// The route management package.
pub const PACKAGE: &str = "apimgmt";

/// The HTTP verbs an API operation may use.
const VERBS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// A failed management request: the apimgmt actions' 502 `{"error"}`.
fn failure(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

/// Answers `whisk.system/apimgmt/{name}` (Basic credentials required).
pub async fn manage(services: &Services, name: &str, _ext: Ext, req: WebRequest) -> Response {
    let Some(user) = web::caller(services, &req.headers).await else {
        return ApiError(WhiskError::new(ErrorKind::Unauthorized, MISSING_MESSAGE)).into_response();
    };
    let query: HashMap<String, String> = form_pairs(req.query.as_deref().unwrap_or("").as_bytes())
        .into_iter()
        .collect();
    let answer = match name {
        "createApi" => create(services, &user, &query, &req).await,
        "getApi" => get(services, &user, &query).await,
        "deleteApi" => delete(services, &user, &query).await,
        _ => return ApiError(WhiskError::not_found()).into_response(),
    };
    match answer {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(Failure::Client(m)) => failure(m),
        Err(Failure::Platform(e)) => ApiError(e).into_response(),
    }
}

/// Why a management request failed.
enum Failure {
    /// The request (502 with the message, as the apimgmt actions).
    Client(String),
    /// The platform (the store).
    Platform(WhiskError),
}

impl From<WhiskError> for Failure {
    fn from(e: WhiskError) -> Self {
        Failure::Platform(e)
    }
}

/// A JSON object field that may also arrive as a JSON string (as the clients allow).
fn object(v: Option<&Value>) -> Option<Map<String, Value>> {
    match v? {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        },
        _ => None,
    }
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `{scheme}://{host}` the client used: from the action's backend URL it sent, else the
/// request's `Host` (and `X-Forwarded-Proto`).
fn api_host(backend_url: Option<&str>, headers: &HeaderMap) -> String {
    if let Some((base, _)) = backend_url.and_then(|u| u.split_once("/api/v1/")) {
        if base.starts_with("http://") || base.starts_with("https://") {
            return base.to_string();
        }
    }
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let proto = get("x-forwarded-proto").unwrap_or("http");
    let host = get(header::HOST.as_str()).unwrap_or("localhost");
    format!("{proto}://{host}")
}

/// OpenWhisk's operation id: the verb, then the path's words camel-cased.
fn operation_id(verb: &str, relpath: &str) -> String {
    let spaced: String = relpath
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let mut id = verb.to_ascii_lowercase();
    for word in spaced.split_whitespace() {
        let mut cs = word.chars();
        if let Some(first) = cs.next() {
            id.push(first.to_ascii_uppercase());
            id.push_str(&cs.as_str().to_ascii_lowercase());
        }
    }
    id
}

async fn create(
    services: &Services,
    user: &Identity,
    query: &HashMap<String, String>,
    req: &WebRequest,
) -> Result<Value, Failure> {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let Some(apidoc) = object(body.get("apidoc")) else {
        return Err(Failure::Client("apidoc is required.".into()));
    };
    let ns = user.namespace.as_str();
    let action = object(apidoc.get("action"));
    let backend = action.as_ref().and_then(|a| str_field(a, "backendUrl"));
    let host = api_host(backend, &req.headers);
    let (basepath, mut swagger, secure) = if let Some(swagger) = object(apidoc.get("swagger")) {
        let Some(bp) = str_field(&swagger, "basePath").filter(|b| b.starts_with('/')) else {
            return Err(Failure::Client(
                "apidoc swagger is missing the basePath field".into(),
            ));
        };
        (bp.to_string(), swagger, None)
    } else {
        let field = |k: &str| {
            str_field(&apidoc, k)
                .map(str::to_string)
                .ok_or_else(|| Failure::Client(format!("apidoc is missing the {k} field")))
        };
        let basepath = field("gatewayBasePath")?;
        let relpath = field("gatewayPath")?;
        let verb = field("gatewayMethod")?.to_ascii_lowercase();
        if !basepath.starts_with('/') || !relpath.starts_with('/') {
            return Err(Failure::Client(
                "The base path and the relative path must begin with '/'.".into(),
            ));
        }
        if !VERBS.contains(&verb.as_str()) {
            return Err(Failure::Client(format!(
                "'{verb}' is not a valid API verb."
            )));
        }
        let Some(action) = action else {
            return Err(Failure::Client("apidoc is missing the action field".into()));
        };
        let Some(full) = str_field(&action, "name") else {
            return Err(Failure::Client(
                "apidoc action is missing the name field".into(),
            ));
        };
        let response_type = query.get("responsetype").map_or("json", String::as_str);
        if Ext::parse(response_type).is_none() {
            return Err(Failure::Client(format!(
                "Invalid responsetype '{response_type}'. Valid values are: http, json, html, text, svg"
            )));
        }
        let action_ns = match str_field(&action, "namespace") {
            None | Some("_") => ns.to_string(),
            Some(a) if Some(a) == str_field(&apidoc, "namespace") => ns.to_string(),
            Some(a) => a.to_string(),
        };
        let parts: Vec<&str> = full.trim_start_matches('/').split('/').collect();
        let (package, name) = match parts.as_slice() {
            [n] => ("", *n),
            [p, n] => (*p, *n),
            [_, p, n] => (*p, *n),
            _ => {
                return Err(Failure::Client(format!(
                    "'{full}' is not a valid action name."
                )))
            }
        };
        let url = format!(
            "{host}/api/v1/web/{action_ns}/{}/{name}.{response_type}",
            if package.is_empty() {
                "default"
            } else {
                package
            }
        );
        let existing = services.web.api(ns, &basepath).await?;
        let mut swagger = match existing.as_ref().and_then(|r| object(r.doc.get("apidoc"))) {
            Some(s) => s,
            None => base_swagger(&basepath, str_field(&apidoc, "apiName")),
        };
        let op_id = operation_id(&verb, &relpath);
        let mut op = json!({
            "operationId": op_id,
            "x-openwhisk": {"namespace": action_ns, "package": package, "action": name, "url": url},
            "responses": {"default": {"description": "Default response"}},
        });
        if let Some(p) = apidoc.get("pathParameters").filter(|p| p.is_array()) {
            op["parameters"] = p.clone();
        }
        let paths = swagger.entry("paths").or_insert_with(|| json!({}));
        if !paths.is_object() {
            *paths = json!({});
        }
        let entry = paths
            .as_object_mut()
            .map(|p| p.entry(relpath.clone()).or_insert_with(|| json!({})));
        if let Some(Value::Object(ops)) = entry {
            ops.insert(verb, op);
        }
        let secure = action
            .get("secureKey")
            .filter(|k| !k.is_null() && *k != &Value::Bool(false));
        (basepath, swagger, secure.map(|k| (op_id, k.clone())))
    };
    let existing = services.web.api(ns, &basepath).await?;
    let mut keys = existing
        .as_ref()
        .and_then(|r| object(r.doc.get("secureKeys")))
        .unwrap_or_default();
    if let Some((op, key)) = secure {
        keys.insert(op, key);
    }
    swagger.insert("basePath".into(), json!(basepath));
    let url = format!("{host}/api/{}{}", user.uuid, basepath.trim_end_matches('/'));
    let doc = json!({
        "namespace": ns,
        "name": basepath,
        "updated": now_ms(),
        "gwApiUrl": url,
        "apidoc": Value::Object(swagger),
        "secureKeys": Value::Object(keys),
    });
    services
        .web
        .put_api(
            ns,
            &basepath,
            &doc,
            existing.as_ref().map(|r| r.rev.as_str()),
        )
        .await?;
    Ok(cli_value(&doc))
}

fn base_swagger(basepath: &str, name: Option<&str>) -> Map<String, Value> {
    let v = json!({
        "swagger": "2.0",
        "info": {"title": name.unwrap_or(basepath), "version": "1.0.0"},
        "basePath": basepath,
        "paths": {},
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The API as the CLI reads it (the apimgmt actions' `value`).
fn cli_value(doc: &Value) -> Value {
    json!({
        "namespace": doc.get("namespace").cloned().unwrap_or(Value::Null),
        "gwApiActivated": true,
        "tenantId": "Not Used",
        "gwApiUrl": doc.get("gwApiUrl").cloned().unwrap_or(Value::Null),
        "apidoc": doc.get("apidoc").cloned().unwrap_or(json!({})),
    })
}

fn cli_item(doc: &Value) -> Value {
    json!({"id": "Not Used", "key": "Not Used", "value": cli_value(doc)})
}

/// The APIs `basepath` names: the one at that base path (it begins with `/`), or those
/// titled so.
async fn find(
    services: &Services,
    ns: &str,
    basepath: &str,
) -> Result<Vec<whisk_store::Revisioned<Value>>, WhiskError> {
    if basepath.starts_with('/') {
        return Ok(services.web.api(ns, basepath).await?.into_iter().collect());
    }
    let all = services.web.apis(ns, 0, usize::MAX).await?;
    let mut out = Vec::new();
    for doc in all {
        let title = doc.pointer("/apidoc/info/title").and_then(Value::as_str);
        if title == Some(basepath) {
            if let Some(bp) = doc.get("name").and_then(Value::as_str) {
                out.extend(services.web.api(ns, bp).await?);
            }
        }
    }
    Ok(out)
}

async fn get(
    services: &Services,
    user: &Identity,
    query: &HashMap<String, String>,
) -> Result<Value, Failure> {
    let ns = user.namespace.as_str();
    let docs: Vec<Value> = match query.get("basepath").filter(|b| !b.is_empty()) {
        Some(bp) => find(services, ns, bp)
            .await?
            .into_iter()
            .map(|r| r.doc)
            .collect(),
        None => {
            let num = |k: &str, d: usize| {
                query
                    .get(k)
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(d)
            };
            let limit = match num("limit", 0) {
                0 => usize::MAX,
                n => n,
            };
            services.web.apis(ns, num("skip", 0), limit).await?
        }
    };
    Ok(json!({ "apis": docs.iter().map(cli_item).collect::<Vec<_>>() }))
}

async fn delete(
    services: &Services,
    user: &Identity,
    query: &HashMap<String, String>,
) -> Result<Value, Failure> {
    let ns = user.namespace.as_str();
    let Some(bp) = query.get("basepath").filter(|b| !b.is_empty()) else {
        return Err(Failure::Client("basepath is required.".into()));
    };
    let fail = |m: String| Failure::Client(format!("API deletion failure: {m}"));
    let Some(found) = find(services, ns, bp).await?.into_iter().next() else {
        return Err(fail(format!("API '{bp}' does not exist.")));
    };
    let basepath = found
        .doc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(bp)
        .to_string();
    let Some(relpath) = query.get("relpath").filter(|r| !r.is_empty()) else {
        services.web.delete_api(ns, &basepath, &found.rev).await?;
        return Ok(json!({}));
    };
    let mut doc = found.doc.clone();
    let Some(paths) = doc
        .pointer_mut("/apidoc/paths")
        .and_then(Value::as_object_mut)
    else {
        return Err(fail(format!("relpath {relpath} does not exist in the API")));
    };
    match query.get("operation").filter(|o| !o.is_empty()) {
        None => {
            if paths.remove(relpath.as_str()).is_none() {
                return Err(fail(format!("relpath {relpath} does not exist in the API")));
            }
        }
        Some(op) => {
            let op = op.to_ascii_lowercase();
            let ops = paths
                .get_mut(relpath.as_str())
                .and_then(Value::as_object_mut);
            if ops.and_then(|o| o.remove(&op)).is_none() {
                return Err(fail(format!(
                    "relpath {relpath} with operation {op} does not exist in the API"
                )));
            }
            if paths
                .get(relpath.as_str())
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                paths.remove(relpath.as_str());
            }
        }
    }
    if paths.is_empty() {
        services.web.delete_api(ns, &basepath, &found.rev).await?;
    } else {
        doc["updated"] = json!(now_ms());
        services
            .web
            .put_api(ns, &basepath, &doc, Some(&found.rev))
            .await?;
    }
    Ok(json!({}))
}

/// Whether swagger path `template` (`/books/{id}`) matches request path `path`.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| *t == *p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

/// `ANY /api/{uuid or namespace}/{*path}`: an API route call.
pub async fn route(
    State(services): State<Services>,
    Path((owner, rest)): Path<(String, String)>,
    req: Request,
) -> Response {
    let not_found = || ApiError(WhiskError::not_found()).into_response();
    let Ok(owner) = services.web.route_owner(&owner).await else {
        return not_found();
    };
    let ns = owner.namespace.clone();
    let verb = req.method().as_str().to_ascii_lowercase();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    for k in (0..=segments.len()).rev() {
        let basepath = format!("/{}", segments[..k].join("/"));
        let Ok(Some(api)) = services.web.api(&ns, &basepath).await else {
            continue;
        };
        let relpath = format!("/{}", segments[k..].join("/"));
        let Some(paths) = api.doc.pointer("/apidoc/paths").and_then(Value::as_object) else {
            continue;
        };
        let op = paths
            .iter()
            .filter(|(t, _)| path_matches(t, &relpath))
            .find_map(|(_, ops)| ops.get(&verb));
        let Some(op) = op else { continue };
        let Some(target) = target_of(op, &format!("/{}", segments.join("/"))) else {
            continue;
        };
        let op_id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
        let secure = api
            .doc
            .get("secureKeys")
            .and_then(|k| k.get(op_id))
            .map(|k| match k {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            });
        let mut request = match WebRequest::read(req).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
        if let Some(v) = secure.and_then(|s| HeaderValue::from_str(&s).ok()) {
            request.headers.insert("x-require-whisk-auth", v);
        }
        return web::serve(&services, &target, request).await;
    }
    not_found()
}

/// The web action an operation runs: its `x-openwhisk` names it; the URL's extension is the
/// response type; `.http` operations see the request's path as `__ow_path`.
fn target_of(op: &Value, path: &str) -> Option<Target> {
    let x = op.get("x-openwhisk")?;
    let namespace = x.get("namespace")?.as_str()?.to_string();
    let name = x.get("action")?.as_str()?.to_string();
    let package = x
        .get("package")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && *p != "default")
        .map(str::to_string);
    let ext = x
        .get("url")
        .and_then(Value::as_str)
        .and_then(|u| u.rsplit('/').next())
        .and_then(|last| last.rsplit_once('.'))
        .and_then(|(_, e)| Ext::parse(e))
        .unwrap_or(Ext::Json);
    Some(Target {
        namespace,
        package,
        name,
        ext,
        path: if ext == Ext::Http {
            path.to_string()
        } else {
            String::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_templates() {
        assert_eq!(operation_id("GET", "/world"), "getWorld");
        assert_eq!(operation_id("post", "/foo/bar-x.y"), "postFooBar-xY");
        assert!(path_matches("/books/{id}", "/books/42"));
        assert!(!path_matches("/books/{id}", "/books"));
        assert!(path_matches("/", "/"));
    }
}
