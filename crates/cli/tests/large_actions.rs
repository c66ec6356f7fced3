//! Actions larger than a default Kafka message, invoked in Kafka mode: `whisk standalone` on a
//! tansu broker (`bus = "kafka"`), so that every activation and completion crosses the broker.
//! Activation messages name their action (path and revision) and the invoker reads the code
//! through its action cache: a Python action carrying a 1.5 MB string (over librdkafka's
//! default `message.max.bytes` of 1 MB) runs blocking, warm, and again after an update (a new
//! revision misses the cache and runs the new code); a blocking result near the 1 MB result
//! limit comes back through the completion topic.

mod support;

use serde_json::json;
use support::*;
use whisk_test_support::services::Tansu;

const BLOB_LEN: usize = 1_500_000;

/// A Python action whose source holds a `BLOB_LEN`-character string; it answers `tag` and the
/// string's length, or `big` characters of result when asked.
fn big_action(tag: &str) -> String {
    format!(
        "BLOB = '{}'\ndef main(args):\n    n = int(args.get('big', 0))\n    if n:\n        return {{'tag': '{tag}', 'out': 'r' * n}}\n    return {{'tag': '{tag}', 'len': len(BLOB)}}\n",
        "x".repeat(BLOB_LEN)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_action_invokes_over_kafka_and_its_update_runs() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start_with_env(
        &dir.join("data"),
        dir,
        &[],
        &[("WHISK_BUS", "kafka"), ("WHISK_KAFKA__BROKERS", &brokers)],
    )
    .await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("big", &big_action("v1"), 256).await;

    // Cold, then warm: both through the broker.
    for _ in 0..2 {
        let (status, body) = api
            .invoke("big", "blocking=true&result=true", json!({}))
            .await;
        assert_eq!(status, 200, "{body}\n{}", server.log_tail());
        assert_eq!(body, json!({"tag": "v1", "len": BLOB_LEN}));
    }

    // An update is a new revision: the invoker's cache misses and the new code runs.
    api.put_python("big", &big_action("v2"), 256).await;
    let (status, body) = api
        .invoke("big", "blocking=true&result=true", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"tag": "v2", "len": BLOB_LEN}));

    // A result just under the 1 MB limit crosses the completion topic whole.
    let n = 1_000_000;
    let (status, body) = api
        .invoke("big", "blocking=true&result=true", json!({"big": n}))
        .await;
    assert_eq!(
        status,
        200,
        "{}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    assert_eq!(body["out"].as_str().map(str::len), Some(n));

    // The activations crossed the broker as references: read them back in a group of our own.
    use whisk_bus::{Bus, KafkaBus, KafkaConfig};
    use whisk_proto::Message;
    let bus = KafkaBus::new(KafkaConfig {
        brokers,
        ..KafkaConfig::default()
    })
    .unwrap();
    let mut topic = bus.subscribe("invoker0", "inspect").await.unwrap();
    for _ in 0..4 {
        let d = tokio::time::timeout(std::time::Duration::from_secs(10), topic.recv())
            .await
            .expect("the activations are on the broker")
            .unwrap();
        let msg = whisk_proto::ActivationMessage::decode(d.payload.as_ref()).unwrap();
        assert_eq!(msg.action_path, "guest/big");
        assert!(msg.action.is_empty() && !msg.action_revision.is_empty());
        assert!(d.payload.len() < 4096, "{} bytes", d.payload.len());
    }
}
