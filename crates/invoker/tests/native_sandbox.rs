//! Native actions (kind `native`: the action is an executable) on the process runtime: the
//! real [`ProcessFactory`] runs the real `whisk-proxy` with `--family native` under bubblewrap
//! and cgroups, and the action's executable runs inside that sandbox. A shell script and a
//! compiled binary run with their parameters and `__OW_*` variables, their logs are collected
//! up to the sentinel, and an out-of-memory kill is reported by `Container::oom_killed`.
//! Needs a host that can sandbox (as `sandbox.rs`); elsewhere it FAILS.

mod common;
mod native;

use common::{assert_memory_exceeded_logged, call, init, run};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::{Container, ContainerFactory, ProcessFactory};
use whisk_test_support::bins::target_binary;

fn factory() -> ProcessFactory {
    let proxy = target_binary("whisk-runtime", "whisk-proxy");
    let f = ProcessFactory::with_config(
        vec![proxy.display().to_string()],
        vec![],
        &ProcessConfig::default(),
    );
    assert!(
        f.sandboxed(),
        "this host cannot sandbox actions (bubblewrap missing, no user namespaces or no writable cgroups); install bubblewrap"
    );
    f
}

/// A native container of 128 MB.
async fn create(f: &ProcessFactory) -> Arc<dyn Container> {
    f.create(native::spec("whisk_native", 128))
        .await
        .expect("the native proxy starts")
}

#[tokio::test]
async fn a_shell_script_runs_in_the_sandbox() {
    let f = factory();
    let c = create(&f).await;
    init(
        c.as_ref(),
        r#"#!/bin/sh
echo "hello from $__OW_ACTIVATION_ID"
echo "uid $(grep '^Uid:' /proc/self/status | cut -f2)" >&2
echo "{\"args\": $1, \"test\": \"$WHISK_TEST\", \"secret\": \"$WHISK_PROXY_SECRET\"}"
"#,
    )
    .await;
    let (status, v) = call(
        c.as_ref(),
        "/run",
        json!({"value": {"n": 1}, "activation_id": "a1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"args": {"n": 1}, "test": "given", "secret": ""}),
        "parameters in argv[1], the container's environment but not its secret"
    );
    let logs = c.logs(1 << 20, Duration::from_secs(2)).await;
    assert!(
        logs.iter().any(|l| l.ends_with(" stdout: hello from a1")),
        "{logs:?}"
    );
    let uid = logs
        .iter()
        .find(|l| l.contains(" stderr: uid "))
        .expect("uid logged");
    assert!(!uid.ends_with("uid 0"), "never root: {uid}");
    assert!(
        !logs.iter().any(|l| l.contains("\"args\"")),
        "the result is not a log: {logs:?}"
    );
    c.destroy().await;
}

#[tokio::test]
async fn a_compiled_binary_runs_in_the_sandbox() {
    let f = factory();
    let c = create(&f).await;
    native::init_echo(c.as_ref()).await;
    let args = json!({"list": [1, 2, 3], "s": "x y"});
    assert_eq!(run(c.as_ref(), args.clone()).await, (200, args));
    c.destroy().await;
}

#[tokio::test]
async fn an_executable_past_its_memory_is_an_oom_kill() {
    let f = factory();
    let c = create(&f).await;
    init(
        c.as_ref(),
        "#!/usr/bin/python3\nblocks = [bytearray(16 << 20) for _ in range(64)]\nprint('{}')\n",
    )
    .await;
    assert!(!c.oom_killed().await, "nothing killed yet");
    let (status, v) = run(c.as_ref(), json!({})).await;
    assert_eq!(status, 502, "1 GB in a 128 MB container: {v}");
    assert_eq!(
        v["error"],
        "The action did not produce a valid response and exited unexpectedly."
    );
    assert!(c.oom_killed().await, "the cgroup counted the kill");
    assert_memory_exceeded_logged(c.as_ref(), 128).await;
    c.destroy().await;
}
