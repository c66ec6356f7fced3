//! REST API without invocations: info routes, authentication, entitlement, action CRUD, and the
//! shape of errors.

mod common;

use common::{error_message, guest, Harness};
use reqwest::Method;
use serde_json::json;
use whisk_core::Identity;

#[tokio::test]
async fn info_routes_need_no_auth() {
    let h = Harness::start().await;
    let (s, v) = h.call(Method::GET, "/api/v1", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["api_version"], "1.0.0");
    assert_eq!(v["swagger_paths"]["api-docs"], "/api-docs");
    let (s, v) = h.call(Method::GET, "/", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["api_paths"], json!(["/api/v1"]));
    assert_eq!(v["limits"]["actions_per_minute"], 60);
    assert!(v["runtimes"]["python"].is_array());
    let (s, v) = h.call(Method::GET, "/ping", None, None).await;
    assert_eq!((s, v), (200, json!("pong")));
    let (s, v) = h.call(Method::GET, "/invokers", None, None).await;
    assert_eq!((s, v), (200, json!({"invoker0/0": "up"})));
    let (s, v) = h
        .call(Method::GET, "/invokers/healthy/count", None, None)
        .await;
    assert_eq!((s, v), (200, json!(1)));
    let (s, v) = h.call(Method::GET, "/invokers/details", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["name"], "invoker0/0");
    assert_eq!(v[0]["state"], "up");
    assert_eq!(v[0]["userMemoryMB"], 2048);
    assert_eq!(v[0]["freeMemoryMB"], 2048);
    assert!(v[0]["lastPingMsAgo"].is_u64(), "{v}");
}

#[tokio::test]
async fn authentication_and_entitlement() {
    let h = Harness::start().await;
    let resp = h
        .req(Method::GET, "/api/v1/namespaces", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Basic realm=\"OpenWhisk secure realm\""
    );
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        error_message(&v),
        "The resource requires authentication, which was not supplied with the request"
    );

    let mut bad = guest();
    bad.key = "wrong".into();
    assert_eq!(
        h.error(Method::GET, "/api/v1/namespaces", Some(&bad), None, 401)
            .await,
        "The supplied authentication is invalid"
    );
    let unknown = Identity::generate("nobody", "nobody");
    let (s, _) = h
        .call(Method::GET, "/api/v1/namespaces", Some(&unknown), None)
        .await;
    assert_eq!(s, 401);
    let resp = h
        .req(Method::GET, "/api/v1/namespaces", None)
        .header("authorization", "Basic %%%")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let (s, v) = h
        .call(Method::GET, "/api/v1/namespaces", Some(&guest()), None)
        .await;
    assert_eq!((s, v), (200, json!(["guest"])));
    assert_eq!(
        h.error(
            Method::GET,
            "/api/v1/namespaces/whisk.system/actions",
            Some(&guest()),
            None,
            403
        )
        .await,
        "The supplied authentication is not authorized to access 'whisk.system/actions'."
    );
    let (s, _) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/guest/actions",
            Some(&guest()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/limits",
            Some(&guest()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["invocationsPerMinute"], 60);
    assert_eq!(v["concurrentInvocations"], 30);
}

#[tokio::test]
async fn action_lifecycle() {
    let h = Harness::start().await;
    let g = guest();
    let base = "/api/v1/namespaces/_/actions";
    let created = h
        .create_action(&g, "hello", json!([{"key": "n", "value": 1}]))
        .await;
    assert_eq!(created["version"], "0.0.1");
    assert_eq!(created["namespace"], "guest");
    assert_eq!(created["exec"]["kind"], "python:3");

    // without overwrite: 409
    let body = json!({"exec": {"kind": "python:3", "code": "x"}});
    assert_eq!(
        h.error(
            Method::PUT,
            &format!("{base}/hello"),
            Some(&g),
            Some(body.clone()),
            409
        )
        .await,
        "resource already exists"
    );
    // update bumps the version and keeps the parameters
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{base}/hello?overwrite=true"),
            Some(&g),
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], "0.0.2");
    assert_eq!(v["parameters"], json!([{"key": "n", "value": 1}]));

    let (s, v) = h
        .call(Method::GET, &format!("{base}/hello"), Some(&g), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["exec"]["code"], "x");
    let (_, v) = h
        .call(
            Method::GET,
            &format!("{base}/hello?code=false"),
            Some(&g),
            None,
        )
        .await;
    assert!(v["exec"].get("code").is_none(), "{v}");

    // an action in a package: the package path becomes part of its namespace
    h.create_package(&g, "pkg").await;
    h.create_action(&g, "pkg/inner", json!([])).await;
    let (s, v) = h
        .call(Method::GET, &format!("{base}/pkg/inner"), Some(&g), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["namespace"], "guest/pkg");

    let (s, v) = h.call(Method::GET, base, Some(&g), None).await;
    assert_eq!(s, 200);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|a| a["exec"].get("code").is_none()));
    let (_, v) = h
        .call(Method::GET, &format!("{base}?count=true"), Some(&g), None)
        .await;
    assert_eq!(v, json!({"actions": 2}));
    let (_, v) = h
        .call(
            Method::GET,
            &format!("{base}?limit=1&skip=1"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(
        h.error(
            Method::GET,
            &format!("{base}?limit=201"),
            Some(&g),
            None,
            400
        )
        .await,
        "The value '201' is not in the range of 0 to 200 for actions."
    );

    let (s, v) = h
        .call(Method::DELETE, &format!("{base}/hello"), Some(&g), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "hello");
    assert_eq!(
        h.error(Method::GET, &format!("{base}/hello"), Some(&g), None, 404)
            .await,
        "The requested resource does not exist."
    );
    let (s, _) = h
        .call(Method::DELETE, &format!("{base}/hello"), Some(&g), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bad_action_requests_get_openwhisk_errors() {
    let h = Harness::start().await;
    let g = guest();
    let base = "/api/v1/namespaces/_/actions";
    let put = |path: String, body: &'static str| {
        h.req(Method::PUT, &path, Some(&g))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        (
            format!("{base}/a"),
            "{not json",
            "The request content was malformed",
        ),
        (format!("{base}/a"), "{}", "exec undefined"),
        (
            format!("{base}/a"),
            r#"{"exec":{"kind":"cobol:1","code":"x"}}"#,
            "kind 'cobol:1'",
        ),
        (
            format!("{base}/bad%20name%20"),
            r#"{"exec":{"kind":"python:3","code":"x"}}"#,
            "is not valid",
        ),
        (
            format!("{base}/a/b/c"),
            r#"{"exec":{"kind":"python:3","code":"x"}}"#,
            "too many path segments",
        ),
    ];
    for (path, body, want) in cases {
        let resp = put(path.clone(), body).await.unwrap();
        assert_eq!(resp.status(), 400, "{path} {body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert!(error_message(&v).contains(want), "{path} {body}: {v}");
    }
    // unknown route and wrong method keep the error shape
    h.error(Method::GET, "/api/v1/nothing/here", Some(&g), None, 404)
        .await;
    let (s, v) = h.call(Method::DELETE, base, Some(&g), None).await;
    assert_eq!(s, 405);
    assert!(
        error_message(&v).starts_with("HTTP method not allowed"),
        "{v}"
    );
    h.error(
        Method::GET,
        "/api/v1/namespaces/_/activations/nothex",
        Some(&g),
        None,
        400,
    )
    .await;
    h.error(
        Method::GET,
        "/api/v1/namespaces/_/actions?skip=-1",
        Some(&g),
        None,
        400,
    )
    .await;
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let h = Harness::start().await;
    let resp = h
        .req(Method::OPTIONS, "/api/v1/namespaces/_/actions/x", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        resp.headers()["access-control-allow-methods"],
        "GET, DELETE, POST, PUT, HEAD"
    );
    assert!(resp.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
    let resp = h.req(Method::GET, "/api/v1", None).send().await.unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

/// The public API has no administration: not even the whisk.system key creates identities
/// over HTTP (OpenWhisk's `wskadmin` writes the store; so does `whisk admin`).
#[tokio::test]
async fn no_admin_route_on_the_api() {
    let h = Harness::start().await;
    h.store.put_identity(&Identity::system()).await.unwrap();
    for who in [None, Some(guest()), Some(Identity::system())] {
        let (s, v) = h
            .call(
                Method::PUT,
                "/admin/identities/alice",
                who.as_ref(),
                Some(json!({"namespace": "guest"})),
            )
            .await;
        assert_eq!(s, 404, "{v}");
        error_message(&v);
    }
    assert!(h
        .store
        .identities_of_namespace("alice")
        .await
        .unwrap()
        .is_empty());
}

/// One HTTP/1.1 request over a unix socket; the status and the JSON body.
async fn unix_post(path: &std::path::Path, body: serde_json::Value) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST /admin HTTP/1.1\r\nhost: admin\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let (_, json) = out.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(json).unwrap())
}

/// A running standalone answers `whisk admin` on a unix socket only its owner can open; a
/// key regenerated there stops working at once (the identity cache is told).
#[tokio::test]
async fn admin_socket_is_private_and_invalidates_keys() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join(whisk_controller::admin::SOCKET_FILE);
    let serving = tokio::spawn(
        h.controller
            .serve_admin(sock.clone(), h.shutdown.clone())
            .unwrap(),
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(sock.parent().unwrap()), 0o700);
    assert_eq!(mode(&sock), 0o600);

    let (s, v) = unix_post(&sock, json!({"op": "create_user", "subject": "alice"})).await;
    assert_eq!(s, 200, "{v}");
    let alice = Identity::from_api_key("alice", "alice", v["key"].as_str().unwrap()).unwrap();
    let (s, _) = h
        .call(Method::GET, "/api/v1/namespaces", Some(&alice), None)
        .await;
    assert_eq!(s, 200);
    let (s, v) = unix_post(&sock, json!({"op": "regenerate_key", "subject": "alice"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = h
        .call(Method::GET, "/api/v1/namespaces", Some(&alice), None)
        .await;
    assert_eq!(s, 401, "the old key was still cached");
    let (s, v) = unix_post(
        &sock,
        json!({"op": "create_user", "subject": "x", "namespace": "a/../b"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = unix_post(&sock, json!({"op": "drop_tables"})).await;
    assert!((400..500).contains(&s), "{s} {v}");
    h.shutdown.cancel();
    serving.await.unwrap().unwrap();
}
