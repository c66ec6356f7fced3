//! Feeds end to end with the real `whisk standalone` (its controller, invoker and in-process
//! feed provider) and the `whisk` binary as wsk users type them: `trigger create --feed
//! /whisk.system/alarms/alarm -p cron ...` registers the alarm, which fires the trigger every
//! second through a rule to an action; a restart of the platform keeps it firing (the
//! registration is in the store); `trigger delete` runs the feed's DELETE first, after which
//! nothing fires; a feed that refuses its CREATE leaves no trigger behind.

mod support;

use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use support::succeeded as ok;
use support::*;

fn whisk(dir: &Path, apihost: &str, args: &[&str]) -> Output {
    whisk_as_guest(dir, apihost, args)
}

/// `whisk action invoke FEED -r` with lifecycle event READ for `trigger` (`/_/name`): the
/// feed's registration of the trigger.
fn read_feed(w: &dyn Fn(&[&str]) -> Output, feed: &str, trigger: &str) -> Output {
    w(&[
        "action",
        "invoke",
        feed,
        "-r",
        "-p",
        "lifecycleEvent",
        "READ",
        "-p",
        "triggerName",
        trigger,
    ])
}

/// The records of action `name` (newest first).
async fn records(api: &Api, name: &str) -> Vec<Value> {
    let resp = api
        .req(
            Method::GET,
            &format!("activations?name={name}&limit=200&docs=true"),
        )
        .send()
        .await
        .unwrap();
    resp.json::<Value>()
        .await
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn at_least(api: &Api, name: &str, n: usize) -> Vec<Value> {
    eventually(
        &format!("{n} activations of {name}"),
        Duration::from_secs(40),
        || async { Some(records(api, name).await).filter(|r| r.len() >= n) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_feed_with_the_cli_fires_a_rule_survives_a_restart_and_is_deleted() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let mut server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let api = Api::new(&host, GUEST_KEY);
    let w = |host: &str, args: &[&str]| whisk(dir, host, args);
    let code = dir.join("tock.py");
    std::fs::write(&code, "def main(a):\n    return a\n").unwrap();
    ok(&w(
        &host,
        &["action", "create", "tock", &code.display().to_string()],
    ));

    let out = ok(&w(
        &host,
        &[
            "trigger",
            "create",
            "tick",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "* * * * * *",
            "-p",
            "trigger_payload",
            r#"{"n": 1}"#,
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ok: invoked /whisk.system/alarms/alarm with id "),
        "{out}"
    );
    assert_eq!(lines[1], "ok: created trigger tick", "{out}");
    // As wsk: `trigger get` of a feed trigger runs the feed's READ and shows its activation.
    let got = ok(&w(&host, &["trigger", "get", "tick"]));
    let (head, body) = got.split_once('\n').unwrap_or_default();
    assert!(
        head.starts_with("ok: invoked /whisk.system/alarms/alarm with id "),
        "{got}"
    );
    let read: serde_json::Value = serde_json::from_str(body).unwrap();
    let result = &read["response"]["result"];
    assert_eq!(result["config"]["cron"], "* * * * * *", "{read}");
    assert_eq!(result["status"]["active"], true, "{read}");
    ok(&w(&host, &["rule", "create", "every", "tick", "tock"]));
    let fired = at_least(&api, "tock", 3).await;
    assert_eq!(fired[0]["response"]["result"]["n"], 1, "{:?}", fired[0]);

    // A restart: the registration is in the store; the new provider picks it up.
    let before = records(&api, "tock").await.len();
    server.terminate();
    drop(server);
    let server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let api = Api::new(&host, GUEST_KEY);
    at_least(&api, "tock", before + 2).await;

    // Delete runs the feed's DELETE: nothing fires after it.
    ok(&w(&host, &["trigger", "delete", "tick"]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = records(&api, "tock").await.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        records(&api, "tock").await.len(),
        n,
        "no fire after the feed's DELETE"
    );

    // The feed's DELETE ran: a trigger of that name made again has no registration.
    ok(&w(&host, &["trigger", "create", "tick"]));
    let read = read_feed(&|a| w(&host, a), "/whisk.system/alarms/alarm", "/_/tick");
    let err = String::from_utf8_lossy(&read.stderr);
    assert!(err.contains("has no feed registration"), "{err}");

    // A refused CREATE: the trigger goes again, with wsk's message.
    let o = w(
        &host,
        &[
            "trigger",
            "create",
            "bad",
            "--feed",
            "/whisk.system/alarms/alarm",
            "-p",
            "cron",
            "nonsense",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Unable to create trigger 'bad': Unable to configure feed '/whisk.system/alarms/alarm': cron pattern 'nonsense' is not valid"),
        "{err}"
    );
    let gone = w(&host, &["trigger", "get", "bad"]);
    assert!(
        !gone.status.success(),
        "the trigger of a refused feed is deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kafka_feed_fires_its_trigger_with_message_batches_through_a_rule() {
    use whisk_bus::{Bus, KafkaBus, KafkaConfig};
    let tansu = whisk_test_support::services::Tansu::start();
    let brokers = tansu.brokers();
    let bus = KafkaBus::new(KafkaConfig {
        brokers: brokers.clone(),
        ..KafkaConfig::default()
    })
    .unwrap();
    bus.ensure_topic("orders").await.unwrap();
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let api = Api::new(&host, GUEST_KEY);
    let w = |args: &[&str]| whisk(dir, &host, args);
    let code = dir.join("tock.py");
    std::fs::write(&code, "def main(a):\n    return a\n").unwrap();
    ok(&w(&[
        "action",
        "create",
        "tock",
        &code.display().to_string(),
    ]));
    let feed = "/whisk.system/messaging/kafkaFeed";
    let out = ok(&w(&[
        "trigger",
        "create",
        "orders",
        "--feed",
        feed,
        "-p",
        "brokers",
        &brokers,
        "-p",
        "topic",
        "orders",
        "-p",
        "isJSONData",
        "true",
    ]));
    assert!(out.ends_with("ok: created trigger orders\n"), "{out}");
    ok(&w(&["rule", "create", "r", "orders", "tock"]));
    for n in 0..3 {
        let m = serde_json::json!({ "n": n }).to_string();
        bus.publish("orders", m.into()).await.unwrap();
    }
    let got = eventually(
        "the three messages fired",
        Duration::from_secs(40),
        || async {
            let values: Vec<Value> = records(&api, "tock")
                .await
                .iter()
                .flat_map(|r| {
                    r["response"]["result"]["messages"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            (values.len() >= 3).then_some(values)
        },
    )
    .await;
    let mut ns: Vec<i64> = got
        .iter()
        .filter_map(|m| m["value"]["n"].as_i64())
        .collect();
    ns.sort();
    assert_eq!(ns, [0, 1, 2], "{got:?}");
    assert!(got
        .iter()
        .all(|m| m["topic"] == "orders" && m["partition"] == 0));
    let state: Value = serde_json::from_str(&ok(&read_feed(&w, feed, "/_/orders"))).unwrap();
    assert_eq!(state["health"]["state"], "running", "{state}");
    assert_eq!(state["config"]["topic"], "orders", "{state}");
    // Delete runs the feed's DELETE: a trigger of that name made again has no registration.
    ok(&w(&["trigger", "delete", "orders"]));
    ok(&w(&["trigger", "create", "orders"]));
    let read = read_feed(&w, feed, "/_/orders");
    assert!(
        !read.status.success(),
        "the registration is gone with the trigger"
    );
    let err = String::from_utf8_lossy(&read.stderr);
    assert!(
        err.contains("the trigger /guest/orders has no feed registration"),
        "{err}"
    );
}

/// Waits (at most 120 s) until the controller at `base` lists `n` healthy invokers.
async fn wait_invokers(base: &str, n: usize) {
    let http = reqwest::Client::new();
    let url = format!("{base}/invokers");
    eventually("healthy invokers", Duration::from_secs(120), || async {
        let r = http.get(&url).send().await.ok()?;
        let v: std::collections::BTreeMap<String, String> = r.json().await.ok()?;
        (v.values().filter(|s| *s == "up").count() >= n).then_some(())
    })
    .await;
}

/// Start times of the records of `name`, oldest first.
async fn starts(api: &Api, name: &str) -> Vec<i64> {
    let mut s: Vec<i64> = records(api, name)
        .await
        .iter()
        .filter_map(|r| r["start"].as_i64())
        .collect();
    s.sort();
    s
}

fn once_per_second(starts: &[i64]) {
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= 500,
            "two fires {} ms apart: {starts:?}",
            w[1] - w[0]
        );
    }
}

/// Distributed mode: a controller, an invoker and two `whisk feeds` over Kafka and CouchDB. An
/// every-second alarm fires once a second (never twice), and keeps firing after the provider
/// holding it is killed (its lease lapses, the other takes over).
#[tokio::test(flavor = "multi_thread")]
async fn two_feed_providers_over_kafka_and_couchdb_fire_once_and_survive_a_crash() {
    use whisk_test_support::services::Services;
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let services = Services::up(&dir.join("services"));
    let (kafka, couch) = (services.kafka(), services.couchdb());
    let api_port = free_port();
    let base = format!("http://127.0.0.1:{api_port}");
    let env: Vec<(String, String)> = [
        ("WHISK_COUCHDB__DB_PREFIX", "whisk_feeds_"),
        ("WHISK_FEEDS__LEASE_TTL_MS", "2000"),
        ("WHISK_FEEDS__RESYNC_MS", "300"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let common = |role: &str| s(&[role, "--kafka", &kafka, "--couchdb", &couch]);
    let mut args = common("controller");
    let data = dir.join("controller").display().to_string();
    args.extend(s(&[
        "--listen",
        &format!("127.0.0.1:{api_port}"),
        "--data-dir",
        &data,
    ]));
    let _controller = spawn_whisk(dir, "controller", &args, &env);
    let mut args = common("invoker");
    let data = dir.join("i0").display().to_string();
    args.extend(s(&["--id", "0", "--data-dir", &data]));
    let _invoker = spawn_whisk(dir, "invoker0", &args, &env);
    wait_invokers(&base, 1).await;
    let mut providers: Vec<Proc> = ["fa", "fb"]
        .iter()
        .map(|id| {
            let mut args = common("feeds");
            args.extend(s(&["--api-url", &base, "--id", id]));
            spawn_whisk(dir, &format!("feeds-{id}"), &args, &env)
        })
        .collect();

    let key = couch_user_key(&couch, "guest", &env);
    let api = Api::new(&base, &key);
    let w = |args: &[&str]| {
        whisk_private(&dir.join("wskprops"), dir)
            .args(args)
            .env("WHISK_APIHOST", &base)
            .env("WHISK_AUTH", &key)
            .output()
            .expect("run whisk")
    };
    let code = dir.join("tock.py");
    std::fs::write(&code, "def main(a):\n    return a\n").unwrap();
    ok(&w(&[
        "action",
        "create",
        "tock",
        &code.display().to_string(),
    ]));
    ok(&w(&[
        "trigger",
        "create",
        "tick",
        "--feed",
        "/whisk.system/alarms/alarm",
        "-p",
        "cron",
        "* * * * * *",
    ]));
    ok(&w(&["rule", "create", "every", "tick", "tock"]));
    at_least(&api, "tock", 4).await;
    once_per_second(&starts(&api, "tick").await);

    // Kill the provider that holds the alarm (as a crash: its lease stays until it lapses).
    let state = ok(&read_feed(&w, "/whisk.system/alarms/alarm", "/_/tick"));
    let state: Value = serde_json::from_str(&state).unwrap();
    let holder = usize::from(state["provider"] == "fb");
    assert_eq!(state["provider"], ["fa", "fb"][holder], "{state}");
    let before = starts(&api, "tick").await.len();
    providers[holder].kill();
    let after = eventually("fires after the crash", Duration::from_secs(30), || async {
        let s = starts(&api, "tick").await;
        (s.len() >= before + 4).then_some(s)
    })
    .await;
    once_per_second(&after);
    let state = ok(&read_feed(&w, "/whisk.system/alarms/alarm", "/_/tick"));
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        state["provider"],
        ["fa", "fb"][1 - holder],
        "the other took over: {state}"
    );
}
