//! Intra-container concurrency in the real `whisk-proxy`: a Node.js action runs several
//! `/run`s at once (each answered with its own result, one failing without harming the
//! others, one sentinel pair each); a Python action's runs still go one at a time.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Running, SENTINEL};
use whisk_test_support::node::require_node;

/// `/run` with `value` and its own activation id.
async fn run_as(proxy: &Running, id: usize, value: Value) -> (u16, Value) {
    let body = json!({
        "value": value, "namespace": "guest", "action_name": "/guest/t",
        "activation_id": format!("act-{id}"), "transaction_id": "tid", "deadline": "0",
    });
    proxy.post("/run", body).await
}

#[tokio::test]
async fn node_runs_concurrent_activations_in_one_process() {
    require_node();
    let proxy = Running::start("nodejs").await;
    let code = r#"
async function main(p) {
  await new Promise((resolve) => setTimeout(resolve, p.ms));
  if (p.fail) throw new Error("failed " + p.n);
  console.log("done", p.n);
  return {n: p.n, pid: process.pid};
}"#;
    assert_eq!(proxy.init(code).await, (200, json!({"ok": true})));
    let started = Instant::now();
    let runs = (0..6).map(|n| {
        let proxy = &proxy;
        async move {
            let value = json!({"n": n, "ms": 700 - n * 100, "fail": n == 3});
            run_as(proxy, n as usize, value).await
        }
    });
    let answers = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    // One at a time would take 700+600+...+200 ms = 2.7 s.
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    let mut pids = std::collections::BTreeSet::new();
    for (n, (status, body)) in answers.into_iter().enumerate() {
        assert_eq!(status, 200, "{n}: {body}");
        if n == 3 {
            assert_eq!(body, json!({"error": "failed 3"}));
        } else {
            assert_eq!(body["n"], n, "{body}");
            pids.insert(body["pid"].as_u64().unwrap());
        }
    }
    assert_eq!(pids.len(), 1, "one launcher process: {pids:?}");
    let stdout = proxy.stdout_with(6);
    assert_eq!(stdout.matches(SENTINEL).count(), 6);
    assert!(
        stdout.contains("done 5") && stdout.contains("done 0"),
        "{stdout}"
    );
    // And it keeps serving one at a time too.
    assert_eq!(
        run_as(&proxy, 9, json!({"n": 9, "ms": 1})).await.1["n"],
        json!(9)
    );
}

#[tokio::test]
async fn a_concurrent_launcher_that_exits_fails_every_run_in_flight() {
    require_node();
    let proxy = Running::start("nodejs").await;
    let code = r#"
async function main(p) {
  if (p.exit) { setTimeout(() => process.exit(3), 100); }
  await new Promise((resolve) => setTimeout(resolve, 5000));
  return {};
}"#;
    assert_eq!(proxy.init(code).await.0, 200);
    let (a, b) = tokio::join!(
        run_as(&proxy, 1, json!({})),
        run_as(&proxy, 2, json!({"exit": true}))
    );
    for (status, body) in [a, b] {
        assert_eq!(status, 502, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    // The proxy still answers, and says the action is gone.
    let (status, body) = run_as(&proxy, 3, json!({})).await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn python_runs_one_at_a_time() {
    let proxy = Running::start("python").await;
    let code = "import time\ndef main(p):\n    time.sleep(0.3)\n    return {'n': p['n']}\n";
    assert_eq!(proxy.init(code).await.0, 200);
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        run_as(&proxy, 1, json!({"n": 1})),
        run_as(&proxy, 2, json!({"n": 2})),
        run_as(&proxy, 3, json!({"n": 3}))
    );
    assert!(started.elapsed() >= Duration::from_millis(850));
    for (n, (status, body)) in [a, b, c].into_iter().enumerate() {
        assert_eq!((status, body), (200, json!({"n": n + 1})));
    }
}
