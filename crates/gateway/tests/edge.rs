//! What the edge enforces before a request reaches a controller, over raw TCP: answers given
//! before the body is read (413, 429) reach a client still writing it slowly; bodies stream and
//! are cut at the limit; stalled bodies (408) and clients that do not read are let go;
//! operational paths are 404; the namespace rate limit cannot be spent with someone else's
//! uuid; request smuggling attempts are refused or framed one way only.

mod common;

use common::*;
use std::time::Duration;
use whisk_gateway::{GatewayConfig, RateLimits};
use whisk_test_support::http::{
    assert_let_go, basic_auth, chunked_pieces, exchange, plain_pieces, read_head, slow_request,
    stalled_post, unread_get,
};

const PIECE: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_answers_reach_a_client_still_writing_its_body() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        max_body_bytes: 1024 * 1024,
        rate_limit: RateLimits {
            client: bucket(8),
            ..Default::default()
        },
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let addr = gw.http.unwrap();
    let len = 2 * 1024 * 1024;
    let pause = Duration::from_millis(5);

    // 413 from the Content-Length: nothing of the body is read or forwarded.
    let head = format!("POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    let answer = slow_request(addr, &head, plain_pieces(len, PIECE), pause).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");

    // A chunked body is streamed to the controller and cut once it passes the limit.
    let head = "PUT /echo/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let answer = slow_request(addr, head, chunked_pieces(len, PIECE), pause).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Within the limit, the same chunked body goes through.
    let answer = slow_request(addr, head, chunked_pieces(512 * 1024, PIECE), pause).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // 429 (the client's bucket is empty now) before a byte of the body is read.
    let c = client();
    while c.get(gw.url("/api/v1")).send().await.unwrap().status() != 429 {}
    let head = format!("POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
    let answer = slow_request(addr, &head, plain_pieces(len, PIECE), pause).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_bodies_and_clients_that_do_not_read_are_let_go() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        body_read_timeout: Duration::from_millis(300),
        send_timeout: Duration::from_millis(300),
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let addr = gw.http.unwrap();

    let mut stalled = stalled_post(addr, "/echo/x").await;
    let mut deaf = unread_get(addr, "/big").await;

    let answer = read_head(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    assert_let_go(&mut deaf, 32 << 20).await;
    assert_eq!(
        client()
            .get(gw.url("/api/v1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operational_paths_are_not_reachable() {
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(test_config(vec![b.url()])).await;
    let c = client();
    for path in [
        "/admin",
        "/admin/identities/alice",
        "/invokers",
        "/invokers/0/health",
        "/metrics",
        "//admin/x",
        "/%61dmin",
        "/Metrics",
    ] {
        let r = c.put(gw.url(path)).body("{}").send().await.unwrap();
        // The gateway's own answer (the stand-in would answer with an empty body).
        let msg = error_body(r, 404).await;
        assert_eq!(msg, "The requested resource does not exist.", "{path}");
    }
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stranger_with_alices_uuid_cannot_spend_her_rate_limit() {
    let b = TestBackend::start("b0");
    let limits = RateLimits {
        namespace: bucket(3),
        ..Default::default()
    };
    let gw = TestGateway::start(rate_limited(&b, limits)).await;
    let c = client();
    let get = |auth: String| {
        c.get(gw.url("/echo/api/v1/namespaces/_/actions"))
            .header("authorization", auth)
            .send()
    };
    let alice = basic_auth("alice-uuid", "alice-key");
    // The stranger knows alice's uuid, not her key: his own bucket runs dry ...
    for i in 0..10 {
        let r = get(basic_auth("alice-uuid", &format!("guess-{}", i % 2)))
            .await
            .unwrap();
        let _ = r.status();
    }
    let r = get(basic_auth("alice-uuid", "guess-0")).await.unwrap();
    error_body(r, 429).await;
    // ... and alice still has all of hers.
    for _ in 0..3 {
        assert_eq!(get(alice.clone()).await.unwrap().status(), 200);
    }
    error_body(get(alice).await.unwrap(), 429).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smuggling_attempts_are_refused_or_framed_one_way() {
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(test_config(vec![b.url()])).await;
    let addr = gw.http.unwrap();
    for bad in [
        &b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"[..],
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab",
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nab",
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST /echo/a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        b"GET /echo/a HTTP/1.1\r\nHost: x\r\n Folded: y\r\n\r\n",
    ] {
        let answer = exchange(addr, bad).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} -> {answer}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }
    // Transfer-Encoding and Content-Length: framed as chunked, the length dropped, and the
    // connection closed after the answer, so that nothing after the body is read as a request.
    let answer = exchange(
        addr,
        b"POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"body_len\":5"), "{answer}");
    assert!(!answer.contains("smuggled"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}
