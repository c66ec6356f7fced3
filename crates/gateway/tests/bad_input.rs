//! Bad clients on the plain HTTP listener: slow headers (slowloris), oversize headers, too many
//! headers, malformed HTTP. None of them stops the gateway serving others.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use whisk_gateway::GatewayConfig;
use whisk_test_support::http::{exchange, read_to_close, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_are_cut_off_while_others_are_served() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        header_read_timeout: Duration::from_millis(500),
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let addr = gw.http.unwrap();

    // Several slowloris clients: a partial head, then nothing.
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(send(addr, b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ").await);
    }
    let c = client();
    for _ in 0..5 {
        assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
    }
    for mut s in slow {
        // A slow client is disconnected.
        read_to_close(&mut s).await;
    }
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversize_and_too_many_headers_answer_431() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        max_header_bytes: 16 * 1024,
        max_headers: 50,
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let addr = gw.http.unwrap();

    let big = format!(
        "GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let answer = exchange(addr, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let huge = format!(
        "GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The gateway may close before all of it is written.
    let _ = s.write_all(huge.as_bytes()).await;
    read_to_close(&mut s).await;

    let mut many = String::from("GET /api/v1 HTTP/1.1\r\nHost: x\r\n");
    for i in 0..80 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(addr, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let resp = client().get(gw.url("/api/v1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_http_answers_400() {
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(test_config(vec![b.url()])).await;
    let addr = gw.http.unwrap();
    for bad in [
        &b"this is not http\r\n\r\n"[..],
        b"GET /api/v1 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /api/v1 HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
    ] {
        let answer = exchange(addr, bad).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} -> {answer}",
            String::from_utf8_lossy(bad)
        );
    }
    // A body that is shorter than announced, then the client goes away.
    drop(
        send(
            addr,
            b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
        )
        .await,
    );
    let answer = exchange(
        addr,
        b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
