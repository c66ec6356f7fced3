//! Activation records as the API shows them after invocations through a fake invoker: list
//! filters, counts, full views, logs, results, and namespace isolation.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn activation_records() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    h.create_action(&g, "other", json!([])).await;
    let mut ids = vec![];
    for (action, mode) in [("hello", "ok"), ("hello", "fail"), ("other", "ok")] {
        let (_, v) = h
            .call(
                Method::POST,
                &format!("/api/v1/namespaces/_/actions/{action}?blocking=true"),
                Some(&g),
                Some(json!({"mode": mode})),
            )
            .await;
        ids.push(v["activationId"].as_str().unwrap().to_string());
    }
    let base = "/api/v1/namespaces/_/activations";
    let (s, v) = h.call(Method::GET, base, Some(&g), None).await;
    assert_eq!(s, 200);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list[0].get("logs").is_none() && list[0].get("statusCode").is_some(),
        "{v}"
    );
    let (_, v) = h
        .call(Method::GET, &format!("{base}?name=hello"), Some(&g), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = h
        .call(
            Method::GET,
            &format!("{base}?name=hello&docs=true&limit=1"),
            Some(&g),
            None,
        )
        .await;
    let docs = v.as_array().unwrap();
    assert_eq!(docs.len(), 1);
    assert!(docs[0]["response"]["status"].is_string());
    let (_, v) = h
        .call(Method::GET, &format!("{base}?count=true"), Some(&g), None)
        .await;
    assert_eq!(v, json!({"activations": 3}));
    h.error(
        Method::GET,
        &format!("{base}?count=true&docs=true"),
        Some(&g),
        None,
        400,
    )
    .await;
    let (_, v) = h
        .call(
            Method::GET,
            &format!("{base}?since=0&upto=1"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(v, json!([]));
    let (s, _) = h
        .call(Method::GET, &format!("{base}?limit=300"), Some(&g), None)
        .await;
    assert_eq!(s, 400);

    let (s, v) = h
        .call(Method::GET, &format!("{base}/{}", ids[1]), Some(&g), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["response"]["status"], "application error");
    let (s, v) = h
        .call(
            Method::GET,
            &format!("{base}/{}/logs", ids[0]),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["logs"].as_array().unwrap().len(), 1);
    let (s, v) = h
        .call(
            Method::GET,
            &format!("{base}/{}/result", ids[0]),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "success");
    assert_eq!(v["result"], json!({"mode": "ok"}));
    h.error(
        Method::GET,
        &format!("{base}/{}", "0".repeat(32)),
        Some(&g),
        None,
        404,
    )
    .await;
    // another namespace's record is not visible
    let other = h.limited("someone", 100, 100).await;
    let (s, _) = h
        .call(
            Method::GET,
            &format!("{base}/{}", ids[0]),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = h
        .call(
            Method::GET,
            &format!("/api/v1/namespaces/guest/activations/{}", ids[0]),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, 403);
}
