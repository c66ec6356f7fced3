//! Shared by the container tests (the Docker runtime, the sandboxed process runtime): a spec
//! whose container gets the proxy's secret, and the proxy's `/init` and `/run` called with it
//! as the invoker calls them.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{json, Value};
use whisk_invoker::container::SECRET_ENV;
use whisk_invoker::proxy::ProxyClient;
use whisk_invoker::{Container, ContainerSpec};

/// The proxy's secret every test container gets (as the pool gives each its own).
pub const SECRET: &str = "test-secret-0123456789";

/// A Python container of `memory_mb` named `<prefix>_<pid>_<n>`, with the proxy's secret and
/// `WHISK_TEST=given` in its environment.
pub fn spec(prefix: &str, memory_mb: u64) -> ContainerSpec {
    static N: AtomicU32 = AtomicU32::new(0);
    ContainerSpec {
        name: format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        family: "python".into(),
        image: None,
        memory_mb,
        env: vec![
            ("WHISK_TEST".into(), "given".into()),
            (SECRET_ENV.into(), SECRET.into()),
        ],
        peers_dir: None,
    }
}

/// POSTs `body` to the container's proxy at `path`; its status and JSON answer (null when the
/// answer is not JSON).
pub async fn call(c: &dyn Container, path: &str, body: Value) -> (u16, Value) {
    let r = ProxyClient::new()
        .call(
            c.addr(),
            SECRET,
            path,
            serde_json::to_vec(&body).unwrap(),
            Duration::from_secs(60),
            1 << 20,
        )
        .await
        .expect("the proxy answers");
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, v)
}

/// `/init` with Python source whose entry point is `main`; it must succeed.
pub async fn init(c: &dyn Container, code: &str) {
    let (status, v) = call(
        c,
        "/init",
        json!({"value": {"name": "t", "main": "main", "code": code, "binary": false}}),
    )
    .await;
    assert_eq!(status, 200, "/init: {v}");
}

/// `/run` with `args`.
pub async fn run(c: &dyn Container, args: Value) -> (u16, Value) {
    call(c, "/run", json!({"value": args})).await
}

/// The container's logs (2 s at most) must carry the out-of-memory line for `memory_mb`.
pub async fn assert_memory_exceeded_logged(c: &dyn Container, memory_mb: u64) {
    let logs = c.logs(1 << 20, Duration::from_secs(2)).await;
    let line = format!("The action exceeded its memory limit of {memory_mb} MB");
    assert!(logs.iter().any(|l| l.contains(&line)), "{logs:?}");
}

/// Stores the Python action `guest/<name>` (`code`, `memory_mb`) as the controller would;
/// it and its store revision, for activation messages that name it.
pub async fn store_python_action(
    store: &dyn whisk_store::Store,
    name: &str,
    code: &str,
    memory_mb: u64,
) -> (whisk_core::Action, String) {
    let put = json!({"exec": {"kind": "python:3", "code": code}, "limits": {"memory": memory_mb}});
    let put = whisk_core::entity::ActionPut::from_json(put.to_string().as_bytes()).unwrap();
    let fqn = whisk_core::names::FullyQualifiedName::parse(name, "guest").unwrap();
    let action = put.apply(&fqn, None, 0).unwrap();
    let doc = serde_json::to_value(&action).unwrap();
    let rev = store
        .put_entity(
            whisk_store::EntityKind::Action,
            &format!("guest/{name}"),
            &doc,
            None,
        )
        .await
        .unwrap();
    (action, rev)
}
