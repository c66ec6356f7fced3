//! Sequences and conductor actions through the controller and the harness's invoker (which
//! answers each activation with its parameters, or fails by its `mode` parameter): create
//! checks (length, cycles, missing components), blocking and non-blocking invokes, the
//! records (component ids in `logs`, `topmost`, `kind`, `cause`), a failing or missing
//! component, conductors with their continuations and limits, throttles, and shutdown.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use whisk_controller::ControllerConfig;
use whisk_core::sequence as seq;
use whisk_core::{ActivationId, Identity};

const ACTIONS: &str = "/api/v1/namespaces/_/actions";

fn annotation<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
    record["annotations"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// Actions `a` (parameter `pa` 1) and `b` (`pb` 2), the components of the sequences here.
async fn create_a_and_b(h: &Harness, who: &Identity) {
    h.create_action(who, "a", json!([{"key": "pa", "value": 1}]))
        .await;
    h.create_action(who, "b", json!([{"key": "pb", "value": 2}]))
        .await;
}

async fn put_sequence(h: &Harness, who: &Identity, name: &str, components: Value) -> (u16, Value) {
    h.call(
        Method::PUT,
        &format!("{ACTIONS}/{name}?overwrite=true"),
        Some(who),
        Some(json!({"exec": {"kind": "sequence", "components": components}})),
    )
    .await
}

async fn put_conductor(h: &Harness, who: &Identity, name: &str) {
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{ACTIONS}/{name}"),
            Some(who),
            Some(json!({
                "exec": {"kind": "python:3", "code": "def main(a): return a"},
                "annotations": [{"key": "conductor", "value": true}],
            })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

async fn invoke(h: &Harness, who: &Identity, name: &str, body: Value) -> (u16, Value) {
    h.call(
        Method::POST,
        &format!("{ACTIONS}/{name}?blocking=true"),
        Some(who),
        Some(body),
    )
    .await
}

async fn record(h: &Harness, who: &Identity, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = h
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/_/activations/{id}"),
                Some(who),
                None,
            )
            .await;
        if s == 200 {
            return v;
        }
        assert!(Instant::now() < deadline, "no record {id}: {s} {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn logs(v: &Value) -> Vec<String> {
    v["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no logs in {v}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_sequence_is_stored_qualified_and_runs_its_components_in_order() {
    let h = Harness::start().await;
    let g = guest();
    create_a_and_b(&h, &g).await;

    let (s, v) = put_sequence(&h, &g, "s", json!(["/_/a", "guest/b"])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exec"]["kind"], "sequence");
    assert_eq!(v["exec"]["components"], json!(["/guest/a", "/guest/b"]));
    assert_eq!(
        v["parameters"],
        json!([{"key": "_actions", "value": ["/guest/a", "/guest/b"]}])
    );
    assert_eq!(annotation(&v, "exec"), Some(&json!("sequence")));
    let (_, list) = h.call(Method::GET, ACTIONS, Some(&g), None).await;
    let s_summary = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "s")
        .unwrap();
    assert_eq!(annotation(s_summary, "exec"), Some(&json!("sequence")));

    // Blocking: the result of one is the input of the next; one record per component.
    let (s, v) = invoke(&h, &g, "s", json!({"x": 1})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"]["result"], json!({"x": 1, "pa": 1, "pb": 2}));
    assert_eq!(v["name"], "s");
    assert_eq!(annotation(&v, "topmost"), Some(&json!(true)));
    assert_eq!(annotation(&v, "kind"), Some(&json!("sequence")));
    assert_eq!(annotation(&v, "path"), Some(&json!("guest/s")));
    assert!(v.get("cause").is_none());
    let ids = logs(&v);
    assert_eq!(ids.len(), 2);
    assert_eq!(record(&h, &g, &ids[0]).await["name"], "a");
    assert_eq!(record(&h, &g, &ids[1]).await["name"], "b");
    assert_eq!(v["duration"], 2, "the sum of the components' durations");
    let stored = record(&h, &g, v["activationId"].as_str().unwrap()).await;
    assert_eq!(logs(&stored), ids);

    // result=true answers the result only.
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{ACTIONS}/s?blocking=true&result=true"),
            Some(&g),
            Some(json!({"y": 2})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"y": 2, "pa": 1, "pb": 2}));

    // Non-blocking: 202 at once, the record appears when the sequence ends.
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{ACTIONS}/s"),
            Some(&g),
            Some(json!({"z": 3})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["activationId"].as_str().unwrap().to_string();
    let r = record(&h, &g, &id).await;
    assert_eq!(r["response"]["result"], json!({"z": 3, "pa": 1, "pb": 2}));
    assert_eq!(logs(&r).len(), 2);
}

#[tokio::test]
async fn nested_sequences_record_their_cause() {
    let h = Harness::start().await;
    let g = guest();
    create_a_and_b(&h, &g).await;
    assert_eq!(put_sequence(&h, &g, "inner", json!(["/_/b"])).await.0, 200);
    assert_eq!(
        put_sequence(&h, &g, "outer", json!(["/_/a", "/_/inner"]))
            .await
            .0,
        200
    );

    let (s, v) = invoke(&h, &g, "outer", json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"]["result"], json!({"pa": 1, "pb": 2}));
    let ids = logs(&v);
    assert_eq!(ids.len(), 2, "the inner sequence is one step of the outer");
    let inner = record(&h, &g, &ids[1]).await;
    assert_eq!(inner["name"], "inner");
    assert_eq!(inner["cause"], v["activationId"]);
    assert_eq!(annotation(&inner, "topmost"), Some(&json!(false)));
    assert_eq!(annotation(&inner, "causedBy"), Some(&json!("sequence")));
    assert_eq!(logs(&inner).len(), 1);
}

#[tokio::test]
async fn create_checks_length_cycles_and_components() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "a", json!([])).await;

    let bad = |components: Value| {
        let h = &h;
        let g = &g;
        async move {
            let (s, v) = put_sequence(h, g, "bad", components).await;
            assert_eq!(s, 400, "{v}");
            common::error_message(&v)
        }
    };
    assert_eq!(bad(json!(["/_/nothere"])).await, seq::COMPONENT_NOT_FOUND);
    assert_eq!(bad(json!([])).await, seq::NO_COMPONENT);
    assert!(bad(json!(["a"])).await.contains(seq::MALFORMED_NAME));
    let many: Vec<&str> = vec!["/_/a"; seq::SEQUENCE_LENGTH_DEFAULT + 1];
    assert_eq!(bad(json!(many)).await, seq::TOO_LONG);
    assert_eq!(bad(json!(["/_/a", "/_/bad"])).await, seq::CYCLIC);
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{ACTIONS}/bad"),
            Some(&g),
            Some(json!({"exec": {"kind": "sequence"}})),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // Nested sequences count with their atomic actions.
    let thirty: Vec<&str> = vec!["/_/a"; 30];
    assert_eq!(put_sequence(&h, &g, "thirty", json!(thirty)).await.0, 200);
    assert_eq!(bad(json!(["/_/thirty", "/_/thirty"])).await, seq::TOO_LONG);
    let (s, _) = put_sequence(&h, &g, "fifty", json!(["/_/thirty", "/_/a"])).await;
    assert_eq!(s, 200);

    // A cycle through another sequence, made by an update.
    assert_eq!(put_sequence(&h, &g, "x", json!(["/_/a"])).await.0, 200);
    assert_eq!(put_sequence(&h, &g, "y", json!(["/_/x"])).await.0, 200);
    let (s, v) = put_sequence(&h, &g, "x", json!(["/_/y"])).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(common::error_message(&v), seq::CYCLIC);
}

#[tokio::test]
async fn a_failing_component_stops_the_sequence() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "a", json!([])).await;
    h.create_action(&g, "boom", json!([{"key": "mode", "value": "fail"}]))
        .await;
    h.create_action(&g, "never", json!([])).await;
    assert_eq!(
        put_sequence(&h, &g, "s", json!(["/_/a", "/_/boom", "/_/never"]))
            .await
            .0,
        200
    );

    let (s, v) = invoke(&h, &g, "s", json!({})).await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["response"]["status"], "application error");
    assert_eq!(v["response"]["result"], json!({"error": "it failed"}));
    let ids = logs(&v);
    assert_eq!(ids.len(), 2, "the ids up to the failure");
    assert_eq!(record(&h, &g, &ids[1]).await["name"], "boom");
    let (_, never) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/activations?name=never",
            Some(&g),
            None,
        )
        .await;
    assert_eq!(never, json!([]));
}

#[tokio::test]
async fn a_missing_component_ends_the_sequence_and_the_platform_keeps_serving() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "a", json!([])).await;
    h.create_action(&g, "gone", json!([])).await;
    assert_eq!(
        put_sequence(&h, &g, "s", json!(["/_/a", "/_/gone"]))
            .await
            .0,
        200
    );
    let (s, _) = h
        .call(Method::DELETE, &format!("{ACTIONS}/gone"), Some(&g), None)
        .await;
    assert_eq!(s, 200);

    let (s, v) = invoke(&h, &g, "s", json!({})).await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["response"]["status"], "application error");
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::COMPONENT_NOT_FOUND})
    );
    assert_eq!(logs(&v).len(), 1);
    let (s, v) = invoke(&h, &g, "a", json!({"still": "here"})).await;
    assert_eq!(s, 200);
    assert_eq!(v["response"]["result"], json!({"still": "here"}));
}

#[tokio::test]
async fn a_sequence_counts_once_against_the_rate_throttle() {
    let h = Harness::start().await;
    let u = h.limited("lim", 3, 10).await;
    h.create_action(&u, "a", json!([])).await;
    let five: Vec<&str> = vec!["/_/a"; 5];
    assert_eq!(put_sequence(&h, &u, "s", json!(five)).await.0, 200);
    for _ in 0..3 {
        let (s, v) = invoke(&h, &u, "s", json!({})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(logs(&v).len(), 5);
    }
    let (s, v) = invoke(&h, &u, "s", json!({})).await;
    assert_eq!(s, 429, "{v}");
}

#[tokio::test]
async fn a_conductor_runs_its_continuations() {
    let h = Harness::start().await;
    let g = guest();
    put_conductor(&h, &g, "c").await;
    h.create_action(&g, "step", json!([{"key": "stepped", "value": true}]))
        .await;

    // No action: one conductor run; a `params` result is unwrapped.
    let (s, v) = invoke(&h, &g, "c", json!({"params": {"n": 1}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["response"]["result"], json!({"n": 1}));
    assert_eq!(annotation(&v, "conductor"), Some(&json!(true)));
    assert_eq!(annotation(&v, "kind"), Some(&json!("sequence")));
    assert_eq!(annotation(&v, "topmost"), Some(&json!(true)));
    assert_eq!(annotation(&v, "limits").unwrap()["memory"], 256);
    assert_eq!(logs(&v).len(), 1);

    // conductor → step(params) → conductor(step's result + state).
    let (s, v) = invoke(
        &h,
        &g,
        "c",
        json!({"action": "step", "params": {"n": 1}, "state": {"witness": 42}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["response"]["result"],
        json!({"n": 1, "stepped": true, "witness": 42})
    );
    let ids = logs(&v);
    assert_eq!(ids.len(), 3);
    let step = record(&h, &g, &ids[1]).await;
    assert_eq!(step["name"], "step");
    let second = record(&h, &g, &ids[2]).await;
    assert_eq!(second["name"], "c");

    // What a conductor cannot invoke comes back to it as an error.
    let (_, v) = invoke(&h, &g, "c", json!({"action": "missing"})).await;
    let missing = whisk_core::FullyQualifiedName::parse("missing", "guest").unwrap();
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::component_not_found(&missing)})
    );
    assert_eq!(logs(&v).len(), 2);
    let (_, v) = invoke(&h, &g, "c", json!({"action": "invalid#Action"})).await;
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::component_invalid(&json!("invalid#Action"))})
    );
    let (_, v) = invoke(&h, &g, "c", json!({"action": "/other/step"})).await;
    let other = whisk_core::FullyQualifiedName::parse("/other/step", "guest").unwrap();
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::component_not_accessible(&other)})
    );

    // A conductor that fails ends the composition with its error.
    let (s, v) = invoke(&h, &g, "c", json!({"mode": "fail"})).await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["response"]["result"], json!({"error": "it failed"}));
}

#[tokio::test]
async fn a_conductor_past_its_limits_ends_with_an_error() {
    let limit = 4;
    let config = ControllerConfig {
        sequence_length: limit,
        ..ControllerConfig::default()
    };
    let h = Harness::start_with(config, true).await;
    let g = guest();
    put_conductor(&h, &g, "c").await;
    h.create_action(&g, "step", json!([])).await;

    // `limit` steps chained through the state: fine; one more is refused to the conductor.
    let chain = |n: usize| {
        (0..n).fold(
            json!({}),
            |inner, _| json!({"action": "step", "state": inner}),
        )
    };
    let (s, v) = invoke(&h, &g, "c", chain(limit)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(logs(&v).len(), 2 * limit + 1);
    let (_, v) = invoke(&h, &g, "c", chain(limit + 1)).await;
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::COMPOSITION_TOO_LONG})
    );

    // A conductor that keeps calling itself: at the limit fine, past it an application error.
    let nest = |n: usize| {
        (0..n).fold(
            json!({}),
            |inner, _| json!({"action": "c", "params": inner}),
        )
    };
    let (s, v) = invoke(&h, &g, "c", nest(limit)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = invoke(&h, &g, "c", nest(limit + 1)).await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["response"]["status"], "application error");
    assert_eq!(
        v["response"]["result"],
        json!({"error": seq::COMPOSITION_TOO_LONG})
    );
    let (s, _) = invoke(&h, &g, "step", json!({})).await;
    assert_eq!(s, 200, "the platform keeps serving");
}

#[tokio::test]
async fn a_running_sequence_ends_with_a_record_on_shutdown() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hang", json!([{"key": "mode", "value": "hang"}]))
        .await;
    assert_eq!(put_sequence(&h, &g, "s", json!(["/_/hang"])).await.0, 200);
    let (s, v) = h
        .call(
            Method::POST,
            &format!("{ACTIONS}/s"),
            Some(&g),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = ActivationId::parse(v["activationId"].as_str().unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), h.controller.join())
        .await
        .expect("the sequence's task is drained");
    let r = h
        .store
        .get_activation("guest", &id)
        .await
        .unwrap()
        .expect("its record");
    assert_eq!(u8::from(r.response.status_code), 3, "{r:?}");
    assert_eq!(r.logs.len(), 1);
    let message = r.response.result.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(message, seq::retrieve_timeout(&r.logs[0]));
}
