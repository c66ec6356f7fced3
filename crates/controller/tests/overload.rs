//! Overload: a controller whose invokers are all full refuses rather than overfills them.
//! Blocking and non-blocking invokes answer 503 with OpenWhisk's body ("System is overloaded,
//! try again later."), a trigger's rule records that error, a sequence's record says it; once
//! activations complete and free their memory the controller serves again. With an overload
//! wait, an invoke waits for room instead; past the cap of activations in flight, 503 too.
//!
//! The harness's invoker has 2048 MB (8 activations of the default 256 MB); `sleep_ms` holds
//! an activation that long.

mod common;

use common::{error_message, guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use whisk_controller::ControllerConfig;

const NS: &str = "/api/v1/namespaces/_";
const OVERLOADED: &str = "System is overloaded, try again later.";

async fn start(config: ControllerConfig) -> Harness {
    let h = Harness::start_with(config, true).await;
    h.create_action(&guest(), "slow", json!([])).await;
    h
}

/// Invokes `slow` with `params`: the status and body.
async fn invoke(h: &Harness, blocking: bool, params: Value) -> (u16, Value) {
    let path = format!("{NS}/actions/slow?blocking={blocking}");
    h.call(Method::POST, &path, Some(&guest()), Some(params))
        .await
}

/// Fills the invoker with 8 activations holding it `ms`.
async fn fill(h: &Harness, ms: u64) {
    for _ in 0..8 {
        let (s, v) = invoke(h, false, json!({"sleep_ms": ms})).await;
        assert_eq!(s, 202, "{v}");
    }
}

async fn wait_idle(h: &Harness) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.controller.activations_in_flight() > 0 {
        assert!(Instant::now() < deadline, "activations never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The activation `id` of guest once it is stored.
async fn record(h: &Harness, id: &str) -> Value {
    for _ in 0..100 {
        let (s, v) = h
            .call(
                Method::GET,
                &format!("{NS}/activations/{id}"),
                Some(&guest()),
                None,
            )
            .await;
        if s == 200 {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("activation {id} never appeared");
}

#[tokio::test]
async fn full_invokers_answer_503_then_serve_again() {
    let config = ControllerConfig {
        overload_wait: Duration::ZERO,
        ..ControllerConfig::default()
    };
    let h = start(config).await;
    let who = guest();
    // A trigger with a rule to the action, and a sequence of it.
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{NS}/triggers/t"),
            Some(&who),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rule = json!({"trigger": "/_/t", "action": "/_/slow"});
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{NS}/rules/r"),
            Some(&who),
            Some(rule),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let seq = json!({"exec": {"kind": "sequence", "components": ["/_/slow"]}});
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{NS}/actions/seq"),
            Some(&who),
            Some(seq),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    fill(&h, 1500).await;
    assert_eq!(h.controller.activations_in_flight(), 8);
    for blocking in [false, true] {
        let (s, v) = invoke(&h, blocking, json!({})).await;
        assert_eq!(s, 503, "blocking={blocking}: {v}");
        assert_eq!(error_message(&v), OVERLOADED);
    }
    // The trigger's record names the refusal of its rule.
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{NS}/triggers/t"),
            Some(&who),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let fired = record(&h, v["activationId"].as_str().unwrap()).await;
    let line: Value = serde_json::from_str(fired["logs"][0].as_str().unwrap()).unwrap();
    assert_eq!(line["error"], json!(OVERLOADED), "{fired}");
    assert_eq!(line["success"], json!(false));
    // A blocking sequence ends with a record saying so (a whisk error: 500, as OpenWhisk).
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{NS}/actions/seq?blocking=true"),
            Some(&who),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 500, "{v}");
    assert_eq!(v["response"]["result"]["error"], json!(OVERLOADED), "{v}");
    // Nothing refused holds a slot: once the 8 complete, the controller serves again.
    assert_eq!(h.controller.activations_in_flight(), 8);
    wait_idle(&h).await;
    let (s, v) = invoke(&h, true, json!({"x": 1})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"]["result"]["x"], json!(1));
}

#[tokio::test]
async fn with_an_overload_wait_an_invoke_waits_for_room() {
    let config = ControllerConfig {
        overload_wait: Duration::from_secs(10),
        ..ControllerConfig::default()
    };
    let h = start(config).await;
    fill(&h, 800).await;
    let t0 = Instant::now();
    let (s, v) = invoke(&h, true, json!({"x": 2})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"]["result"]["x"], json!(2));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
}

#[tokio::test]
async fn activations_in_flight_are_capped() {
    let config = ControllerConfig {
        max_in_flight: 2,
        ..ControllerConfig::default()
    };
    let h = start(config).await;
    for _ in 0..2 {
        let (s, v) = invoke(&h, false, json!({"mode": "hang"})).await;
        assert_eq!(s, 202, "{v}");
    }
    let (s, v) = invoke(&h, false, json!({})).await;
    assert_eq!(s, 503, "{v}");
    let message = error_message(&v);
    assert!(
        message.contains("Too many activations in flight") && message.contains("at most 2"),
        "{message}"
    );
    assert_eq!(h.controller.activations_in_flight(), 2);
}
