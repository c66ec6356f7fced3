//! Invocations through the controller and a fake invoker: non-blocking and blocking answers,
//! failures, timeouts, payload limits, throttles, completions that cannot be read, and the
//! activation records afterwards.

mod common;

use bytes::Bytes;
use common::{activation_id_header, error_message, guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use whisk_bus::Bus;
use whisk_controller::ControllerConfig;

const HELLO: &str = "/api/v1/namespaces/_/actions/hello";

#[tokio::test]
async fn non_blocking_then_blocking() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(
        &g,
        "hello",
        json!([{"key": "n", "value": 1}, {"key": "m", "value": 2}]),
    )
    .await;

    let resp = h
        .req(Method::POST, HELLO, Some(&g))
        .json(&json!({"x": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let header = activation_id_header(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["activationId"], header.as_str());
    assert_eq!(header.len(), 32);

    let resp = h
        .req(Method::POST, &format!("{HELLO}?blocking=true"), Some(&g))
        .json(&json!({"n": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = activation_id_header(&resp);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["activationId"], header.as_str());
    assert_eq!(v["response"]["status"], "success");
    assert_eq!(v["response"]["success"], true);
    assert!(v["response"].get("statusCode").is_none());
    assert_eq!(v["response"]["result"], json!({"n": 5, "m": 2}));
    assert_eq!(v["namespace"], "guest");
    assert_eq!(v["subject"], "guest");

    // empty body = {}; result=true answers only the result
    let resp = h
        .req(
            Method::POST,
            &format!("{HELLO}?blocking=true&result=true"),
            Some(&g),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-openwhisk-activation-id"));
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"n": 1, "m": 2}));

    // package path
    h.create_package(&g, "pkg").await;
    h.create_action(&g, "pkg/inner", json!([])).await;
    let (s, v) = h
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/pkg/inner?blocking=true",
            Some(&g),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["annotations"][0]["value"], "guest/pkg/inner");
}

#[tokio::test]
async fn failures_map_to_502_and_500() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    for (mode, code, status) in [
        ("fail", 502, "application error"),
        ("crash", 502, "action developer error"),
        ("whisk", 500, "whisk internal error"),
    ] {
        let resp = h
            .req(Method::POST, &format!("{HELLO}?blocking=true"), Some(&g))
            .json(&json!({"mode": mode}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), code, "{mode}");
        assert!(resp.headers().contains_key("x-openwhisk-activation-id"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["response"]["status"], status);
        assert_eq!(v["response"]["success"], false);
    }
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{HELLO}?blocking=true&result=true"),
            Some(&g),
            Some(json!({"mode": "fail"})),
        )
        .await;
    assert_eq!((s, v), (502, json!({"error": "it failed"})));
}

#[tokio::test]
async fn blocking_wait_times_out_with_202() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    let resp = h
        .req(
            Method::POST,
            &format!("{HELLO}?blocking=true&timeout=50"),
            Some(&g),
        )
        .json(&json!({"mode": "hang"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let header = activation_id_header(&resp);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"activationId": header})
    );
    assert_eq!(h.controller.activations_in_flight(), 1);
}

#[tokio::test]
async fn bad_invocations() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    for t in ["0", "60001", "abc"] {
        assert_eq!(
            h.error(
                Method::POST,
                &format!("{HELLO}?blocking=true&timeout={t}"),
                Some(&g),
                None,
                400
            )
            .await,
            "Timeout must be number of milliseconds up to 60000."
        );
    }
    for body in ["[1,2]", "{nope", "3"] {
        let resp = h
            .req(Method::POST, HELLO, Some(&g))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let v: Value = resp.json().await.unwrap();
        assert!(
            error_message(&v).starts_with("The request content was malformed"),
            "{v}"
        );
    }
    h.error(
        Method::POST,
        &format!("{HELLO}?blocking=maybe"),
        Some(&g),
        None,
        400,
    )
    .await;
    h.error(
        Method::POST,
        "/api/v1/namespaces/_/actions/nope",
        Some(&g),
        Some(json!({})),
        404,
    )
    .await;

    let big = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    let (s, v) = h.call(Method::POST, HELLO, Some(&g), Some(big)).await;
    assert_eq!(s, 413);
    assert!(
        error_message(&v).starts_with("Request larger than allowed"),
        "{v}"
    );
    // the same without a content-length (chunked)
    let (status, v) = chunked_post(&h, HELLO, 3).await;
    assert_eq!(status, 413);
    error_message(&v);
}

#[tokio::test]
async fn throttles_answer_429() {
    let h = Harness::start().await;
    let rate = h.limited("ratey", 3, 100).await;
    h.create_action(&rate, "hello", json!([])).await;
    for _ in 0..3 {
        let (s, _) = h.call(Method::POST, HELLO, Some(&rate), None).await;
        assert_eq!(s, 202);
    }
    assert_eq!(
        h.error(Method::POST, HELLO, Some(&rate), None, 429).await,
        "Too many requests in the last minute (count: 3, allowed: 3)."
    );

    let conc = h.limited("conc", 100, 1).await;
    h.create_action(&conc, "hello", json!([])).await;
    let (s, _) = h
        .call(
            Method::POST,
            HELLO,
            Some(&conc),
            Some(json!({"mode": "hang"})),
        )
        .await;
    assert_eq!(s, 202);
    assert_eq!(
        h.error(Method::POST, HELLO, Some(&conc), None, 429).await,
        "Too many concurrent requests in flight (count: 1, allowed: 1)."
    );

    // completions of non-blocking invocations give concurrency back too
    let nb = h.limited("nonblocking", 100, 1).await;
    h.create_action(&nb, "hello", json!([])).await;
    for _ in 0..3 {
        let (s, _) = h.call(Method::POST, HELLO, Some(&nb), None).await;
        assert_eq!(s, 202);
        for _ in 0..200 {
            if h.controller.activations_in_flight() <= 1 {
                break; // only conc's hanging activation left
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // completions give concurrency back
    let one = h.limited("one", 100, 1).await;
    h.create_action(&one, "hello", json!([])).await;
    for _ in 0..3 {
        let (s, _) = h
            .call(
                Method::POST,
                &format!("{HELLO}?blocking=true"),
                Some(&one),
                None,
            )
            .await;
        assert_eq!(s, 200);
    }
}

#[tokio::test]
async fn no_invoker_means_503() {
    let h = Harness::start_with(ControllerConfig::default(), false).await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    assert_eq!(
        h.error(Method::POST, HELLO, Some(&g), None, 503).await,
        "System is overloaded, try again later."
    );
    let (s, v) = h
        .call(Method::GET, "/invokers/healthy/count", None, None)
        .await;
    assert_eq!((s, v), (200, json!(0)));
}

#[tokio::test]
async fn malformed_completions_are_skipped() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    h.bus
        .publish("completed0", Bytes::from_static(b"\xff\xff\xff"))
        .await
        .unwrap();
    h.bus
        .publish("health", Bytes::from_static(b"\xff\xff\xff"))
        .await
        .unwrap();
    h.bus
        .publish("cacheInvalidation", Bytes::from_static(b"{\"key\": 1}"))
        .await
        .unwrap();
    let (s, _) = h
        .call(
            Method::POST,
            &format!("{HELLO}?blocking=true"),
            Some(&g),
            None,
        )
        .await;
    assert_eq!(s, 200);
    for _ in 0..100 {
        if h.controller.malformed_messages() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.controller.malformed_messages(), 3);
}

/// POSTs `mb` MB of spaces with `Transfer-Encoding: chunked` over a raw connection.
async fn chunked_post(h: &Harness, path: &str, mb: usize) -> (u16, Value) {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = h.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(whisk_core::identity::GUEST_KEY);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..mb {
        let frame = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if conn.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // the body may itself be chunked: take the JSON object inside
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}
