//! Intra-container concurrency through the invoker's runner and pool, with the real process
//! runtime and the real `whisk-proxy`: a Node.js action with `limits.concurrency` N runs up to
//! N activations at once in one container (its first activation initializes it, the others wait
//! for that); more activations wait for a free slot; a Python action, whatever its limit, runs
//! one activation per container at a time; a container whose `/init` fails fails every
//! activation that waited for it, without hanging; each log line lands in exactly one record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use whisk_core::{Action, ActivationResponse, StatusCode};
use whisk_invoker::actions::{self, Actions};
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::peers::Peers;
use whisk_invoker::pool::ContainerPool;
use whisk_invoker::proxy::ProxyClient;
use whisk_invoker::run::Runner;
use whisk_invoker::{ContainerFactory, InvokerConfig, ProcessFactory};
use whisk_proto::ActivationMessage;
use whisk_test_support::bins::target_binary;
use whisk_test_support::node::require_node;

/// A runner over a pool of `memory_mb` (one 256 MB container fits when it is 256), no stems.
fn runner(memory_mb: u64, data: &std::path::Path) -> Runner {
    let proxy = target_binary("whisk-runtime", "whisk-proxy");
    let mut process = ProcessConfig::default();
    let sandboxed =
        ProcessFactory::with_config(vec![proxy.display().to_string()], vec![], &process)
            .sandboxed();
    // This test is about concurrency, not the sandbox (tests/sandbox.rs is): without one, it
    // runs the actions unsandboxed.
    process.single_tenant = !sandboxed;
    let factory: Arc<dyn ContainerFactory> = Arc::new(ProcessFactory::with_config(
        vec![proxy.display().to_string()],
        vec![],
        &process,
    ));
    let cfg = InvokerConfig {
        user_memory_mb: memory_mb,
        stem_cells: vec![],
        ..InvokerConfig::default()
    };
    let pool = ContainerPool::new(factory, &cfg, data.join("containers"));
    let registry = whisk_directory::Registry::in_memory(Default::default());
    Runner {
        pool,
        client: ProxyClient::new(),
        api_host: "http://127.0.0.1:9".into(),
        peers: Peers::new(Arc::new(registry), 0, data.join("addrMap")),
        actions: Arc::new(Actions::new(
            Arc::new(whisk_store::EmbeddedStore::temporary().unwrap()),
            actions::DEFAULT_MAX_BYTES,
        )),
        live: Arc::new(whisk_invoker::live::LiveTaps::new(
            Arc::new(whisk_bus::InProcessBus::new()),
            0,
            std::time::Duration::from_millis(100),
        )),
    }
}

fn action(name: &str, kind: &str, code: &str, concurrency: u64) -> Action {
    let put = json!({"exec": {"kind": kind, "code": code}, "limits": {"concurrency": 1}});
    let put = whisk_core::entity::ActionPut::from_json(put.to_string().as_bytes()).unwrap();
    let fqn = whisk_core::names::FullyQualifiedName::parse(name, "guest").unwrap();
    let mut a = put.apply(&fqn, None, 0).unwrap();
    // Set after validation: the runner must hold to the kind whatever the document says.
    a.limits.concurrency = concurrency;
    a
}

/// Stores `action` where the runner reads it; its revision.
async fn stored(r: &Runner, action: &Action) -> String {
    let store = r.actions.store();
    let key = format!("guest/{}", action.name);
    let kind = whisk_store::EntityKind::Action;
    let rev = store.get_entity(kind, &key).await.unwrap().map(|d| d.rev);
    let doc = serde_json::to_value(action).unwrap();
    store
        .put_entity(kind, &key, &doc, rev.as_deref())
        .await
        .unwrap()
}

fn message(action: &Action, revision: &str, params: Value) -> ActivationMessage {
    ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: whisk_core::ActivationId::generate().as_str().to_string(),
        subject: "guest".into(),
        namespace: "guest".into(),
        api_key: "k".into(),
        action_path: format!("guest/{}", action.name),
        action_version: action.version.clone(),
        action_revision: revision.to_string(),
        blocking: true,
        content: serde_json::to_vec(&params).unwrap(),
        accepted_at_ms: whisk_core::now_ms(),
        ..Default::default()
    }
}

/// Runs `n` activations of `action` at once; their responses and logs, and how long all took.
async fn run_all(
    r: &Runner,
    action: &Action,
    n: usize,
) -> (Vec<(ActivationResponse, Vec<String>)>, Duration) {
    let revision = stored(r, action).await;
    let started = Instant::now();
    let runs = (0..n).map(|i| {
        let msg = message(action, &revision, json!({"n": i}));
        async move {
            let out = r.run(&msg).await;
            (out.activation.response, out.activation.logs)
        }
    });
    let results = futures::future::join_all(runs).await;
    (results, started.elapsed())
}

const NODE_SLEEP: &str = r#"
const PROCESS = Math.random().toString(36).slice(2);
async function main(p) {
  await new Promise((resolve) => setTimeout(resolve, 600));
  console.log("ran " + p.n);
  return {n: p.n, pid: PROCESS};
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn node_activations_share_one_container_up_to_the_limit() {
    require_node();
    let data = whisk_test_support::temp_dir();
    // Room for one container only: without sharing, 6 activations take 6 x 600 ms.
    let r = runner(256, data.path());
    let a = action("shared", "nodejs:20", NODE_SLEEP, 3);
    let (results, elapsed) = run_all(&r, &a, 6).await;
    // Two rounds of three (plus one cold start), not six rounds.
    assert!(elapsed < Duration::from_millis(2600), "{elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(1200),
        "at most 3 at once: {elapsed:?}"
    );
    let mut pids = std::collections::BTreeSet::new();
    let mut lines = vec![];
    for (i, (response, logs)) in results.iter().enumerate() {
        assert_eq!(response.status_code, StatusCode::Success, "{response:?}");
        let result = response.result.as_ref().unwrap();
        assert_eq!(result["n"], json!(i));
        pids.insert(result["pid"].as_str().unwrap().to_string());
        lines.extend(logs.iter().cloned());
    }
    assert_eq!(pids.len(), 1, "one container: {pids:?}");
    // Every line in exactly one record (not necessarily its own activation's).
    for i in 0..6 {
        let found = lines
            .iter()
            .filter(|l| l.ends_with(&format!("ran {i}")))
            .count();
        assert_eq!(found, 1, "ran {i} in {lines:#?}");
    }
    assert_eq!(r.pool.containers(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_at_a_time_without_concurrency() {
    require_node();
    let data = whisk_test_support::temp_dir();
    let r = runner(256, data.path());
    let a = action("single", "nodejs:20", NODE_SLEEP, 1);
    let (results, elapsed) = run_all(&r, &a, 3).await;
    assert!(elapsed >= Duration::from_millis(1800), "{elapsed:?}");
    assert!(results
        .iter()
        .all(|(r, _)| r.status_code == StatusCode::Success));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_runs_one_activation_per_container_whatever_its_limit() {
    let data = whisk_test_support::temp_dir();
    // Room for three containers: the three activations get one each, at the same time.
    let r = runner(768, data.path());
    let code = "import time, uuid\nPROCESS = uuid.uuid4().hex\n\
        def main(p):\n    time.sleep(0.5)\n    return {'pid': PROCESS}\n";
    let a = action("py", "python:3", code, 5);
    let (results, _) = run_all(&r, &a, 3).await;
    let pids: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(r, _)| {
            assert_eq!(r.status_code, StatusCode::Success, "{r:?}");
            r.result.as_ref().unwrap()["pid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pids.len(), 3, "one activation per Python process: {pids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_container_that_fails_init_fails_its_waiters() {
    require_node();
    let data = whisk_test_support::temp_dir();
    let r = runner(256, data.path());
    let a = action("broken", "nodejs:20", "function main( {", 4);
    let run = run_all(&r, &a, 4);
    let (results, _) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("no activation hangs on a container that failed to initialize");
    for (response, _) in &results {
        assert_eq!(
            response.status_code,
            StatusCode::DeveloperError,
            "{response:?}"
        );
    }
    // The platform keeps serving: a good action runs in the memory the broken one gave back.
    let good = action("good", "nodejs:20", NODE_SLEEP, 2);
    let (results, _) = run_all(&r, &good, 2).await;
    assert!(results
        .iter()
        .all(|(r, _)| r.status_code == StatusCode::Success));
}
