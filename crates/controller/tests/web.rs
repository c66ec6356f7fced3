//! Web actions and API routes through the controller and the fake invoker (which answers
//! with its arguments, or fails as `mode` asks): arguments and `__ow_*` context, the
//! extensions' projections, reserved and final parameters, raw HTTP, `require-whisk-auth`,
//! OPTIONS and CORS, errors of the action, packaged and sequence web actions. API routes:
//! `web_routes.rs`.

mod common;

use base64::Engine;
use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};

/// Creates action `name` in guest's namespace with `annotations` and `params`.
async fn action(h: &Harness, name: &str, annotations: Value, params: Value) {
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            Some(&guest()),
            Some(
                json!({"exec": {"kind": "python:3", "code": "def main(a): return a"},
                        "annotations": annotations, "parameters": params}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

fn web(extra: &[(&str, Value)]) -> Value {
    let mut a = vec![json!({"key": "web-export", "value": true})];
    for (k, v) in extra {
        a.push(json!({"key": k, "value": v}));
    }
    Value::Array(a)
}

#[tokio::test]
async fn arguments_and_context() {
    let h = Harness::start().await;
    action(&h, "w", web(&[]), json!([{"key": "p", "value": 1}])).await;

    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/web/guest/default/w.json?a=1&b=x%20y",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["a"], "1");
    assert_eq!(v["b"], "x y");
    assert_eq!(v["p"], 1);
    assert_eq!(v["__ow_method"], "get");
    assert_eq!(v["__ow_path"], "");
    assert!(v["__ow_headers"].is_object());
    assert!(v.get("__ow_user").is_none());

    // A JSON body merges over the query; the caller's key adds __ow_user; the rest of the
    // path is __ow_path.
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/web/guest/default/w.json/x/y?a=1",
            Some(&guest()),
            Some(json!({"a": 2, "c": [1]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["a"].clone(), v["c"].clone()), (json!(2), json!([1])));
    assert_eq!(v["__ow_method"], "post");
    assert_eq!(v["__ow_path"], "/x/y");
    assert_eq!(v["__ow_user"], "guest");
    assert_eq!(v["__ow_headers"]["content-type"], "application/json");

    // Form fields are arguments; a text body is __ow_body.
    let resp = h
        .req(Method::POST, "/api/v1/web/guest/default/w.json", None)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Jane&x=1")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["name"].clone(), v["x"].clone()),
        (json!("Jane"), json!("1"))
    );
    let resp = h
        .req(Method::PUT, "/api/v1/web/guest/default/w.json", None)
        .header("content-type", "text/plain")
        .body("Jane")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["__ow_body"], "Jane");
    assert_eq!(v["__ow_method"], "put");

    // The activation belongs to the action's owner and is named in the header.
    let resp = h
        .req(Method::GET, "/api/v1/web/guest/default/w.json", None)
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-openwhisk-activation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (s, rec) = h
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/_/activations/{id}"),
            Some(&guest()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(rec["name"], "w");
}

#[tokio::test]
async fn missing_unexported_and_unknown() {
    let h = Harness::start().await;
    action(&h, "plain", json!([]), json!([])).await;
    action(
        &h,
        "off",
        json!([{"key": "web-export", "value": false}]),
        json!([]),
    )
    .await;
    action(&h, "w", web(&[]), json!([])).await;
    for path in [
        "/api/v1/web/guest/default/plain.json",
        "/api/v1/web/guest/default/off.http",
        "/api/v1/web/guest/default/none.json",
        "/api/v1/web/nobody/default/w.json",
        "/api/v1/web/guest/nopkg/w.json",
        // An unknown extension is part of the action's name, as OpenWhisk.
        "/api/v1/web/guest/default/w.xyz",
        "/api/v1/web/guest/default",
    ] {
        let m = h.error(Method::GET, path, None, None, 404).await;
        assert_eq!(m, "The requested resource does not exist.", "{path}");
    }
    // The platform keeps serving.
    let (s, _) = h
        .call(Method::GET, "/api/v1/web/guest/default/w.json", None, None)
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn http_projection_and_bad_status_codes() {
    let h = Harness::start().await;
    action(&h, "w", web(&[]), json!([])).await;
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.http?statusCode=201&body=hi",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=UTF-8");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.text().await.unwrap(), "hi");

    // An Accept header that excludes the projection's type is 406, as OpenWhisk.
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.http?body=hi",
            None,
        )
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    assert_eq!(
        resp.text().await.unwrap(),
        "Resource representation is only available with these types:\ntext/html; charset=UTF-8"
    );
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.http?body=hi",
            None,
        )
        .header("accept", "text/*;q=0.5, application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // No extension is .http; no body is 204.
    let resp = h
        .req(Method::GET, "/api/v1/web/guest/default/w", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // A status code that is not one, and a non-HTTP error status from the action itself.
    for q in ["statusCode=abc", "statusCode=42", "statusCode=99999"] {
        let m = h
            .error(
                Method::GET,
                &format!("/api/v1/web/guest/default/w.http?{q}"),
                None,
                None,
                400,
            )
            .await;
        assert_eq!(m, "Response is not valid 'message/http'.", "{q}");
    }
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.http?statusCode=404&body=gone",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.text().await.unwrap(),
        "gone",
        "the action's own 404 is kept"
    );

    // .text and .html project body; .json needs an object.
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.text?text=plain",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=UTF-8");
    assert_eq!(resp.text().await.unwrap(), "plain");
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.html?html=%3Cp%3E",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "<p>");
    let m = h
        .error(
            Method::GET,
            "/api/v1/web/guest/default/w.svg",
            None,
            None,
            400,
        )
        .await;
    assert_eq!(m, "Response is not valid 'image/svg+xml'.");
}

#[tokio::test]
async fn reserved_and_final_parameters() {
    let h = Harness::start().await;
    action(
        &h,
        "w",
        web(&[("final", json!(true))]),
        json!([{"key": "p", "value": 1}]),
    )
    .await;
    for (path, body) in [
        ("/api/v1/web/guest/default/w.json?__ow_method=x", None),
        ("/api/v1/web/guest/default/w.json?p=2", None),
        (
            "/api/v1/web/guest/default/w.json",
            Some(json!({"__ow_user": "root"})),
        ),
        ("/api/v1/web/guest/default/w.json", Some(json!({"p": 3}))),
    ] {
        let m = h.error(Method::POST, path, None, body, 400).await;
        assert_eq!(
            m, "Request defines parameters that are not allowed (e.g., reserved properties).",
            "{path}"
        );
    }
    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/web/guest/default/w.json?q=1",
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, v["p"].clone(), v["q"].clone()),
        (200, json!(1), json!("1"))
    );
}

#[tokio::test]
async fn raw_http() {
    let h = Harness::start().await;
    action(&h, "raw", web(&[("raw-http", json!(true))]), json!([])).await;
    let resp = h
        .req(
            Method::POST,
            "/api/v1/web/guest/default/raw.json?a=1&b=2",
            None,
        )
        .header("content-type", "application/json")
        .body(r#"{"x":1}"#)
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["__ow_query"], "a=1&b=2");
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(v["__ow_body"], b64.encode(r#"{"x":1}"#));
    assert!(v.get("a").is_none() && v.get("x").is_none());
    let resp = h
        .req(Method::POST, "/api/v1/web/guest/default/raw.json", None)
        .header("content-type", "image/png")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["__ow_body"], b64.encode([0u8, 1, 2, 255]));
    let (_, v) = h
        .call(
            Method::GET,
            "/api/v1/web/guest/default/raw.json",
            None,
            None,
        )
        .await;
    assert_eq!(
        (v["__ow_body"].clone(), v["__ow_query"].clone()),
        (json!(""), json!(""))
    );
}

#[tokio::test]
async fn require_whisk_auth() {
    let h = Harness::start().await;
    action(
        &h,
        "secret",
        web(&[("require-whisk-auth", json!("s3cr3t"))]),
        json!([]),
    )
    .await;
    action(
        &h,
        "keyed",
        web(&[("require-whisk-auth", json!(true))]),
        json!([]),
    )
    .await;
    let url = "/api/v1/web/guest/default/secret.json";
    h.error(Method::GET, url, None, None, 401).await;
    let resp = h
        .req(Method::GET, url, None)
        .header("x-require-whisk-auth", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = h
        .req(Method::GET, url, None)
        .header("x-require-whisk-auth", "s3cr3t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let url = "/api/v1/web/guest/default/keyed.json";
    h.error(Method::GET, url, None, None, 401).await;
    let resp = h
        .req(Method::GET, url, None)
        .basic_auth("nobody", Some("nokey"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "invalid credentials are none");
    let (s, v) = h.call(Method::GET, url, Some(&guest()), None).await;
    assert_eq!((s, v["__ow_user"].clone()), (200, json!("guest")));
}

#[tokio::test]
async fn options_and_cors() {
    let h = Harness::start().await;
    action(&h, "w", web(&[]), json!([])).await;
    action(
        &h,
        "own",
        web(&[("web-custom-options", json!(true))]),
        json!([]),
    )
    .await;
    let resp = h
        .req(Method::OPTIONS, "/api/v1/web/guest/default/w.http", None)
        .header("access-control-request-headers", "x-custom")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().get("x-openwhisk-activation-id").is_none(),
        "no activation"
    );
    assert_eq!(
        resp.headers()["access-control-allow-methods"],
        "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
    );
    assert_eq!(resp.headers()["access-control-allow-headers"], "x-custom");

    // The action answers OPTIONS itself, with its own headers only.
    let resp = h
        .req(
            Method::OPTIONS,
            "/api/v1/web/guest/default/own.http?statusCode=200&body=mine",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-openwhisk-activation-id").is_some());
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_eq!(resp.text().await.unwrap(), "mine");
}

#[tokio::test]
async fn action_failures() {
    let h = Harness::start().await;
    action(&h, "w", web(&[]), json!([])).await;
    // An application error projects its `error` field.
    let resp = h
        .req(
            Method::GET,
            "/api/v1/web/guest/default/w.text?mode=fail",
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "it failed");
    let m = h
        .error(
            Method::GET,
            "/api/v1/web/guest/default/w.json?mode=fail",
            None,
            None,
            400,
        )
        .await;
    assert_eq!(m, "Response is not valid 'application/json'.");
    for mode in ["crash", "whisk"] {
        let m = h
            .error(
                Method::GET,
                &format!("/api/v1/web/guest/default/w.json?mode={mode}"),
                None,
                None,
                400,
            )
            .await;
        assert_eq!(m, "There was an error processing your request.");
    }
    // A body over the payload limit.
    let big = "x".repeat(whisk_core::limits::PAYLOAD_MAX_BYTES + 1);
    let resp = h
        .req(Method::POST, "/api/v1/web/guest/default/w.json", None)
        .header("content-type", "text/plain")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (s, _) = h
        .call(Method::GET, "/api/v1/web/guest/default/w.json", None, None)
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn packaged_and_sequence_web_actions() {
    let h = Harness::start().await;
    let g = guest();
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/packages/pkg",
            Some(&g),
            Some(json!({"parameters": [{"key": "pp", "value": 1}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    action(&h, "pkg/w", web(&[]), json!([{"key": "p", "value": 2}])).await;
    let (s, v) = h
        .call(Method::GET, "/api/v1/web/guest/pkg/w.json?q=3", None, None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["pp"].clone(), v["p"].clone(), v["q"].clone()),
        (json!(1), json!(2), json!("3"))
    );
    h.error(
        Method::GET,
        "/api/v1/web/guest/default/w.json",
        None,
        None,
        404,
    )
    .await;

    action(&h, "inner", json!([]), json!([])).await;
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/seq",
            Some(&g),
            Some(
                json!({"exec": {"kind": "sequence", "components": ["/guest/inner"]},
                          "annotations": [{"key": "web-export", "value": true}]}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/web/guest/default/seq.json?z=1",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["z"].clone(), v["__ow_method"].clone()),
        (json!("1"), json!("get"))
    );
}
