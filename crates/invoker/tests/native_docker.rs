//! Native actions (kind `native`: the action is an executable) on the Docker runtime, against
//! a real daemon: the family's default image, `whisk/nativeaction` (built by
//! `deploy/images/build-actions.sh`), runs a shell script and a compiled binary under the
//! runtime's hardening (read-only root, tmpfs `/action`, uid 1000), and an
//! out-of-memory kill is reported by `Container::oom_killed`. Without a daemon it FAILS.

mod common;
mod native;

use common::{call, init, run};
use serde_json::json;
use std::time::{Duration, Instant};
use whisk_invoker::docker::{DockerConfig, DockerFactory};
use whisk_invoker::ContainerFactory;
use whisk_test_support::docker::{ensure_action_images, exists};

const IMAGE: &str = "whisk/nativeaction";

/// A factory on a network of its own (one for every namespace; one per test, as two
/// factories creating one network at once could make two of that name), with the images
/// checked.
fn factory(prefix: &str) -> DockerFactory {
    ensure_action_images();
    assert!(
        exists("image", IMAGE),
        "{IMAGE} is missing after deploy/images/build-actions.sh"
    );
    assert_eq!(
        DockerConfig::default()
            .images
            .get("native")
            .map(String::as_str),
        Some(IMAGE),
        "the native family's image comes from the table of kinds"
    );
    DockerFactory::new(DockerConfig {
        network: format!("whisk_test_native_{prefix}"),
        network_per_namespace: false,
        prefix: format!("whisk_test_native_{}_{prefix}", std::process::id()),
        ..DockerConfig::default()
    })
}

#[tokio::test]
async fn native_actions_run_in_the_native_image() {
    let f = factory("run");
    let script = f
        .create(native::spec("whisk_test_native", 128))
        .await
        .expect("container starts");
    let echo = f
        .create(native::spec("whisk_test_native", 128))
        .await
        .expect("container starts");

    init(
        script.as_ref(),
        r#"#!/bin/sh
echo "hello from $__OW_ACTIVATION_ID in $(pwd)"
echo "{\"args\": $1, \"test\": \"$WHISK_TEST\", \"uid\": \"$(grep '^Uid:' /proc/self/status | cut -f2)\"}"
"#,
    )
    .await;
    let (status, v) = call(
        script.as_ref(),
        "/run",
        json!({"value": {"n": 1}, "activation_id": "a1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"args": {"n": 1}, "test": "given", "uid": "1000"}));
    let logs = script.logs(1 << 20, Duration::from_secs(2)).await;
    assert!(
        logs.iter()
            .any(|l| l.ends_with(" stdout: hello from a1 in /action/action")),
        "{logs:?}"
    );

    // A compiled binary of the host (its libc is the image's).
    native::init_echo(echo.as_ref()).await;
    let args = json!({"list": [1, 2, 3]});
    assert_eq!(run(echo.as_ref(), args.clone()).await, (200, args));

    for c in [script, echo] {
        c.destroy().await;
    }
}

#[tokio::test]
async fn an_executable_past_its_memory_is_an_oom_kill() {
    let f = factory("oom");
    let c = f
        .create(native::spec("whisk_test_native", 128))
        .await
        .expect("container starts");
    init(
        c.as_ref(),
        "#!/usr/bin/python3\nb = b'x' * (300 * 1024 * 1024)\nprint('{}')\n",
    )
    .await;
    assert!(!c.oom_killed().await, "nothing killed yet");
    let (status, v) = run(c.as_ref(), json!({})).await;
    assert_eq!(status, 502, "300 MB must not fit in 128 MB: {v}");
    // The daemon's `oom` event may trail the proxy's answer (the invoker waits as long).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.oom_killed().await {
        assert!(Instant::now() < deadline, "no OOM kill reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.destroy().await;
}
