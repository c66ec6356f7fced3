//! Back-pressure of a real invoker (the process runtime, the real `whisk-proxy`, the in-process
//! bus, an embedded store): given more activations than its memory holds, it never has more in
//! flight than its budget (sampled while they run, and from the records' own start and end),
//! leaves the rest on its topic meanwhile, and still runs them all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, InProcessBus};
use whisk_core::{Action, ActivationId, StatusCode};
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::{ContainerFactory, Invoker, InvokerConfig, ProcessFactory};
use whisk_proto::{ActivationMessage, Message};
use whisk_store::{EmbeddedStore, EntityKind, Store};
use whisk_test_support::bins::target_binary;

const SLEEPY: &str = "import time\ndef main(a):\n    time.sleep(0.4)\n    return a\n";

fn factory() -> Arc<dyn ContainerFactory> {
    let proxy = target_binary("whisk-runtime", "whisk-proxy");
    let mut process = ProcessConfig::default();
    let sandboxed =
        ProcessFactory::with_config(vec![proxy.display().to_string()], vec![], &process)
            .sandboxed();
    // About the budget, not the sandbox (tests/sandbox.rs is): unsandboxed where it cannot be.
    process.single_tenant = !sandboxed;
    Arc::new(ProcessFactory::with_config(
        vec![proxy.display().to_string()],
        vec![],
        &process,
    ))
}

/// The action `guest/sleepy` (256 MB), stored; its revision.
async fn store_action(store: &dyn Store) -> (Action, String) {
    let put = json!({"exec": {"kind": "python:3", "code": SLEEPY}, "limits": {"memory": 256}});
    let put = whisk_core::entity::ActionPut::from_json(put.to_string().as_bytes()).unwrap();
    let fqn = whisk_core::names::FullyQualifiedName::parse("sleepy", "guest").unwrap();
    let action = put.apply(&fqn, None, 0).unwrap();
    let doc = serde_json::to_value(&action).unwrap();
    let rev = store
        .put_entity(EntityKind::Action, "guest/sleepy", &doc, None)
        .await
        .unwrap();
    (action, rev)
}

fn message(action: &Action, rev: &str, n: usize) -> ActivationMessage {
    ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: ActivationId::generate().as_str().to_string(),
        subject: "guest".into(),
        namespace: "guest".into(),
        api_key: "k".into(),
        action_path: "guest/sleepy".into(),
        action_version: action.version.clone(),
        action_revision: rev.to_string(),
        memory_mb: 256,
        content: serde_json::to_vec(&json!({ "n": n })).unwrap(),
        accepted_at_ms: whisk_core::now_ms(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn more_activations_than_memory_run_within_the_budget_and_all_complete() {
    let data = whisk_test_support::temp_dir();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().unwrap());
    let bus = Arc::new(InProcessBus::new());
    let registry = whisk_directory::Registry::in_memory(Default::default());
    let shutdown = CancellationToken::new();
    // Room for two 256 MB activations at once.
    let cfg = InvokerConfig {
        user_memory_mb: 512,
        stem_cells: vec![],
        data_dir: Some(data.path().join("invoker")),
        ..InvokerConfig::default()
    };
    let (action, rev) = store_action(store.as_ref()).await;
    let invoker = Invoker::start(
        cfg,
        factory(),
        store.clone(),
        bus.clone(),
        Arc::new(registry),
        shutdown.clone(),
    )
    .await
    .expect("the invoker starts");

    const N: usize = 8;
    let messages: Vec<ActivationMessage> = (0..N).map(|n| message(&action, &rev, n)).collect();
    let ids: Vec<ActivationId> = messages
        .iter()
        .map(|m| ActivationId::parse(&m.activation_id).unwrap())
        .collect();
    for msg in &messages {
        let payload = Bytes::from(msg.encode_to_vec());
        bus.publish(&whisk_proto::invoker_topic(0), payload)
            .await
            .unwrap();
    }

    // While they run: never more than two in flight, and the rest not taken off the topic.
    let budget = invoker.budget().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most = 0;
    while invoker.handled.load(std::sync::atomic::Ordering::Relaxed) < N as u64 {
        assert!(Instant::now() < deadline, "not every activation ran");
        let now = budget.in_flight();
        most = most.max(now);
        assert!(now <= 2, "{now} activations in flight on a budget of two");
        assert!(budget.held_mb() <= 512, "{} MB held", budget.held_mb());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(most, 2, "two ran at once");
    assert_eq!(budget.peak_in_flight(), 2);
    assert!(budget.waits() >= 1, "the consumer waited for room");

    // Every activation has its record; at no instant did more than two run.
    let mut spans = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let mut record = None;
        for _ in 0..200 {
            record = store.get_activation("guest", id).await.unwrap();
            if record.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let record = record.unwrap_or_else(|| panic!("no record of activation {n}"));
        assert_eq!(
            record.response.status_code,
            StatusCode::Success,
            "{:?}",
            record.response
        );
        assert_eq!(record.response.result.as_ref().unwrap()["n"], json!(n));
        spans.push((record.start, record.end));
    }
    let overlap = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap();
    assert!(overlap <= 2, "{overlap} ran at once: {spans:?}");
    assert_eq!(budget.in_flight(), 0);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), invoker.join())
        .await
        .expect("the invoker drains");
}
