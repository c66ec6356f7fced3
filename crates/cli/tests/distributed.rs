//! Distributed mode end to end: a Kafka-protocol broker (tansu), a CouchDB-compatible server
//! (pouchdb-server) and Redis started by `scripts/services.sh`, then `whisk directory`, one
//! `whisk controller`, three `whisk invoker`s and a `whisk feeds` as separate processes. The `openwhisk`
//! npm-client conformance suite runs against it; then: work spreads over the invokers; four
//! instances on different invokers see each other; an invoker killed mid-load loses no
//! accepted activation and new work goes to the others; a restarted controller still finds
//! every action in CouchDB; an update or delete through one controller reaches a second
//! controller's action cache; with CouchDB down requests answer 503 with OpenWhisk's error body
//! and the platform recovers without a restart once it is back; `whisk status` reports all of
//! it against the live services. A second test kills the broker (SQLite storage) under load and
//! starts it again: every accepted activation still ends with a record.

mod support;

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::*;
use whisk_test_support::services::Services;

/// Where an instance runs: the folder of its invoker, and its peers.
const WHERE: &str = r#"
import os, time, whisk_peers
def main(args):
    if args.get("instanceID") is not None:
        whisk_peers.wait_for(int(args.get("n", 1)), timeout=30)
        peers = sorted(whisk_peers.peers())
        time.sleep(float(args.get("hold", 0)))
    else:
        peers = []
        time.sleep(float(args.get("sleep", 0)))
    d = os.environ.get("WHISK_PEERS_DIR", "")
    return {"invoker": d.split("/containers/")[0].rsplit("/", 1)[-1], "peers": peers}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn three_invokers_over_kafka_and_couchdb() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let services = Services::up(&dir.join("services"));
    let kafka = services.kafka();
    let couch = services.couchdb();
    let redis = services.redis();
    let dir_port = free_port();
    let api_port = free_port();
    let env = vec![
        (
            "WHISK_INVOKER__USER_MEMORY_MB".to_string(),
            "1024".to_string(),
        ),
        (
            "WHISK_CONTROLLER__INVOKER_OFFLINE_AFTER".to_string(),
            "3000".to_string(),
        ),
        (
            "WHISK_COUCHDB__DB_PREFIX".to_string(),
            "whisk_test_".to_string(),
        ),
    ];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let _directory = spawn_whisk(
        dir,
        "directory",
        &Roles::directory(&format!("127.0.0.1:{dir_port}"), &redis),
        &env,
    );
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    let controller_args =
        roles.controller(&format!("127.0.0.1:{api_port}"), &dir.join("controller"));
    let mut controller = spawn_whisk(dir, "controller", &controller_args, &env);
    let mut invokers: Vec<Proc> = (0..3)
        .map(|i| {
            spawn_whisk(
                dir,
                &format!("invoker{i}"),
                &roles.invoker(
                    i,
                    Some(&format!("127.0.0.1:{dir_port}")),
                    &dir.join(format!("i{i}")),
                ),
                &env,
            )
        })
        .collect();
    let base = format!("http://127.0.0.1:{api_port}");
    // The feed provider of a deployment (the conformance suite's alarm fires through it).
    let _feeds = spawn_whisk(dir, "feeds", &roles.feeds(&base, "feeds0"), &env);
    wait_invokers(&base, 3).await;

    // `whisk status` against the live services: everything up, each invoker with its memory.
    let directory_addr = format!("127.0.0.1:{dir_port}");
    let status_args = [
        "--controller",
        &base,
        "--kafka",
        &kafka,
        "--couchdb",
        &couch,
        "--directory",
        &directory_addr,
        "--redis",
        &redis,
    ];
    let (code, checks) = whisk_status(&status_args, &[]);
    assert_eq!(code, 0, "{checks:#?}");
    for i in 0..3 {
        let inv = &checks[&format!("invoker{i}")];
        assert_eq!(inv["state"], "up", "{checks:#?}");
        assert_eq!(inv["userMemoryMB"], 1024, "{checks:#?}");
    }
    for up in ["controller", "directory", "kafka", "couchdb", "redis"] {
        assert_eq!(checks[up]["state"], "up", "{checks:#?}");
    }

    // The same conformance suite as standalone, through the npm client.
    // No well-known key works on a deployment; the guest key is the operator's, from the store.
    let well_known = Api::new(&base, GUEST_KEY);
    let r = well_known
        .req(reqwest::Method::GET, "actions")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "OpenWhisk's well-known guest key works"
    );
    let guest_key = couch_user_key(&couch, "guest", &env);
    let key_file = dir.join("controller/keys/guest.key");
    if let Ok(text) = std::fs::read_to_string(&key_file) {
        assert_eq!(text.trim(), guest_key, "the controller's key file");
    }
    run_conformance(
        &base,
        &dir.join("c"),
        &[
            ("__OW_API_KEY", &guest_key),
            ("WHISK_ADMIN_COUCHDB", &couch),
            ("WHISK_COUCHDB__DB_PREFIX", "whisk_test_"),
        ],
    )
    .await;

    let api = Api::new(&base, &guest_key);
    // Work spreads: different actions have different home invokers.
    let mut used = BTreeSet::new();
    for i in 0..12 {
        let name = format!("where{i}");
        api.put_python(&name, WHERE, 256).await;
        let (status, body) = api
            .invoke(&name, "blocking=true&result=true", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        used.insert(body["invoker"].as_str().unwrap().to_string());
    }
    assert!(
        used.len() >= 2,
        "12 actions ran on one invoker only: {used:?}"
    );

    // Four instances on different invokers (512 MB each, two fit per invoker) see each other.
    api.put_python("gang4", WHERE, 512).await;
    let (status, body) = api
        .invoke(
            "gang4",
            "blocking=true&result=true&instances=4",
            json!({"n": 4, "hold": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let hosts: BTreeSet<&str> = results
        .iter()
        .map(|r| r["invoker"].as_str().unwrap())
        .collect();
    assert!(hosts.len() >= 2, "the gang ran on one invoker: {body}");
    for r in results {
        assert_eq!(r["peers"], json!(["0", "1", "2", "3"]), "{body}");
    }

    // Kill an invoker mid-load: every accepted activation ends with a result or a whisk error.
    api.put_python("slow", WHERE, 256).await;
    let mut ids = vec![];
    for _ in 0..12 {
        let (status, body) = api
            .invoke("slow", "blocking=false", json!({"sleep": 2}))
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["activationId"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    invokers[1].kill();
    let outcomes = outcomes(&api, &ids).await;
    eprintln!("after killing invoker1: {outcomes:?}");
    tokio::time::sleep(Duration::from_secs(4)).await; // invoker1 is offline now
    for i in 0..6 {
        let (status, body) = api
            .invoke(&format!("where{i}"), "blocking=true&result=true", json!({}))
            .await;
        assert_eq!(status, 200, "new work after the kill: {body}");
        assert_ne!(body["invoker"], "i1", "{body}");
    }

    // A restarted controller still finds every action in CouchDB.
    controller.terminate(Duration::from_secs(30));
    let _controller = spawn_whisk(dir, "controller2", &controller_args, &env);
    wait_invokers(&base, 2).await;
    for i in 0..12 {
        let r = api
            .req(reqwest::Method::GET, &format!("actions/where{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "where{i} after the controller restart"
        );
    }
    let (status, body) = api
        .invoke("where0", "blocking=true&result=true", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // A second controller: what one controller updates or deletes, the other's cache forgets.
    let listen_b = format!("127.0.0.1:{}", free_port());
    let base_b = format!("http://{listen_b}");
    let mut args_b = controller_args.clone();
    let at = args_b.iter().position(|a| a == "--listen").unwrap() + 1;
    args_b[at] = listen_b;
    args_b.extend(s(&["--id", "1"]));
    let _controller_b = spawn_whisk(dir, "controller-b", &args_b, &env);
    wait_invokers(&base_b, 2).await;
    let api_b = Api::new(&base_b, &guest_key);
    let version = |v: u32| format!("def main(args):\n    return {{\"v\": {v}}}\n");
    api.put_python("cached", &version(1), 256).await;
    invoke_until(&api_b, "cached", 200, json!({"v": 1})).await;
    api.put_python("cached", &version(2), 256).await;
    invoke_until(&api_b, "cached", 200, json!({"v": 2})).await;
    let r = api
        .req(reqwest::Method::DELETE, "actions/cached")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    invoke_until(&api_b, "cached", 404, json!(null)).await;

    couchdb_down_and_back(&services, &api, &status_args).await;
    drop(invokers);
}

/// Waits for the record of each of `ids` (at most 120 s each): every one must end with a
/// result or a whisk error. Returns how many ended each way.
async fn outcomes(api: &Api, ids: &[String]) -> BTreeMap<String, usize> {
    let mut outcomes = BTreeMap::new();
    for id in ids {
        let rec = api.record(id, Duration::from_secs(120)).await;
        let status = rec["response"]["status"].as_str().unwrap().to_string();
        assert!(
            status == "success" || status == "whisk internal error",
            "{rec}"
        );
        *outcomes.entry(status).or_insert(0) += 1;
    }
    outcomes
}

/// Invokes `name` through `api` until it answers `status` (and `result`, unless null), for at
/// most 10 s: another controller's cache invalidation arrives over Kafka.
async fn invoke_until(api: &Api, name: &str, status: u16, result: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, body) = api
            .invoke(name, "blocking=true&result=true", json!({}))
            .await;
        if s == status && (result.is_null() || body == result) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: still {s} {body}, expected {status} {result}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills pouchdb-server: requests answer 503 with OpenWhisk's `{error, code}` within a bounded
/// time and `whisk status` says CouchDB is down (invokers still listed up); then starts it
/// again and the same controller and invokers work, nothing restarted.
async fn couchdb_down_and_back(services: &Services, api: &Api, status_args: &[&str]) {
    services.crash("couchdb/pid");

    for (method, path) in [
        (reqwest::Method::GET, "actions"),
        (reqwest::Method::PUT, "actions/during-outage?overwrite=true"),
    ] {
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            api.req(method.clone(), path)
                .json(&json!({"exec": {"kind": "python:3", "code": "x"}}))
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path} hung with CouchDB down"))
        .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 503, "{method} {path} with CouchDB down: {body}");
        assert_eq!(
            body["error"], "The database is not available, try again later.",
            "{body}"
        );
        assert!(body["code"].is_string(), "{body}");
        eprintln!(
            "{method} {path} with CouchDB down: 503 in {:?}",
            started.elapsed()
        );
    }

    let (code, checks) = whisk_status(status_args, &[]);
    assert_ne!(code, 0, "{checks:#?}");
    assert_eq!(checks["couchdb"]["state"], "down", "{checks:#?}");
    assert_eq!(checks["controller"]["state"], "up", "{checks:#?}");
    for i in [0, 2] {
        assert_eq!(checks[&format!("invoker{i}")]["state"], "up", "{checks:#?}");
    }

    services.up_again("CouchDB");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = api
            .req(reqwest::Method::GET, "actions")
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after CouchDB came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = api
        .invoke("where0", "blocking=true&result=true", json!({}))
        .await;
    assert_eq!(status, 200, "invoke after CouchDB came back: {body}");
    let (_, checks) = whisk_status(status_args, &[]);
    assert_eq!(checks["couchdb"]["state"], "up", "{checks:#?}");
}

/// The broker (tansu with SQLite storage) is killed while activations keep arriving, then
/// started again: an invoke during the outage either is accepted or answers 503 with
/// OpenWhisk's `{error, code}`; every accepted activation ends with a record (a result or a
/// whisk error), and new work runs once the broker is back, nothing else restarted.
#[tokio::test(flavor = "multi_thread")]
async fn broker_restarted_under_load_loses_no_accepted_activation() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let services = Services::up_with(&dir.join("services"), &[("WHISK_KAFKA_STORAGE", "sqlite")]);
    let kafka = services.kafka();
    let couch = services.couchdb();
    let api_port = free_port();
    let env = vec![(
        "WHISK_COUCHDB__DB_PREFIX".to_string(),
        "whisk_restart_".to_string(),
    )];
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    let controller_args =
        roles.controller(&format!("127.0.0.1:{api_port}"), &dir.join("controller"));
    let _controller = spawn_whisk(dir, "controller", &controller_args, &env);
    let invoker_args = roles.invoker(0, None, &dir.join("i0"));
    let _invoker = spawn_whisk(dir, "invoker0", &invoker_args, &env);
    let base = format!("http://127.0.0.1:{api_port}");
    wait_invokers(&base, 1).await;
    let api = Api::new(&base, &couch_user_key(&couch, "guest", &env));
    api.put_python("busy", WHERE, 128).await;
    let (status, body) = api
        .invoke("busy", "blocking=true&result=true", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");

    // Four clients invoke without pause while the broker is killed and started again.
    let stop = tokio_util::sync::CancellationToken::new();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (api, stop) = (api.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut accepted, mut refused) = (vec![], 0);
                while !stop.is_cancelled() {
                    let (status, body) = api
                        .invoke("busy", "blocking=false", json!({"sleep": 0.05}))
                        .await;
                    match status {
                        202 => accepted.push(body["activationId"].as_str().unwrap().to_string()),
                        // Refused with OpenWhisk's error body: the bus is down (503), or the
                        // namespace's activations in flight pile up meanwhile (429).
                        429 | 503 => {
                            assert!(
                                body["error"].is_string() && body["code"].is_string(),
                                "{body}"
                            );
                            refused += 1;
                        }
                        _ => panic!("invoke during the broker restart: {status} {body}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = services.crash("kafka/tansu.pid");
    tokio::time::sleep(Duration::from_secs(3)).await;
    services.up_again("the broker");
    let restarted = std::fs::read_to_string(services.dir.join("kafka/tansu.pid")).unwrap();
    assert_ne!(
        restarted.trim(),
        pid.to_string(),
        "the broker was not started again"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.cancel();
    let (mut accepted, mut refused) = (vec![], 0);
    for c in clients {
        let (a, r) = c.await.unwrap();
        accepted.extend(a);
        refused += r;
    }
    assert!(!accepted.is_empty());

    let outcomes = outcomes(&api, &accepted).await;
    eprintln!(
        "broker restart under load: {} accepted ({outcomes:?}), {refused} refused with 503",
        accepted.len()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = api
            .invoke("busy", "blocking=true&result=true", json!({}))
            .await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no blocking invoke succeeded after the broker came back: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
