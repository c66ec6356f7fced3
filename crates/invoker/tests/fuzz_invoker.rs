//! Property test of what a real invoker (the process runtime, the real `whisk-proxy`, the
//! in-process bus, an embedded store) does with arbitrary activation messages on its topic:
//! protobuf garbage, and well-formed messages whose every field may be hostile (unknown,
//! malformed or other namespaces' action paths, stale or garbage revisions, memory shares of
//! 0 or 2^64-1, gang sizes, non-JSON content, ids that are not activation ids, reply topics
//! nobody reads). Nothing panics (a panic hook counts panics of every task), and afterwards a
//! valid activation still completes: the consumer loop neither died nor got stuck.
//!
//! `WHISK_FUZZ_CASES` multiplies the case count.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, InProcessBus};
use whisk_core::ActivationId;
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::{ContainerFactory, Invoker, InvokerConfig, ProcessFactory};
use whisk_proto::{ActivationMessage, CompletionMessage, Message};
use whisk_store::{EmbeddedStore, Store};
use whisk_test_support::bins::target_binary;
use whisk_test_support::fuzz::{self, Xorshift};

static PANICS: AtomicUsize = AtomicUsize::new(0);

const ECHO: &str = "def main(a):\n    return a\n";

fn factory() -> Arc<dyn ContainerFactory> {
    let proxy = vec![target_binary("whisk-runtime", "whisk-proxy")
        .display()
        .to_string()];
    let mut process = ProcessConfig::default();
    process.single_tenant =
        !ProcessFactory::with_config(proxy.clone(), vec![], &process).sandboxed();
    Arc::new(ProcessFactory::with_config(proxy, vec![], &process))
}

fn message(rng: &mut Xorshift, rev: &str) -> Vec<u8> {
    if rng.one_in(4) {
        return fuzz::protobuf(rng, 2);
    }
    let id = || ActivationId::generate().as_str().to_string();
    let m = ActivationMessage {
        transaction_id: rng.text(6),
        activation_id: if rng.one_in(3) { rng.text(12) } else { id() },
        subject: rng.pick(&["guest", "", "other"]).to_string(),
        namespace: if rng.one_in(3) {
            rng.name()
        } else {
            "guest".into()
        },
        api_key: rng.text(4),
        action_path: match rng.below(5) {
            0 => "guest/echo".into(),
            1 => "guest/nope".into(),
            2 => "other/echo".into(),
            3 => format!("guest/{}", rng.name()),
            _ => rng.text(10),
        },
        action_version: rng.text(4),
        action: if rng.one_in(8) {
            rng.bytes(40)
        } else {
            Vec::new()
        },
        blocking: rng.one_in(2),
        content: match rng.below(3) {
            0 => rng.bytes(30),
            1 => serde_json::to_vec(&rng.json(3, &["x", "instanceID", "group"])).unwrap(),
            _ => serde_json::to_vec(&json!({"x": rng.text(5)})).unwrap(),
        },
        reply_to: if rng.one_in(3) {
            rng.text(6)
        } else {
            "completed0".into()
        },
        accepted_at_ms: rng.next_u64() as i64 >> rng.below(64),
        cause: if rng.one_in(4) {
            rng.text(8)
        } else {
            String::new()
        },
        trace_context: (0..rng.below(3))
            .map(|_| (rng.text(4), rng.text(8)))
            .collect(),
        gang_size: if rng.one_in(6) {
            rng.next_u64() as u32 >> rng.below(32)
        } else {
            0
        },
        binding: if rng.one_in(4) {
            rng.text(6)
        } else {
            String::new()
        },
        action_revision: if rng.one_in(3) {
            rng.text(8)
        } else {
            rev.to_string()
        },
        memory_mb: match rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => rng.next_u64() >> rng.below(64),
            _ => 128,
        },
    };
    m.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_activation_messages_leave_the_invoker_working() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let data = whisk_test_support::temp_dir();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().unwrap());
    let bus = Arc::new(InProcessBus::new());
    let registry = whisk_directory::Registry::in_memory(Default::default());
    let shutdown = CancellationToken::new();
    let (action, rev) = common::store_python_action(store.as_ref(), "echo", ECHO, 128).await;
    let mut completions = bus.subscribe("completed0", "fuzz").await.unwrap();
    let cfg = InvokerConfig {
        user_memory_mb: 1024,
        stem_cells: vec![],
        data_dir: Some(data.path().join("invoker")),
        ..InvokerConfig::default()
    };
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

    let seed = fuzz::seed();
    let mut rng = Xorshift::new(seed);
    let n = fuzz::cases(300).cases;
    for _ in 0..n {
        let payload = message(&mut rng, &rev);
        bus.publish(&whisk_proto::invoker_topic(0), Bytes::from(payload))
            .await
            .unwrap();
    }
    // Then a valid activation: it completes.
    let id = ActivationId::generate().as_str().to_string();
    let valid = ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: id.clone(),
        subject: "guest".into(),
        namespace: "guest".into(),
        action_path: "guest/echo".into(),
        action_version: action.version.clone(),
        action_revision: rev.clone(),
        memory_mb: 128,
        content: serde_json::to_vec(&json!({"alive": true})).unwrap(),
        reply_to: "completed0".into(),
        accepted_at_ms: whisk_core::now_ms(),
        ..Default::default()
    };
    bus.publish(
        &whisk_proto::invoker_topic(0),
        Bytes::from(valid.encode_to_vec()),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let delivery = tokio::time::timeout(left, completions.recv())
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: the valid activation never completed"))
            .unwrap();
        let c = CompletionMessage::decode(delivery.payload.as_ref()).unwrap();
        if c.activation_id == id {
            assert!(!c.system_error, "seed {seed}: {c:?}");
            break;
        }
    }
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "seed {seed}: a task panicked (see above)"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(60), invoker.join())
        .await
        .expect("the invoker drains");
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "seed {seed}: a task panicked (see above)"
    );
}

/// Found by `arbitrary_activation_messages_leave_the_invoker_working`: a message whose memory
/// share is near 2^64 MB overflowed the budget's admission check while another activation
/// held memory, and the panic ended the invoker's consumer loop (nothing more was taken off
/// its topic). It now waits its turn like any activation larger than the room left.
#[test]
fn a_huge_memory_share_waits_instead_of_overflowing() {
    use whisk_invoker::budget::Budget;
    let budget = Budget::new(1024);
    let first = budget.try_admit(128, false).expect("room for the first");
    assert!(budget.try_admit(u64::MAX, false).is_none());
    assert!(budget.try_admit(u64::MAX, true).is_none());
    drop(first);
    // Alone, it is admitted (the pool then answers it with its own error).
    let alone = budget.try_admit(u64::MAX, false).expect("admitted alone");
    drop(alone);
    assert_eq!((budget.held_mb(), budget.in_flight()), (0, 0));
}
