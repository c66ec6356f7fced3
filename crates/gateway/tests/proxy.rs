//! Forwarding over plain HTTP: headers and request ids, round robin and failover, limits, and
//! the gateway's own error answers (413, 429, 502, 503, 504), graceful shutdown.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use whisk_gateway::{ConcurrencyLimits, GatewayConfig, RateLimits};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwards_requests_and_request_ids() {
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(test_config(vec![b.url()])).await;
    let c = client();

    let resp = c.get(gw.url("/api/v1")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(rid.len(), 32);
    // The controller's own headers come through.
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert!(resp.headers().contains_key("date"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["description"], "OpenWhisk API");

    let resp = c
        .post(gw.url("/echo/api/v1/namespaces/_/actions/x?blocking=true"))
        .header("x-request-id", "client-chosen-id")
        .header("authorization", "Basic Z3Vlc3Q6a2V5")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "client-chosen-id");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/echo/api/v1/namespaces/_/actions/x");
    assert_eq!(v["query"], "blocking=true");
    assert_eq!(v["body_len"], 1000);
    let h = &v["headers"];
    assert_eq!(h["x-request-id"], "client-chosen-id");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["authorization"], "Basic Z3Vlc3Q6a2V5");
    assert_eq!(h["host"], gw.http.unwrap().to_string());

    // HEAD: the controller's Content-Length, no body, and the connection still usable.
    let get_len = c.get(gw.url("/api/v1")).send().await.unwrap().bytes().await;
    let head = c.head(gw.url("/api/v1")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        get_len.unwrap().len().to_string()
    );

    // Keep-alive: many requests on the client's pooled connection.
    for _ in 0..50 {
        let r = c.get(gw.url("/api/v1")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_and_failover_when_a_controller_dies() {
    let mut b0 = TestBackend::start("b0");
    let b1 = TestBackend::start("b1");
    let gw = TestGateway::start(test_config(vec![b0.url(), b1.url()])).await;
    let c = client();

    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let v = get_json(&c, &gw.url("/api/v1")).await;
        seen.insert(v["backend"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 2, "both controllers get requests");

    b0.kill();
    for i in 0..40 {
        let resp = c
            .post(gw.url("/echo/x"))
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i} after the kill");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["backend"], "b1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_per_client_answers_429() {
    let b = TestBackend::start("b0");
    let limits = RateLimits {
        client: bucket(3),
        ..Default::default()
    };
    let gw = TestGateway::start(rate_limited(&b, limits)).await;
    let c = client();
    for _ in 0..3 {
        assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
    }
    let resp = c.get(gw.url("/api/v1")).send().await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    let msg = error_body(resp, 429).await;
    assert!(msg.starts_with("Too many requests"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_per_namespace_answers_429() {
    let b = TestBackend::start("b0");
    let limits = RateLimits {
        namespace: bucket(2),
        ..Default::default()
    };
    let gw = TestGateway::start(rate_limited(&b, limits)).await;
    let c = client();
    let guest = "Basic Z3Vlc3QtdXVpZDprZXk="; // guest-uuid:key
    let other = "Basic b3RoZXItdXVpZDprZXk="; // other-uuid:key
    for _ in 0..2 {
        let r = c
            .get(gw.url("/echo/api/v1/namespaces/_/actions"))
            .header("authorization", guest)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = c
        .get(gw.url("/echo/api/v1/namespaces/_/actions"))
        .header("authorization", guest)
        .send()
        .await
        .unwrap();
    error_body(r, 429).await;
    let r = c
        .get(gw.url("/echo/api/v1/namespaces/_/actions"))
        .header("authorization", other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "another namespace is not limited");
    // Requests without a namespace are not counted against one.
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limits_answer_429_and_503() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        concurrency_limit: ConcurrencyLimits {
            client: 1,
            namespace: 0,
        },
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let c = client();
    let slow = tokio::spawn(c.get(gw.url("/sleep?ms=3000")).send());
    b.wait_sleeping(1).await;
    let r = c.get(gw.url("/api/v1")).send().await.unwrap();
    let msg = error_body(r, 429).await;
    assert!(msg.starts_with("Too many concurrent requests"), "{msg}");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);

    let b2 = TestBackend::start("b2");
    let config = GatewayConfig {
        max_in_flight: 1,
        ..test_config(vec![b2.url()])
    };
    let gw2 = TestGateway::start(config).await;
    let slow = tokio::spawn(c.get(gw2.url("/sleep?ms=3000")).send());
    b2.wait_sleeping(1).await;
    let r = c.get(gw2.url("/api/v1")).send().await.unwrap();
    let msg = error_body(r, 503).await;
    assert_eq!(msg, "System is overloaded, try again later.");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_over_the_limit_answers_413() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        max_body_bytes: 1024 * 1024,
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let c = client();
    let r = c
        .post(gw.url("/echo/api/v1/namespaces/_/actions/a"))
        .body(vec![b'x'; 2 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let msg = error_body(r, 413).await;
    assert!(msg.contains("too large"), "{msg}");

    // Chunked (no Content-Length) is measured while reading.
    let chunks: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> = (0..40)
        .map(|_| {
            Ok(hyper::body::Frame::data(bytes::Bytes::from(vec![
                b'y';
                64 * 1024
            ])))
        })
        .collect();
    let r = c
        .put(gw.url("/echo/chunked"))
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            futures::stream::iter(chunks),
        )))
        .send()
        .await
        .unwrap();
    error_body(r, 413).await;

    let r = c
        .put(gw.url("/echo/ok"))
        .body(vec![b'z'; 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["body_len"], 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hanging_controller_answers_504() {
    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        backend_timeout: Duration::from_millis(500),
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let c = client();
    let hung = tokio::spawn(c.get(gw.url("/hang")).send());
    // Others are served meanwhile.
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
    let r = hung.await.unwrap().unwrap();
    let msg = error_body(r, 504).await;
    assert_eq!(msg, "The controller did not answer in time.");
    assert_eq!(c.get(gw.url("/api/v1")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resetting_controller_answers_502() {
    let reset = start_reset_backend().await;
    let gw = TestGateway::start(test_config(vec![format!("http://{reset}")])).await;
    let c = client();
    for path in ["/api/v1", "/echo/post"] {
        let r = c.post(gw.url(path)).body("x").send().await.unwrap();
        let msg = error_body(r, 502).await;
        assert!(msg.contains("controller"), "{msg}");
    }
    let r = c.get(gw.url("/api/v1")).send().await.unwrap();
    error_body(r, 502).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_controller_reachable_answers_502() {
    // A port nothing listens on.
    let dead = whisk_test_support::free_addr();
    let gw = TestGateway::start(test_config(vec![format!("http://{dead}")])).await;
    let r = client().get(gw.url("/api/v1")).send().await.unwrap();
    let msg = error_body(r, 502).await;
    assert_eq!(msg, "No controller could be reached.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(test_config(vec![b.url()])).await;
    let c = client();
    let slow = tokio::spawn(c.get(gw.url("/sleep?ms=1000")).send());
    b.wait_sleeping(1).await;
    gw.shutdown.cancel();
    let resp = slow.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["slept"], true);
    let addr = gw.http.unwrap();
    // serve() returns and the listener is closed.
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while !gw.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "serve returns after the drain");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn run_reports_a_missing_certificate() {
    let config = GatewayConfig {
        listen_http: None,
        listen_https: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: "/nonexistent/domain.crt".into(),
        ..GatewayConfig::default()
    };
    let err = whisk_gateway::run(config, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, whisk_gateway::GatewayError::Tls { .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_worker_threads_serves_and_stops() {
    let b = TestBackend::start("b0");
    // A free port (bound, then released: `run` binds it again with SO_REUSEPORT).
    let port = whisk_test_support::free_port();
    let config = GatewayConfig {
        workers: 2,
        listen_http: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..test_config(vec![b.url()])
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(whisk_gateway::run(config, shutdown.clone()));
    let c = client();
    let url = format!("http://127.0.0.1:{port}/api/v1");
    let mut ok = 0;
    for _ in 0..500 {
        match c.get(&url).send().await {
            Ok(r) if r.status() == 200 => ok += 1,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        if ok == 20 {
            break;
        }
    }
    assert_eq!(ok, 20, "the workers serve");
    shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(20), task).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "run returns Ok after shutdown"
    );
}
