//! Activation messages carry a reference to their action (path and revision), and the invoker
//! reads the action when it runs the activation: an action deleted between the controller's
//! accept and the run ends in a whisk error record that says why — stored, and sent to the
//! controller as the completion — never a lost activation. The real invoker service over the
//! in-process bus, an embedded store and the process runtime.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, InProcessBus};
use whisk_core::{ActivationId, StatusCode};
use whisk_invoker::{ContainerFactory, Invoker, InvokerConfig, ProcessFactory};
use whisk_proto::{ActivationMessage, CompletionMessage, Message};
use whisk_store::{EmbeddedStore, EntityKind, Store};
use whisk_test_support::bins::target_binary;

#[tokio::test(flavor = "multi_thread")]
async fn an_action_deleted_after_accept_ends_in_a_whisk_error_record() {
    let data = whisk_test_support::temp_dir();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().unwrap());
    let bus = Arc::new(InProcessBus::new());
    let proxy = target_binary("whisk-runtime", "whisk-proxy");
    let factory: Arc<dyn ContainerFactory> = Arc::new(ProcessFactory::new(
        vec![proxy.display().to_string()],
        vec![],
    ));
    let cfg = InvokerConfig {
        stem_cells: vec![],
        data_dir: Some(data.path().join("invoker")),
        ..InvokerConfig::default()
    };
    let shutdown = CancellationToken::new();
    let registry = whisk_directory::Registry::in_memory(Default::default());
    let invoker = Invoker::start(
        cfg,
        factory,
        store.clone(),
        bus.clone(),
        Arc::new(registry),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let mut completions = bus.subscribe("completed0", "completed0").await.unwrap();

    // The controller accepted it (at this revision); then the action was deleted.
    let doc = json!({
        "namespace": "guest", "name": "gone", "version": "0.0.1", "publish": false,
        "exec": {"kind": "python:3", "code": "def main(a):\n    return a\n", "binary": false},
        "parameters": [], "annotations": [],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "updated": 0,
    });
    let key = "guest/gone";
    let rev = store
        .put_entity(EntityKind::Action, key, &doc, None)
        .await
        .unwrap();
    store
        .delete_entity(EntityKind::Action, key, None)
        .await
        .unwrap();
    let id = ActivationId::generate();
    let msg = ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: id.to_string(),
        subject: "guest".into(),
        namespace: "guest".into(),
        api_key: "k".into(),
        action_path: key.into(),
        action_version: "0.0.1".into(),
        action_revision: rev,
        memory_mb: 256,
        blocking: true,
        content: b"{}".to_vec(),
        reply_to: "completed0".into(),
        accepted_at_ms: whisk_core::now_ms(),
        ..Default::default()
    };
    bus.publish("invoker0", msg.encode_to_vec().into())
        .await
        .unwrap();

    let delivery = tokio::time::timeout(Duration::from_secs(20), completions.recv())
        .await
        .expect("a completion within 20 s")
        .unwrap();
    let completion = CompletionMessage::decode(delivery.payload.as_ref()).unwrap();
    assert_eq!(completion.activation_id, id.to_string());
    assert!(!completion.system_error, "a deletion is the user's doing");
    let record: whisk_core::Activation = serde_json::from_slice(&completion.activation).unwrap();
    assert_eq!(record.response.status_code, StatusCode::WhiskError);
    let error = record.response.result.as_ref().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("guest/gone") && error.contains("deleted"),
        "{error}"
    );
    assert_eq!(record.name, "gone");

    // The record is stored too.
    let stored =
        whisk_test_support::eventually("the stored record", Duration::from_secs(10), || {
            let store = store.clone();
            let id = id.clone();
            async move { store.get_activation("guest", &id).await.ok().flatten() }
        })
        .await;
    assert_eq!(stored.response.status_code, StatusCode::WhiskError);

    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), invoker.join()).await;
}
