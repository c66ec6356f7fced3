//! The API's listener (`whisk_controller::listener`): answers given before a body is read reach
//! a client that is still writing it slowly (413, 401, instead of `EPIPE` on its write), slow
//! heads are cut off, stalled bodies and clients that do not read are let go.

mod common;

use axum::routing::{get, post};
use common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_controller::listener::{serve_with, Settings};
use whisk_test_support::http::{
    assert_let_go, basic_auth, plain_pieces, read_head, read_to_close, send, slow_request,
    stalled_post, unread_get,
};

/// A body written in 64 KB pieces, 5 ms apart.
const PIECE: usize = 64 * 1024;
const PAUSE: Duration = Duration::from_millis(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_answers_reach_a_client_still_writing_its_body() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    let addr: SocketAddr = h.url.trim_start_matches("http://").parse().unwrap();
    let len = 2 * 1024 * 1024;
    let auth = basic_auth(&g.uuid, &g.key);
    let path = "/api/v1/namespaces/_/actions/hello?blocking=true";

    // 413 from the Content-Length (the invoke payload limit is 1 MB), the body written slowly.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    for _ in 0..3 {
        let answer = slow_request(addr, &head, plain_pieces(len, PIECE), PAUSE).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }

    // 401 on a large body without credentials.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    let answer = slow_request(addr, &head, plain_pieces(len, PIECE), PAUSE).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // The 413 through reqwest, many times in a row (a client used to see EPIPE here).
    let big = json!({"blob": "x".repeat(len)});
    for i in 0..20 {
        let r = h
            .http
            .post(format!("{}{path}", h.url))
            .basic_auth(&g.uuid, Some(&g.key))
            .json(&big)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(r.status(), 413, "request {i}");
    }
}

/// A router with a route that reads its body, and one that answers 32 MB.
fn app() -> axum::Router {
    async fn read(body: axum::body::Body) -> (http::StatusCode, String) {
        match axum::body::to_bytes(body, 1 << 20).await {
            Ok(b) => (http::StatusCode::OK, b.len().to_string()),
            Err(e) => (http::StatusCode::REQUEST_TIMEOUT, e.to_string()),
        }
    }
    axum::Router::new()
        .route("/read", post(read))
        .route("/ok", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'b'; 32 << 20] }))
}

async fn start(settings: Settings) -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve_with(listener, app(), settings, stop.clone()));
    (addr, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_stalled_bodies_and_clients_that_do_not_read_are_let_go() {
    let (addr, stop) = start(Settings {
        header_read_timeout: Duration::from_millis(300),
        body_idle_timeout: Duration::from_millis(300),
        send_timeout: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;

    // Slowloris: part of a head, then nothing; the connection is closed.
    let mut slow = send(addr, b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    // A stalled body: 10 of 100 bytes.
    let mut stalled = stalled_post(addr, "/read").await;
    // A client that asks for 32 MB and does not read.
    let mut deaf = unread_get(addr, "/big").await;

    // Others are served meanwhile.
    let r = reqwest::get(format!("http://{addr}/ok")).await.unwrap();
    assert_eq!(r.status(), 200);

    // The slow head is cut off.
    read_to_close(&mut slow).await;

    let answer = read_head(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    assert_let_go(&mut deaf, 32 << 20).await;
    stop.cancel();
}
