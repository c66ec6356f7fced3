//! The cap on client connections, over raw TCP: with `max_connections` open, a further
//! connection is answered 503 with OpenWhisk's body and closed, and counted; once one closes,
//! a new connection is served again.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use whisk_gateway::connections::TOO_MANY_CONNECTIONS;
use whisk_gateway::{Gateway, GatewayConfig};
use whisk_test_support::http::exchange;

const GET: &[u8] = b"GET /api/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_answered_503_and_counted() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        max_connections: 2,
        ..test_config(vec![b.url()])
    };
    let gw = Gateway::bind(config).await.unwrap();
    let addr = gw.http_addr().unwrap();
    let connections = gw.connections();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(gw.serve(shutdown.clone()));

    // Two idle connections take both slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    whisk_test_support::wait_until("2 open", Duration::from_secs(10), || {
        connections.open() == 2
    })
    .await;

    let answer = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"], TOO_MANY_CONNECTIONS, "{v}");
    assert!(v["code"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert_eq!((connections.max(), connections.refused()), (2, 1));
    assert_eq!(connections.open(), 2, "a refusal takes no slot");

    // One closes: a new connection is served.
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    drop(first);
    whisk_test_support::wait_until("1 open", Duration::from_secs(10), || {
        connections.open() == 1
    })
    .await;
    let answer = exchange(addr, GET).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(connections.refused(), 1);

    drop(held);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}
