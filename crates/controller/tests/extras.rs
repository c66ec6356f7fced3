//! What OpenWhisk users expect beyond the entities, through the controller's API: the OpenAPI
//! document at `/api/v1/api-docs` (and every route of the router described in it), `exec.binary`
//! decided from the code, and `limits.concurrency` within the platform's maximum and only for
//! kinds that run concurrent activations.

mod common;

use std::collections::BTreeSet;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};

/// The router's route table, as written in `api/mod.rs`.
const ROUTER_SOURCE: &str = include_str!("../src/api/mod.rs");
/// The document served.
const OPENAPI: &str = include_str!("../src/api/openapi.json");

/// One `.route(path, methods)` of the router: its path (with `{ns}` expanded) and methods.
#[derive(Debug)]
struct Route {
    path: String,
    methods: BTreeSet<String>,
    any: bool,
}

/// The `.route(...)` calls of `router()` in `api/mod.rs`.
fn router_routes() -> Vec<Route> {
    let body = ROUTER_SOURCE
        .split("pub fn router(")
        .nth(1)
        .expect("api/mod.rs has `pub fn router(`");
    let body = body.split("\n}\n").next().unwrap();
    // The web console's pages (HTML, not the REST API) come from whisk-console.
    let body = body.replace(".merge(whisk_console::router())", "");
    // Routes added by other means would escape this check: the table must stay `.route` calls.
    for hidden in [".merge(", ".nest(", ".nest_service(", ".route_service("] {
        assert!(
            !body.contains(hidden),
            "router() uses {hidden}: teach this test to see its routes"
        );
    }
    let ns = body
        .split("let ns = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("router() names the namespace prefix `ns`");
    let mut routes = vec![];
    let parts: Vec<&str> = body.split(".route(").skip(1).collect();
    for part in parts {
        let part = part.split(".fallback(").next().unwrap();
        let start = part.find('"').expect("a route's path is a string literal");
        let rest = &part[start + 1..];
        let end = rest.find('"').unwrap();
        let literal = &rest[..end];
        let path = if part[..start].contains("format!") {
            literal
                .replace("{ns}", ns)
                .replace("{{", "{")
                .replace("}}", "}")
        } else {
            literal.to_string()
        };
        let calls = &rest[end + 1..];
        let mut methods = BTreeSet::new();
        let mut any = false;
        for method in ["get", "put", "post", "delete", "patch", "head", "any"] {
            let called = [" ", "(", ".", "\n"]
                .iter()
                .any(|before| calls.contains(&format!("{before}{method}(")));
            if called {
                if method == "any" {
                    any = true;
                } else {
                    methods.insert(method.to_string());
                }
            }
        }
        assert!(any || !methods.is_empty(), "no method found for {path}");
        routes.push(Route { path, methods, any });
    }
    routes
}

/// `{anything}` → `{}` (names of path parameters differ between the router and the document).
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("{}");
                }
            }
            '}' => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// The document's paths that a router path serves: the same shape, or for a trailing
/// `{*rest}` any path with the same prefix and something after it.
fn documented<'a>(route: &str, doc: &'a serde_json::Map<String, Value>) -> Vec<&'a Value> {
    let wildcard = route.find("{*");
    doc.iter()
        .filter(|(path, _)| match wildcard {
            Some(at) => {
                let prefix = shape(&route[..at]);
                let path = shape(path);
                path.len() > prefix.len() && path.starts_with(&prefix)
            }
            None => shape(path) == shape(route),
        })
        .map(|(_, item)| item)
        .collect()
}

#[test]
fn every_route_of_the_router_is_in_the_document() {
    let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().expect("paths");
    let routes = router_routes();
    assert!(routes.len() > 20, "{routes:?}");
    let mut missing = vec![];
    for route in &routes {
        let items = documented(&route.path, paths);
        if items.is_empty() {
            missing.push(format!("{} (no path)", route.path));
            continue;
        }
        let has = |m: &str| items.iter().any(|item| item.get(m).is_some());
        let wanted: Vec<&str> = if route.any {
            vec!["get", "post", "put", "delete"]
        } else {
            route.methods.iter().map(String::as_str).collect()
        };
        for m in wanted {
            if !has(m) {
                missing.push(format!("{} {}", m.to_uppercase(), route.path));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes of api/mod.rs missing from openapi.json: {missing:#?}"
    );
    // Every `$ref` points at something the document defines.
    let mut refs = vec![];
    collect_refs(&doc, &mut refs);
    for r in refs {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn api_docs_are_served_where_api_v1_says() {
    let h = Harness::start().await;
    let (s, info) = h.call(Method::GET, "/api/v1", None, None).await;
    assert_eq!(s, 200);
    let docs = info["swagger_paths"]["api-docs"].as_str().unwrap();
    for path in [
        format!("/api/v1{docs}"),
        format!("/api/v1{docs}/"),
        docs.to_string(),
    ] {
        let resp = h.req(Method::GET, &path, None).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.0.3", "{path}");
        assert!(
            doc["paths"]["/api/v1/namespaces/{namespace}/actions/{actionName}"]["put"].is_object()
        );
    }
    // Not a prefix: anything below it is OpenWhisk's 404.
    let (s, v) = h
        .call(Method::GET, "/api/v1/api-docs/more", None, None)
        .await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test]
async fn binary_is_decided_from_the_code() {
    let h = Harness::start().await;
    let g = guest();
    // A zip (base64), sent without `binary` as the Serverless Framework plugin does.
    let zip = "UEsDBBQAAAAIAAAAIQAAAAAAAgAAAAAAAAALAAAAX19tYWluX18ucHkDAFBLAQIUABQAAAAIAAAAIQAAAAAAAgAAAAAAAAALAAAAAAAAAAAAAAAAAAAAAABfX21haW5fXy5weVBLBQYAAAAAAQABADkAAAArAAAAAAA=";
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/zipped",
            Some(&g),
            Some(json!({"exec": {"kind": "python:3", "code": zip}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exec"]["binary"], true, "{v}");
    let (_, list) = h
        .call(Method::GET, "/api/v1/namespaces/_/actions", Some(&g), None)
        .await;
    assert_eq!(list[0]["exec"], json!({"binary": true}), "{list}");
    // Source claimed to be binary is not.
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/source",
            Some(&g),
            Some(json!({"exec": {"kind": "nodejs:20", "code": "function main() {}", "binary": true}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exec"]["binary"], false, "{v}");
}

#[tokio::test]
async fn concurrency_limits_follow_the_kind_and_the_platform_maximum() {
    let h = Harness::start().await;
    let g = guest();
    let put = |kind: &str, concurrency: u64| {
        json!({"exec": {"kind": kind, "code": "function main() { return {}; }"},
               "limits": {"concurrency": concurrency}})
    };
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/many",
            Some(&g),
            Some(put("nodejs:20", 50)),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["limits"]["concurrency"], 50, "{v}");

    let message = h
        .error(
            Method::PUT,
            "/api/v1/namespaces/_/actions/toomany",
            Some(&g),
            Some(put("nodejs:20", 501)),
            400,
        )
        .await;
    assert!(message.contains("concurrency 501 exceeds"), "{message}");
    let message = h
        .error(
            Method::PUT,
            "/api/v1/namespaces/_/actions/zero",
            Some(&g),
            Some(put("nodejs:20", 0)),
            400,
        )
        .await;
    assert!(message.contains("concurrency 0 exceeds"), "{message}");
    let message = h
        .error(
            Method::PUT,
            "/api/v1/namespaces/_/actions/py",
            Some(&g),
            Some(put("python:3", 2)),
            400,
        )
        .await;
    assert!(
        message.contains("does not support concurrent activations"),
        "{message}"
    );
    // Changing the kind of a concurrent action to one without concurrency is refused too.
    let message = h
        .error(
            Method::PUT,
            "/api/v1/namespaces/_/actions/many?overwrite=true",
            Some(&g),
            Some(json!({"exec": {"kind": "python:3", "code": "def main(a): return a"}})),
            400,
        )
        .await;
    assert!(
        message.contains("does not support concurrent activations"),
        "{message}"
    );
    // The platform keeps serving, and GET / tells the maximum.
    let (s, root) = h.call(Method::GET, "/", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(root["limits"]["max_action_concurrency"], 500, "{root}");
}
