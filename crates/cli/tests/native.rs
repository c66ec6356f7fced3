//! Native actions end to end, in the process runtime and in Docker, with the real `whisk
//! standalone`: the runtimes manifest of `GET /` lists the `native` family (from the table of
//! runtime kinds), an action of kind `native:default` is stored as `native`, a shell script runs
//! with its parameters and the platform's `__OW_*` variables (its earlier lines are the
//! activation's logs), and an executable past `limits.memory` ends with OpenWhisk's memory
//! error, which the invoker learns from the container (not from its logs).

mod support;

use serde_json::json;
use support::*;

const SCRIPT: &str = r#"#!/bin/sh
echo "native says hello"
echo "{\"args\": $1, \"action\": \"$__OW_ACTION_NAME\", \"namespace\": \"$__OW_NAMESPACE\"}"
"#;

const HOG: &str = "#!/usr/bin/python3\nb = b'x' * (400 * 1024 * 1024)\nprint('{}')\n";

async fn native(runtime: &str) {
    let tmp = whisk_test_support::temp_dir();
    let mut extra = vec![];
    if runtime == "docker" {
        ensure_action_images();
        extra.extend(["--runtime", "docker"]);
    }
    let mut server = Server::start_with(&tmp.path().join("data"), tmp.path(), &extra).await;
    let root: serde_json::Value = reqwest::get(server.url("/"))
        .await
        .expect("GET /")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        root["runtimes"]["native"],
        json!([{"kind": "native", "image": "whisk/nativeaction", "default": true,
                "deprecated": false, "attached": false, "requireMain": false,
                "concurrent": false}]),
        "{root}"
    );

    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_action(
        "hello",
        json!({"kind": "native:default", "code": SCRIPT}),
        128,
    )
    .await;
    let stored: serde_json::Value = api
        .req(reqwest::Method::GET, "actions/hello")
        .send()
        .await
        .expect("GET action")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stored["exec"]["kind"], "native", "{stored}");

    let id = api.start("hello", json!({"name": "bob"})).await;
    let record = api.record(&id, std::time::Duration::from_secs(90)).await;
    assert_eq!(
        record["response"]["result"],
        json!({"args": {"name": "bob"}, "action": "/guest/hello", "namespace": "guest"}),
        "{runtime}: {record}"
    );
    let logs: Vec<&str> = record["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        logs.iter()
            .any(|l| l.ends_with(" stdout: native says hello")),
        "{logs:?}"
    );
    assert_eq!(
        record["annotations"][2],
        json!({"key": "kind", "value": "native"})
    );

    api.put_action("hog", json!({"kind": "native", "code": HOG}), 128)
        .await;
    let (status, body) = api
        .invoke("hog", "blocking=true&result=true", json!({}))
        .await;
    assert_eq!(status, 502, "{runtime}: {body}");
    assert_eq!(
        body["error"], "The action exhausted its memory and was aborted.",
        "{runtime}: {body}"
    );
    // The platform goes on.
    let (status, body) = api
        .invoke("hello", "blocking=true&result=true", json!({"n": 1}))
        .await;
    assert_eq!((status, &body["args"]), (200, &json!({"n": 1})), "{body}");
    server.terminate();
}

#[tokio::test]
async fn native_actions_in_the_process_runtime() {
    native("process").await;
}

#[tokio::test]
async fn native_actions_in_docker() {
    native("docker").await;
}
