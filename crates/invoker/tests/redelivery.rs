//! A real invoker (the process runtime, the real `whisk-proxy`, an embedded store) on the durable
//! in-process bus, across a crash: the activations accepted (published) before the crash and
//! never taken by the invoker run once after the restart; the one the killed invoker had
//! started (its journal says so) is not run again and gets the interrupted record; a stale one
//! the controller has recorded as lost meanwhile is not run either; after a further restart
//! nothing runs again (their offsets were committed).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, DurableBus};
use whisk_core::{Action, ActivationId, StatusCode};
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::journal::{Journal, INTERRUPTED};
use whisk_invoker::{ContainerFactory, Invoker, InvokerConfig, ProcessFactory};
use whisk_proto::{ActivationMessage, Message};
use whisk_store::{EmbeddedStore, Store};
use whisk_test_support::bins::target_binary;

/// Appends its activation id to the file `file`.
const COUNT: &str = r#"
import os
def main(a):
    with open(a["file"], "a") as f:
        f.write(os.environ.get("__OW_ACTIVATION_ID", "?") + "\n")
    return {"ok": True}
"#;

fn factory() -> Arc<dyn ContainerFactory> {
    let proxy = target_binary("whisk-runtime", "whisk-proxy");
    // The action writes a file of the test's: no sandbox.
    let process = ProcessConfig {
        single_tenant: true,
        ..ProcessConfig::default()
    };
    Arc::new(ProcessFactory::with_config(
        vec![proxy.display().to_string()],
        vec![],
        &process,
    ))
}

fn message(action: &Action, rev: &str, file: &std::path::Path) -> ActivationMessage {
    ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: ActivationId::generate().as_str().to_string(),
        subject: "guest".into(),
        namespace: "guest".into(),
        api_key: "k".into(),
        action_path: "guest/count".into(),
        action_version: action.version.clone(),
        action_revision: rev.to_string(),
        memory_mb: 128,
        content: serde_json::to_vec(&json!({ "file": file.display().to_string() })).unwrap(),
        accepted_at_ms: whisk_core::now_ms(),
        ..Default::default()
    }
}

fn durable_bus(data: &std::path::Path) -> Arc<DurableBus> {
    Arc::new(DurableBus::open(&data.join("bus"), |t| t.starts_with("invoker")).unwrap())
}

async fn start(
    data: &std::path::Path,
    store: &Arc<dyn Store>,
    bus: Arc<DurableBus>,
    shutdown: &CancellationToken,
) -> Arc<Invoker> {
    let cfg = InvokerConfig {
        stem_cells: vec![],
        data_dir: Some(data.join("invoker")),
        ..InvokerConfig::default()
    };
    let registry = whisk_directory::Registry::in_memory(Default::default());
    Invoker::start(
        cfg,
        factory(),
        store.clone(),
        bus,
        Arc::new(registry),
        shutdown.clone(),
    )
    .await
    .expect("the invoker starts")
}

fn runs(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_activations_survive_a_crash_and_none_runs_twice() {
    let data = whisk_test_support::temp_dir();
    let file = data.path().join("runs");
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&data.path().join("whisk.redb")).unwrap());
    let (action, rev) = common::store_python_action(store.as_ref(), "count", COUNT, 128).await;
    let topic = whisk_proto::invoker_topic(0);

    // Before the crash: seven accepted activations on the bus; the invoker had taken the first
    // and started it (its journal has it), the others not yet. The last two were accepted a
    // minute ago; the controller gave up on the very last (its record says so).
    let mut messages: Vec<ActivationMessage> =
        (0..7).map(|_| message(&action, &rev, &file)).collect();
    for m in &mut messages[5..] {
        m.accepted_at_ms -= 60_000;
    }
    let lost_id = ActivationId::parse(&messages[6].activation_id).unwrap();
    let mut lost = whisk_invoker::journal::interrupted(&whisk_invoker::journal::Started {
        id: lost_id.as_str().to_string(),
        partition: 0,
        offset: 7,
        start: 1,
        namespace: "guest".into(),
        action_path: "guest/count".into(),
        action_version: action.version.clone(),
        subject: "guest".into(),
        cause: String::new(),
    });
    lost.response = whisk_core::ActivationResponse::whisk_error("lost by the controller");
    store.put_activation(&lost).await.unwrap();
    {
        let bus = durable_bus(data.path());
        for m in &messages {
            bus.publish(&topic, Bytes::from(m.encode_to_vec()))
                .await
                .unwrap();
        }
        let journal =
            Journal::open(&data.path().join("invoker"), 0, CancellationToken::new()).unwrap();
        assert!(journal.start(&messages[0], 0, 1));
    }

    // After the restart: five run once, the started one is recorded as interrupted.
    let shutdown = CancellationToken::new();
    let invoker = start(data.path(), &store, durable_bus(data.path()), &shutdown).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    for (n, m) in messages.iter().enumerate() {
        let id = ActivationId::parse(&m.activation_id).unwrap();
        let record = loop {
            if let Some(r) = store.get_activation("guest", &id).await.unwrap() {
                break r;
            }
            assert!(Instant::now() < deadline, "no record of activation {n}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        if n == 0 {
            assert_eq!(record.response.status_code, StatusCode::WhiskError);
            assert_eq!(
                record.response.result.as_ref().unwrap()["error"],
                INTERRUPTED
            );
        } else if n == 6 {
            assert_eq!(record, lost, "the controller's answer stands");
        } else {
            assert_eq!(
                record.response.status_code,
                StatusCode::Success,
                "{:?}",
                record.response
            );
        }
    }
    let mut ran = runs(&file);
    ran.sort();
    let mut expected: Vec<String> = messages[1..6]
        .iter()
        .map(|m| m.activation_id.clone())
        .collect();
    expected.sort();
    assert_eq!(
        ran, expected,
        "the five that had not started (and were not lost) ran once each"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), invoker.join())
        .await
        .unwrap();
    drop(invoker);

    // Another restart: everything was committed, nothing runs again.
    let shutdown = CancellationToken::new();
    let invoker = start(data.path(), &store, durable_bus(data.path()), &shutdown).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs(&file).len(), 5, "nothing ran again");
    assert_eq!(
        invoker.handled.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), invoker.join())
        .await
        .unwrap();
}
