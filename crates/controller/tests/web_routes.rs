//! API routes through the controller and the fake invoker (which answers with its
//! arguments): `wsk api`'s management calls (`whisk.system/apimgmt/{createApi,getApi,
//! deleteApi}.http`) and calls of the routes they create, by key uuid and by namespace.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};

/// Creates web action `name` in guest's namespace with `params`.
async fn web_action(h: &Harness, name: &str, params: Value) {
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            Some(&guest()),
            Some(json!({"exec": {"kind": "python:3", "code": "def main(a): return a"},
                        "annotations": [{"key": "web-export", "value": true}], "parameters": params})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

const MGMT: &str = "/api/v1/web/whisk.system/apimgmt";

fn apidoc(base: &str, rel: &str, verb: &str, action: &str) -> Value {
    json!({"apidoc": {
        "namespace": "_", "gatewayBasePath": base, "gatewayPath": rel, "gatewayMethod": verb,
        "id": format!("API:_:{base}"),
        "action": {"name": action, "namespace": "_", "backendMethod": verb,
                   "backendUrl": format!("http://example.test/api/v1/web/_/default/{action}.http"),
                   "authkey": "k"}
    }})
}

#[tokio::test]
async fn api_routes() {
    let h = Harness::start().await;
    let g = guest();
    web_action(&h, "hello", json!([{"key": "who", "value": "world"}])).await;

    h.error(
        Method::POST,
        &format!("{MGMT}/createApi.http"),
        None,
        Some(apidoc("/hello", "/world", "GET", "hello")),
        401,
    )
    .await;
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{MGMT}/createApi.http?responsetype=json"),
            Some(&g),
            Some(apidoc("/hello", "/world", "GET", "hello")),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let url = v["gwApiUrl"].as_str().unwrap().to_string();
    assert_eq!(url, format!("http://example.test/api/{}/hello", g.uuid));
    let op = &v["apidoc"]["paths"]["/world"]["get"];
    assert_eq!(op["operationId"], "getWorld");
    assert_eq!(op["x-openwhisk"]["action"], "hello");
    assert_eq!(op["x-openwhisk"]["namespace"], "guest");
    assert_eq!(
        op["x-openwhisk"]["url"],
        "http://example.test/api/v1/web/guest/default/hello.json"
    );

    // A second operation on the same base path joins the API.
    let (s, _) = h
        .call(
            Method::POST,
            &format!("{MGMT}/createApi.http?responsetype=http"),
            Some(&g),
            Some(apidoc("/hello", "/books/{id}", "POST", "hello")),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = h
        .call(
            Method::GET,
            &format!("{MGMT}/getApi.http?basepath=/hello"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["apis"].as_array().unwrap().len(), 1);
    let doc = &v["apis"][0]["value"]["apidoc"];
    assert_eq!(doc["basePath"], "/hello");
    assert!(doc["paths"]["/books/{id}"]["post"].is_object());
    let (_, v) = h
        .call(
            Method::GET,
            &format!("{MGMT}/getApi.http?basepath=/hello"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(v["apis"][0]["value"]["apidoc"]["info"]["title"], "/hello");

    // Calling the routes: by the key's uuid or by the namespace.
    for owner in [g.uuid.as_str(), "guest"] {
        let (s, v) = h
            .call(
                Method::GET,
                &format!("/api/{owner}/hello/world?x=1"),
                None,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["who"].clone(), v["x"].clone()),
            (json!("world"), json!("1"))
        );
    }
    let resp = h
        .req(
            Method::POST,
            "/api/guest/hello/books/42?statusCode=202&body=ok",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.text().await.unwrap(), "ok");
    h.error(Method::POST, "/api/guest/hello/world", None, None, 404)
        .await;
    h.error(Method::GET, "/api/guest/nothing/here", None, None, 404)
        .await;
    h.error(Method::GET, "/api/nobody/hello/world", None, None, 404)
        .await;

    // Deleting one operation, then the API.
    let (s, _) = h
        .call(
            Method::DELETE,
            &format!("{MGMT}/deleteApi.http?basepath=/hello&relpath=/books/{{id}}&operation=POST"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200);
    h.error(Method::POST, "/api/guest/hello/books/42", None, None, 404)
        .await;
    let (s, _) = h
        .call(
            Method::DELETE,
            &format!("{MGMT}/deleteApi.http?basepath=/hello&force=true"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = h
        .call(Method::GET, &format!("{MGMT}/getApi.http"), Some(&g), None)
        .await;
    assert_eq!(v["apis"], json!([]));
    h.error(Method::GET, "/api/guest/hello/world", None, None, 404)
        .await;
    let (s, v) = h
        .call(
            Method::DELETE,
            &format!("{MGMT}/deleteApi.http?basepath=/hello"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 502);
    assert_eq!(
        v["error"],
        "API deletion failure: API '/hello' does not exist."
    );
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{MGMT}/createApi.http"),
            Some(&g),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, v["error"].clone()), (502, json!("apidoc is required.")));
    // The REST API is untouched by the route table.
    let (s, _) = h
        .call(Method::GET, "/api/v1/namespaces", Some(&g), None)
        .await;
    assert_eq!(s, 200);
}
