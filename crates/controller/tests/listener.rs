//! The API's listener (`whisk_controller::listener`): answers given before a body is read reach
//! a client that is still writing it slowly (413, 401: issue 12's `EPIPE`), slow heads are cut
//! off, stalled bodies and clients that do not read are let go.

mod common;

use axum::routing::{get, post};
use base64::Engine;
use common::*;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use whisk_controller::listener::{serve_with, Settings};

/// Sends `head`, then `body_len` bytes in `piece`-byte pieces with `pause` between (every write
/// must succeed), then reads the answer's head.
async fn slow_body(
    addr: SocketAddr,
    head: &str,
    body_len: usize,
    piece: usize,
    pause: Duration,
) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; piece];
    let mut sent = 0;
    while sent < body_len {
        let n = piece.min(body_len - sent);
        if let Err(e) = s.write_all(&chunk[..n]).await {
            panic!("writing the body failed after {sent} bytes: {e}");
        }
        sent += n;
        tokio::time::sleep(pause).await;
    }
    read_head(&mut s).await
}

/// Reads until the end of an answer's head (or the end of the stream).
async fn read_head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "an answer in time");
    String::from_utf8_lossy(&out).into_owned()
}

fn basic(uuid: &str, key: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{uuid}:{key}"));
    format!("Basic {b64}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_answers_reach_a_client_still_writing_its_body() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    let addr: SocketAddr = h.url.trim_start_matches("http://").parse().unwrap();
    let len = 2 * 1024 * 1024;
    let auth = basic(&g.uuid, &g.key);
    let path = "/api/v1/namespaces/_/actions/hello?blocking=true";

    // 413 from the Content-Length (the invoke payload limit is 1 MB), the body written slowly.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    for _ in 0..3 {
        let answer = slow_body(addr, &head, len, 64 * 1024, Duration::from_millis(5)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }

    // 401 on a large body without credentials.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\n\r\n"
    );
    let answer = slow_body(addr, &head, len, 64 * 1024, Duration::from_millis(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // The 413 through reqwest, many times in a row (issue 12 saw EPIPE here).
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
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // A stalled body: 10 of 100 bytes.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    // A client that asks for 32 MB and does not read.
    let mut deaf = TcpStream::connect(addr).await.unwrap();
    deaf.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // Others are served meanwhile.
    let r = reqwest::get(format!("http://{addr}/ok")).await.unwrap();
    assert_eq!(r.status(), 200);

    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the slow head is cut off");

    let answer = read_head(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match deaf.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    assert!(
        got < 32 << 20,
        "the send timeout ended the answer ({got} bytes)"
    );
    stop.cancel();
}
