//! Triggers and rules through the controller and a fake invoker: trigger and rule CRUD with
//! OpenWhisk's shapes and status codes, the rules map of trigger documents, fires (204 without
//! an active rule, the trigger's record and its per-rule log lines, the actions' activations
//! with `cause`), rules whose action is gone, orphaned rules, the fires-per-minute throttle,
//! and concurrent rule writes on one trigger.
//!
//! Why one file of this length: triggers and rules share one document (the trigger's rules map),
//! so their CRUD, fire and concurrency cases test one state together.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use whisk_core::{Identity, UserLimits};

const NS: &str = "/api/v1/namespaces/_";

fn path(collection: &str, name: &str) -> String {
    format!("{NS}/{collection}/{name}")
}

async fn ok(h: &Harness, method: Method, p: &str, who: &Identity, body: Option<Value>) -> Value {
    let request = format!("{method} {p}");
    let (s, v) = h.call(method, p, Some(who), body).await;
    assert_eq!(s, 200, "{request}: {v}");
    v
}

async fn create_trigger(h: &Harness, who: &Identity, name: &str, body: Value) -> Value {
    ok(h, Method::PUT, &path("triggers", name), who, Some(body)).await
}

async fn create_rule(
    h: &Harness,
    who: &Identity,
    name: &str,
    trigger: &str,
    action: &str,
) -> Value {
    let body = json!({"trigger": format!("/_/{trigger}"), "action": format!("/_/{action}")});
    ok(h, Method::PUT, &path("rules", name), who, Some(body)).await
}

/// Fires `trigger` with `payload`: the status, and the activation id (header and body agree).
async fn fire(h: &Harness, who: &Identity, trigger: &str, payload: Value) -> (u16, Option<String>) {
    let resp = h
        .req(Method::POST, &path("triggers", trigger), Some(who))
        .json(&payload)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let header = resp
        .headers()
        .get("x-openwhisk-activation-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = resp.text().await.unwrap();
    if status == 202 {
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["activationId"].as_str(), header.as_deref(), "{v}");
    } else if status == 204 {
        assert!(text.is_empty(), "204 with a body: {text}");
    }
    (status, header)
}

/// The activation `id` of `who`'s namespace once it is stored.
async fn record(h: &Harness, who: &Identity, id: &str) -> Value {
    for _ in 0..100 {
        let (s, v) = h
            .call(
                Method::GET,
                &format!("{NS}/activations/{id}"),
                Some(who),
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

/// The trigger record's log lines, parsed.
fn rule_lines(record: &Value) -> Vec<Value> {
    record["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l.as_str().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn trigger_crud_like_openwhisk() {
    let h = Harness::start().await;
    let g = guest();
    assert_eq!(
        ok(&h, Method::GET, &format!("{NS}/triggers"), &g, None).await,
        json!([])
    );
    let e = h
        .error(Method::GET, &path("triggers", "t"), Some(&g), None, 404)
        .await;
    assert_eq!(e, "The requested resource does not exist.");

    let t = create_trigger(&h, &g, "t", json!({})).await;
    assert_eq!(t["namespace"], "guest");
    assert_eq!(t["name"], "t");
    assert_eq!(t["version"], "0.0.1");
    assert_eq!(t["annotations"], json!([]));
    assert_eq!(t["parameters"], json!([]));
    assert_eq!(t["limits"], json!({}));
    assert_eq!(t["publish"], false);
    assert!(t.get("rules").is_none(), "{t}");

    let e = h
        .error(
            Method::PUT,
            &path("triggers", "t"),
            Some(&g),
            Some(json!({})),
            409,
        )
        .await;
    assert_eq!(e, "resource already exists");
    let u = ok(
        &h,
        Method::PUT,
        &format!("{}?overwrite=true", path("triggers", "t")),
        &g,
        Some(json!({"parameters": [{"key": "p", "value": 1}]})),
    )
    .await;
    assert_eq!(u["version"], "0.0.2");
    assert_eq!(u["parameters"], json!([{"key": "p", "value": 1}]));
    // Fields left out of an update are kept.
    let a = ok(
        &h,
        Method::PUT,
        &format!("{}?overwrite=true", path("triggers", "t")),
        &g,
        Some(json!({"annotations": [{"key": "description", "value": "d"}]})),
    )
    .await;
    assert_eq!(a["version"], "0.0.3");
    assert_eq!(a["parameters"], json!([{"key": "p", "value": 1}]));

    create_trigger(&h, &g, "u", json!({})).await;
    let list = ok(&h, Method::GET, &format!("{NS}/triggers"), &g, None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(names.contains(&"t") && names.contains(&"u"));
    assert!(
        list[0].get("parameters").is_none(),
        "summaries only: {list}"
    );
    let count = ok(
        &h,
        Method::GET,
        &format!("{NS}/triggers?count=true"),
        &g,
        None,
    )
    .await;
    assert_eq!(count, json!({"triggers": 2}));
    let page = ok(
        &h,
        Method::GET,
        &format!("{NS}/triggers?limit=1&skip=1"),
        &g,
        None,
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    h.error(
        Method::GET,
        &format!("{NS}/triggers?limit=201"),
        Some(&g),
        None,
        400,
    )
    .await;

    let d = ok(&h, Method::DELETE, &path("triggers", "t"), &g, None).await;
    assert_eq!(d["name"], "t");
    h.error(Method::GET, &path("triggers", "t"), Some(&g), None, 404)
        .await;
    h.error(Method::DELETE, &path("triggers", "t"), Some(&g), None, 404)
        .await;

    // Another namespace's triggers are out of reach; bad bodies and names are 400.
    let e = h
        .error(
            Method::GET,
            "/api/v1/namespaces/whisk.system/triggers/u",
            Some(&g),
            None,
            403,
        )
        .await;
    assert!(e.contains("not authorized"), "{e}");
    h.error(
        Method::PUT,
        &path("triggers", "v"),
        Some(&g),
        Some(json!({"parameters": 3})),
        400,
    )
    .await;
    h.error(
        Method::PUT,
        &path("triggers", "%20v"),
        Some(&g),
        Some(json!({})),
        400,
    )
    .await;
    let feed = json!({"annotations": [{"key": "feed", "value": 42}]});
    let e = h
        .error(
            Method::PUT,
            &path("triggers", "v"),
            Some(&g),
            Some(feed),
            400,
        )
        .await;
    assert_eq!(e, "Feed name is not valid");
}

#[tokio::test]
async fn rule_crud_and_status_live_in_the_trigger() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    h.create_action(&g, "other", json!([])).await;
    create_trigger(&h, &g, "t", json!({})).await;
    create_trigger(&h, &g, "t2", json!({})).await;

    let r = create_rule(&h, &g, "r", "t", "hello").await;
    assert_eq!(r["namespace"], "guest");
    assert_eq!(r["name"], "r");
    assert_eq!(r["status"], "active");
    assert_eq!(r["version"], "0.0.1");
    assert_eq!(r["trigger"], json!({"path": "guest", "name": "t"}));
    assert_eq!(r["action"], json!({"path": "guest", "name": "hello"}));
    let t = ok(&h, Method::GET, &path("triggers", "t"), &g, None).await;
    assert_eq!(
        t["rules"],
        json!({"guest/r": {"action": {"path": "guest", "name": "hello"}, "status": "active"}})
    );
    assert_eq!(
        ok(&h, Method::GET, &path("rules", "r"), &g, None).await["status"],
        "active"
    );

    // Conflicts and bad references.
    let body = json!({"trigger": "/_/t", "action": "/_/hello"});
    let e = h
        .error(Method::PUT, &path("rules", "r"), Some(&g), Some(body), 409)
        .await;
    assert_eq!(e, "resource already exists");
    let bare = json!({"trigger": "t", "action": "/_/hello"});
    let e = h
        .error(Method::PUT, &path("rules", "x"), Some(&g), Some(bare), 400)
        .await;
    assert!(e.contains("must contain at least the namespace"), "{e}");
    let no_trigger = json!({"trigger": "/_/nope", "action": "/_/hello"});
    let e = h
        .error(
            Method::PUT,
            &path("rules", "x"),
            Some(&g),
            Some(no_trigger),
            400,
        )
        .await;
    assert_eq!(e, "trigger /guest/nope does not exist");
    let no_action = json!({"trigger": "/_/t", "action": "/_/nope"});
    let e = h
        .error(
            Method::PUT,
            &path("rules", "x"),
            Some(&g),
            Some(no_action),
            400,
        )
        .await;
    assert_eq!(e, "action /guest/nope does not exist");
    let e = h
        .error(
            Method::PUT,
            &path("rules", "x"),
            Some(&g),
            Some(json!({"trigger": "/_/t"})),
            400,
        )
        .await;
    assert_eq!(e, "rule requires a valid trigger and a valid action");
    let other_ns = json!({"trigger": "/whisk.system/t", "action": "/_/hello"});
    h.error(
        Method::PUT,
        &path("rules", "x"),
        Some(&g),
        Some(other_ns),
        403,
    )
    .await;
    h.error(Method::GET, &path("rules", "x"), Some(&g), None, 404)
        .await;

    // Status changes: 200 whether they change anything or not.
    let post = |status: &str| json!({"status": status});
    for s in ["inactive", "inactive"] {
        let (code, v) = h
            .call(Method::POST, &path("rules", "r"), Some(&g), Some(post(s)))
            .await;
        assert_eq!(code, 200, "{v}");
    }
    assert_eq!(
        ok(&h, Method::GET, &path("rules", "r"), &g, None).await["status"],
        "inactive"
    );
    let t = ok(&h, Method::GET, &path("triggers", "t"), &g, None).await;
    assert_eq!(t["rules"]["guest/r"]["status"], "inactive");
    let e = h
        .error(
            Method::POST,
            &path("rules", "r"),
            Some(&g),
            Some(post("xxx")),
            400,
        )
        .await;
    assert!(e.contains("not a recognized rule state"), "{e}");
    h.error(
        Method::POST,
        &path("rules", "r"),
        Some(&g),
        Some(json!({})),
        400,
    )
    .await;
    h.error(
        Method::POST,
        &path("rules", "nope"),
        Some(&g),
        Some(post("active")),
        404,
    )
    .await;
    let (code, _) = h
        .call(
            Method::POST,
            &path("rules", "r"),
            Some(&g),
            Some(post("active")),
        )
        .await;
    assert_eq!(code, 200);

    // An active rule may be updated (it keeps its status); a new trigger moves the link.
    let u = ok(
        &h,
        Method::PUT,
        &format!("{}?overwrite=true", path("rules", "r")),
        &g,
        Some(json!({"trigger": "/_/t2", "action": "/_/other"})),
    )
    .await;
    assert_eq!(u["status"], "active");
    assert_eq!(u["version"], "0.0.2");
    assert_eq!(u["action"], json!({"path": "guest", "name": "other"}));
    let t = ok(&h, Method::GET, &path("triggers", "t"), &g, None).await;
    assert_eq!(t["rules"], json!({}), "{t}");
    let t2 = ok(&h, Method::GET, &path("triggers", "t2"), &g, None).await;
    assert_eq!(t2["rules"]["guest/r"]["action"]["name"], "other");

    let list = ok(&h, Method::GET, &format!("{NS}/rules"), &g, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "r");
    assert_eq!(
        ok(&h, Method::GET, &format!("{NS}/rules?count=true"), &g, None).await,
        json!({"rules": 1})
    );

    // Deleting an active rule unlinks it and answers it inactive.
    let d = ok(&h, Method::DELETE, &path("rules", "r"), &g, None).await;
    assert_eq!(d["status"], "inactive");
    let t2 = ok(&h, Method::GET, &path("triggers", "t2"), &g, None).await;
    assert_eq!(t2["rules"], json!({}));
    h.error(Method::GET, &path("rules", "r"), Some(&g), None, 404)
        .await;
    h.error(Method::DELETE, &path("rules", "r"), Some(&g), None, 404)
        .await;
}

#[tokio::test]
async fn deleting_a_trigger_orphans_its_rules() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    create_trigger(&h, &g, "t", json!({})).await;
    create_rule(&h, &g, "r", "t", "hello").await;
    ok(&h, Method::DELETE, &path("triggers", "t"), &g, None).await;

    let r = ok(&h, Method::GET, &path("rules", "r"), &g, None).await;
    assert_eq!(r["status"], "inactive");
    let e = h
        .error(
            Method::POST,
            &path("rules", "r"),
            Some(&g),
            Some(json!({"status": "active"})),
            404,
        )
        .await;
    assert_eq!(e, "Only rules with existing triggers can be activated");
    let (code, _) = h
        .call(
            Method::POST,
            &path("rules", "r"),
            Some(&g),
            Some(json!({"status": "inactive"})),
        )
        .await;
    assert_eq!(code, 200);
    // A new trigger of that name does not bring the rule back; enabling it links it again.
    create_trigger(&h, &g, "t", json!({})).await;
    assert_eq!(fire(&h, &g, "t", json!({})).await.0, 204);
    let (code, _) = h
        .call(
            Method::POST,
            &path("rules", "r"),
            Some(&g),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(fire(&h, &g, "t", json!({})).await.0, 202);
    let d = ok(&h, Method::DELETE, &path("rules", "r"), &g, None).await;
    assert_eq!(d["name"], "r");
}

#[tokio::test]
async fn fire_invokes_each_active_rule_and_records_it() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([{"key": "a", "value": "from action"}]))
        .await;
    create_trigger(
        &h,
        &g,
        "t",
        json!({"parameters": [{"key": "p", "value": 1}, {"key": "x", "value": 0}]}),
    )
    .await;

    // No rule, or no active one: 204 and no record.
    assert_eq!(fire(&h, &g, "t", json!({"x": 2})).await, (204, None));
    create_rule(&h, &g, "r", "t", "hello").await;
    create_rule(&h, &g, "off", "t", "hello").await;
    h.call(
        Method::POST,
        &path("rules", "r"),
        Some(&g),
        Some(json!({"status": "inactive"})),
    )
    .await;
    h.call(
        Method::POST,
        &path("rules", "off"),
        Some(&g),
        Some(json!({"status": "inactive"})),
    )
    .await;
    assert_eq!(fire(&h, &g, "t", json!({"x": 2})).await, (204, None));
    assert_eq!(
        ok(&h, Method::GET, &format!("{NS}/activations"), &g, None).await,
        json!([])
    );
    h.call(
        Method::POST,
        &path("rules", "r"),
        Some(&g),
        Some(json!({"status": "active"})),
    )
    .await;

    let (status, id) = fire(&h, &g, "t", json!({"x": 2})).await;
    assert_eq!(status, 202);
    let id = id.unwrap();
    let trigger = record(&h, &g, &id).await;
    assert_eq!(trigger["name"], "t");
    assert_eq!(trigger["namespace"], "guest");
    assert_eq!(trigger["subject"], "guest");
    assert_eq!(trigger["version"], "0.0.1");
    assert_eq!(trigger["end"], 0);
    assert_eq!(trigger["response"]["status"], "success");
    assert_eq!(trigger["response"]["result"], json!({"x": 2}));
    let lines = rule_lines(&trigger);
    assert_eq!(lines.len(), 2, "{trigger}");
    let off = &lines[0];
    assert_eq!(off["rule"], "guest/off");
    assert_eq!(off["statusCode"], 1);
    assert_eq!(off["success"], false);
    assert_eq!(
        off["error"],
        "Rule 'guest/off' is inactive, action 'guest/hello' was not activated."
    );
    let on = &lines[1];
    assert_eq!(
        on.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["statusCode", "success", "activationId", "rule", "action"]
    );
    assert_eq!(on["statusCode"], 0);
    assert_eq!(on["success"], true);
    assert_eq!(on["rule"], "guest/r");
    assert_eq!(on["action"], "guest/hello");

    // The action ran with action ← trigger ← headers ← payload, caused by the trigger.
    let action = record(&h, &g, on["activationId"].as_str().unwrap()).await;
    assert_eq!(action["name"], "hello");
    assert_eq!(action["cause"], id.as_str());
    let result = &action["response"]["result"];
    assert_eq!(result["a"], "from action");
    assert_eq!(result["p"], 1);
    assert_eq!(result["x"], 2);
    let headers = &result["__ow_headers"];
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.get("authorization").is_none(), "{headers}");

    // Errors: no such trigger, a body that is not an object, another namespace.
    h.error(
        Method::POST,
        &path("triggers", "nope"),
        Some(&g),
        Some(json!({})),
        404,
    )
    .await;
    h.error(
        Method::POST,
        &path("triggers", "t"),
        Some(&g),
        Some(json!([1])),
        400,
    )
    .await;
    h.error(
        Method::POST,
        "/api/v1/namespaces/whisk.system/triggers/t",
        Some(&g),
        None,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_rule_whose_action_is_gone_is_logged_and_the_others_fire() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "gone", json!([])).await;
    h.create_action(&g, "stays", json!([])).await;
    create_trigger(&h, &g, "t", json!({})).await;
    create_rule(&h, &g, "r1", "t", "gone").await;
    create_rule(&h, &g, "r2", "t", "stays").await;
    ok(&h, Method::DELETE, &path("actions", "gone"), &g, None).await;

    let (status, id) = fire(&h, &g, "t", json!({"n": 1})).await;
    assert_eq!(status, 202);
    let trigger = record(&h, &g, &id.unwrap()).await;
    let lines = rule_lines(&trigger);
    assert_eq!(lines.len(), 2, "{trigger}");
    assert_eq!(
        lines[0],
        json!({"statusCode": 1, "success": false, "error": "The requested resource does not exist.",
               "rule": "guest/r1", "action": "guest/gone"})
    );
    assert_eq!(lines[1]["rule"], "guest/r2");
    assert_eq!(lines[1]["statusCode"], 0);
    let ran = record(&h, &g, lines[1]["activationId"].as_str().unwrap()).await;
    assert_eq!(ran["response"]["result"]["n"], 1);

    // The platform keeps serving: the rule is still there, the trigger fires again.
    assert_eq!(
        ok(&h, Method::GET, &path("rules", "r1"), &g, None).await["status"],
        "active"
    );
    assert_eq!(fire(&h, &g, "t", json!({})).await.0, 202);
}

/// A user of namespace `ns` with its own limits.
async fn user(h: &Harness, ns: &str, limits: UserLimits) -> Identity {
    let mut id = Identity::generate(ns, ns);
    id.limits = limits;
    h.store.put_identity(&id).await.unwrap();
    id
}

#[tokio::test]
async fn fires_per_minute_and_invocation_throttles() {
    let h = Harness::start().await;
    let few = user(
        &h,
        "few",
        UserLimits {
            fires_per_minute: Some(2),
            ..UserLimits::default()
        },
    )
    .await;
    let limits = ok(&h, Method::GET, &format!("{NS}/limits"), &few, None).await;
    assert_eq!(limits["firesPerMinute"], 2);
    create_trigger(&h, &few, "t", json!({})).await;
    assert_eq!(fire(&h, &few, "t", json!({})).await.0, 204);
    // A fire of a trigger that does not exist counts too, as in OpenWhisk.
    h.error(
        Method::POST,
        &path("triggers", "nope"),
        Some(&few),
        None,
        404,
    )
    .await;
    let e = h
        .error(Method::POST, &path("triggers", "t"), Some(&few), None, 429)
        .await;
    assert_eq!(
        e,
        "Too many requests in the last minute (count: 2, allowed: 2)."
    );
    // Other namespaces and other routes are not affected.
    ok(&h, Method::GET, &path("triggers", "t"), &few, None).await;
    let g = guest();
    create_trigger(&h, &g, "t", json!({})).await;
    assert_eq!(fire(&h, &g, "t", json!({})).await.0, 204);

    // An action the invocation throttle refuses: the record says so.
    let one = user(
        &h,
        "one",
        UserLimits {
            invocations_per_minute: Some(1),
            ..UserLimits::default()
        },
    )
    .await;
    h.create_action(&one, "hello", json!([])).await;
    create_trigger(&h, &one, "t", json!({})).await;
    create_rule(&h, &one, "r", "t", "hello").await;
    let first = fire(&h, &one, "t", json!({})).await.1.unwrap();
    assert_eq!(
        rule_lines(&record(&h, &one, &first).await)[0]["statusCode"],
        0
    );
    let second = fire(&h, &one, "t", json!({})).await.1.unwrap();
    let line = &rule_lines(&record(&h, &one, &second).await)[0];
    assert_eq!(line["statusCode"], 1);
    assert_eq!(
        line["error"],
        "Too many requests in the last minute (count: 1, allowed: 1)."
    );
}

#[tokio::test]
async fn concurrent_rule_writes_keep_every_link() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "hello", json!([])).await;
    create_trigger(&h, &g, "t", json!({})).await;
    let n = 12;
    let creates = (0..n).map(|i| {
        let h = &h;
        let g = &g;
        async move { create_rule(h, g, &format!("r{i}"), "t", "hello").await }
    });
    futures::future::join_all(creates).await;
    // Updates of the trigger itself, meanwhile, keep the links too.
    let update_path = format!("{}?overwrite=true", path("triggers", "t"));
    let update = ok(
        &h,
        Method::PUT,
        &update_path,
        &g,
        Some(json!({"parameters": [{"key": "k", "value": 1}]})),
    );
    let disables = (0..n).step_by(2).map(|i| {
        let h = &h;
        let g = &g;
        async move {
            let (s, v) = h
                .call(
                    Method::POST,
                    &path("rules", &format!("r{i}")),
                    Some(g),
                    Some(json!({"status": "inactive"})),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
    });
    let (_, _) = tokio::join!(update, futures::future::join_all(disables));
    let t = ok(&h, Method::GET, &path("triggers", "t"), &g, None).await;
    let rules = t["rules"].as_object().unwrap();
    assert_eq!(rules.len(), n, "{t}");
    for i in 0..n {
        let want = if i % 2 == 0 { "inactive" } else { "active" };
        assert_eq!(rules[&format!("guest/r{i}")]["status"], want, "{t}");
    }
    assert_eq!(t["parameters"], json!([{"key": "k", "value": 1}]));
}

#[tokio::test]
async fn a_rule_may_start_a_sequence() {
    let h = Harness::start().await;
    let g = guest();
    h.create_action(&g, "a", json!([{"key": "k", "value": "v"}]))
        .await;
    let seq = json!({"exec": {"kind": "sequence", "components": ["/_/a"]}});
    ok(&h, Method::PUT, &path("actions", "s"), &g, Some(seq)).await;
    create_trigger(&h, &g, "t", json!({})).await;
    create_rule(&h, &g, "r", "t", "s").await;
    let id = fire(&h, &g, "t", json!({"n": 1})).await.1.unwrap();
    let line = &rule_lines(&record(&h, &g, &id).await)[0];
    assert_eq!(line["statusCode"], 0, "{line}");
    let sequence = record(&h, &g, line["activationId"].as_str().unwrap()).await;
    assert_eq!(sequence["name"], "s");
    assert_eq!(sequence["response"]["result"]["n"], 1, "{sequence}");
    assert_eq!(sequence["response"]["result"]["k"], "v", "{sequence}");
}
