//! End-to-end conformance: the real `whisk standalone` binary, driven by OpenWhisk's own
//! JavaScript client (`tests/conformance`, `node --test`), plus a restart test (SIGTERM keeps
//! actions and activations, and leaves no action process behind).
//!
//! Needs `node` (>= 18) and `npm` on PATH; their absence fails the test with a clear message.
//! `CONFORMANCE_TEST_PATTERN` narrows the Node tests (`node --test-name-pattern`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

mod support;
use support::*;

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The Node.js suite in `tests/conformance`, through the `openwhisk` npm client.
#[tokio::test(flavor = "multi_thread")]
async fn openwhisk_client_conformance() {
    let data = whisk_test_support::temp_dir();
    let logs = whisk_test_support::temp_dir();
    let server = Server::start(data.path(), logs.path()).await;
    run_conformance(
        &format!("http://127.0.0.1:{}", server.port),
        &server.data_dir,
        &[],
    )
    .await;

    // `whisk status` against standalone: its invoker up, the backends embedded, exit 0.
    let data_dir = server.data_dir.display().to_string();
    let (code, services) = whisk_status(
        &["--controller", &server.url("")],
        &[("WHISK_DATA_DIR", &data_dir)],
    );
    assert_eq!(code, 0, "{services:?}");
    assert_eq!(services["controller"]["state"], "up", "{services:?}");
    assert_eq!(services["invoker0"]["state"], "up", "{services:?}");
    assert!(
        services["invoker0"]["freeMemoryMB"].is_u64(),
        "{services:?}"
    );
    for embedded in ["directory", "kafka", "couchdb"] {
        assert_eq!(services[embedded]["state"], "embedded", "{services:?}");
    }
    assert_eq!(
        services["couchdb"]["address"],
        format!("{data_dir}/whisk.redb")
    );
}

const PY_HELLO: &str =
    "def main(args):\n    return {\"greeting\": \"hello \" + args.get(\"name\", \"stranger\")}\n";

/// SIGTERM ends the server and every action process it started; a restart on the same data
/// directory still has the action and its activation.
#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_actions_and_activations() {
    let data = whisk_test_support::temp_dir();
    let logs = whisk_test_support::temp_dir();
    let mut first = Server::start(data.path(), logs.path()).await;
    let api = Api::new(&first.url(""), GUEST_KEY);
    let resp = api
        .req(Method::PUT, "actions/survivor?overwrite=false")
        .json(&json!({"exec": {"kind": "python:3", "code": PY_HELLO}, "parameters": [{"key": "name", "value": "disk"}]}))
        .send()
        .await
        .expect("PUT action");
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "PUT action: {body}");

    let resp = api
        .req(Method::POST, "actions/survivor?blocking=true")
        .json(&json!({}))
        .send()
        .await
        .expect("POST invoke");
    let status = resp.status();
    let record: Value = resp.json().await.expect("invoke answers JSON");
    assert_eq!(status, 200, "blocking invoke: {record}");
    assert_eq!(
        record["response"]["result"],
        json!({"greeting": "hello disk"}),
        "{record}"
    );
    let activation_id = record["activationId"]
        .as_str()
        .expect("activationId")
        .to_string();

    // The action process(es) the server started, identified by pid and start time.
    let before = descendants(first.pid());
    assert!(
        !before.is_empty(),
        "after a blocking invoke the server (pid {}) has no child processes; expected the action's process",
        first.pid()
    );

    let exit = first.terminate();
    assert!(
        exit.success(),
        "whisk standalone exited with {exit} after SIGTERM; output:\n{}",
        first.log_tail()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = alive(&before);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = alive(&before);
    }
    if !left.is_empty() {
        for (pid, _) in &left {
            whisk_test_support::signal(*pid, whisk_test_support::process::SIGKILL);
        }
        panic!("SIGTERM left processes of the stopped server running (now killed): {left:?}");
    }
    drop(first);

    let second = Server::start(data.path(), logs.path()).await;
    let api = Api::new(&second.url(""), GUEST_KEY);
    let resp = api
        .req(Method::GET, "actions/survivor")
        .send()
        .await
        .expect("GET action");
    let status = resp.status();
    let action: Value = resp.json().await.expect("GET action answers JSON");
    assert_eq!(status, 200, "action after restart: {action}");
    assert_eq!(action["exec"]["code"], json!(PY_HELLO), "{action}");
    assert_eq!(action["version"], json!("0.0.1"), "{action}");

    let resp = api
        .req(Method::GET, &format!("activations/{activation_id}"))
        .send()
        .await
        .expect("GET activation");
    let status = resp.status();
    let stored: Value = resp.json().await.expect("GET activation answers JSON");
    assert_eq!(status, 200, "activation after restart: {stored}");
    assert_eq!(stored["activationId"], json!(activation_id));
    assert_eq!(
        stored["response"]["result"],
        json!({"greeting": "hello disk"}),
        "{stored}"
    );

    let resp = api
        .req(Method::GET, "activations?name=survivor")
        .send()
        .await
        .expect("GET activations");
    let list: Value = resp.json().await.expect("list answers JSON");
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|a| a["activationId"] == json!(activation_id))),
        "activation list after restart lacks {activation_id}: {list}"
    );

    // And the restarted server runs the action again.
    let resp = api
        .req(Method::POST, "actions/survivor?blocking=true&result=true")
        .json(&json!({"name": "again"}))
        .send()
        .await
        .expect("POST invoke after restart");
    let status = resp.status();
    let result: Value = resp.json().await.expect("invoke answers JSON");
    assert_eq!(status, 200, "invoke after restart: {result}");
    assert_eq!(result, json!({"greeting": "hello again"}));
}

// ---------------------------------------------------------------------------------------------
// /proc helpers
// ---------------------------------------------------------------------------------------------

/// Every descendant of `pid` (children of all its threads, recursively): pid → start time.
fn descendants(pid: u32) -> BTreeMap<u32, u64> {
    let mut found = BTreeMap::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if let Some(start) = start_time(child) {
                    if found.insert(child, start).is_none() {
                        queue.push(child);
                    }
                }
            }
        }
    }
    found
}

/// Field 22 of /proc/PID/stat (start time in clock ticks), unless the process is gone or a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The processes of `procs` still running (same pid and same start time), with their command lines.
fn alive(procs: &BTreeMap<u32, u64>) -> Vec<(u32, String)> {
    procs
        .iter()
        .filter(|(pid, start)| start_time(**pid) == Some(**start))
        .map(|(pid, _)| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (
                *pid,
                String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}
