//! The Kafka feed against a real broker (tansu) and a real (embedded) store: messages produced
//! to the topic fire the trigger as `{"messages": [...]}` batches and their offsets are
//! committed after the fire is accepted; a failing fire commits nothing and the batch fires
//! again once the API accepts it; a refused fire disables the registration; brokers that are
//! down show in the registration's health while the provider keeps serving other feeds.

mod common;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use whisk_bus::{Bus, KafkaBus, KafkaConfig};
use whisk_feeds::Feed;
use whisk_store::Store;
use whisk_test_support::services::Tansu;
use whisk_test_support::{eventually, free_port, wait_until};

async fn topic(brokers: &str, name: &str) {
    let bus = KafkaBus::new(KafkaConfig {
        brokers: brokers.into(),
        ..KafkaConfig::default()
    })
    .unwrap();
    bus.ensure_topic(name).await.unwrap();
}

async fn produce(brokers: &str, topic: &str, messages: &[(&str, Value)]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (k, v) in messages {
        p.send(
            FutureRecord::to(topic).key(*k).payload(&v.to_string()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

/// The offset the registration's consumer group committed on partition 0 (`None`: none).
fn committed(brokers: &str, group: &str, topic: &str) -> Option<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    match got.elements()[0].offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

async fn health(
    store: &Arc<dyn Store>,
    key: &str,
    state: &str,
) -> whisk_feeds::registration::Health {
    let want = state.to_string();
    eventually(&format!("health {state}"), Duration::from_secs(20), || {
        let store = store.clone();
        let want = want.clone();
        let key = key.to_string();
        async move {
            let d = registration(&store, &key).await;
            d.health.filter(|h| h.state == want)
        }
    })
    .await
}

fn messages(api: &Api, path: &str) -> Vec<Value> {
    api.fires_of(path)
        .iter()
        .flat_map(|f| f.body["messages"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_messages_fire_in_batches_and_are_committed_after_the_fire() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    topic(&brokers, "orders").await;
    let api = Api::start().await;
    let store = store_with(&["orders"]).await;
    create(
        &store,
        Feed::Kafka,
        "orders",
        json!({"brokers": [brokers.clone()], "topic": "orders", "isJSONData": true}),
    )
    .await;
    let (p, token) = provider("p", &api, &store).await;
    let key = "messaging/guest/orders";
    health(&store, key, "running").await;
    produce(
        &brokers,
        "orders",
        &[
            ("a", json!({"i": 1})),
            ("b", json!({"i": 2})),
            ("c", json!({"i": 3})),
        ],
    )
    .await;
    wait_until("three messages fired", Duration::from_secs(15), || {
        messages(&api, "/guest/orders").len() >= 3
    })
    .await;
    let got = messages(&api, "/guest/orders");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(
        got[0],
        json!({"topic": "orders", "partition": 0, "offset": 0, "key": "a", "value": {"i": 1}})
    );
    assert_eq!(got[2]["offset"], 2);
    let reg = registration(&store, key).await;
    let group = format!("whisk-feed-guest-orders-{}", reg.created);
    let b = brokers.clone();
    let g = group.clone();
    eventually("the offset committed", Duration::from_secs(10), || {
        let (b, g) = (b.clone(), g.clone());
        async move {
            tokio::task::spawn_blocking(move || committed(&b, &g, "orders"))
                .await
                .unwrap()
                .filter(|o| *o == 3)
        }
    })
    .await;
    let read = lifecycle(&store, Feed::Kafka, "READ", "orders", json!({}))
        .await
        .unwrap();
    assert_eq!(read["config"]["topic"], "orders");
    assert_eq!(read["health"]["state"], "running");
    stop(p, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_fire_commits_nothing_and_a_refused_one_disables_the_feed() {
    let tansu = Tansu::start();
    let brokers = tansu.brokers();
    topic(&brokers, "events").await;
    let api = Api::start().await;
    let store = store_with(&["events"]).await;
    create(
        &store,
        Feed::Kafka,
        "events",
        json!({"brokers": brokers.clone(), "topic": "events"}),
    )
    .await;
    let (p, token) = provider("p", &api, &store).await;
    let key = "messaging/guest/events";
    health(&store, key, "running").await;
    let group = format!(
        "whisk-feed-guest-events-{}",
        registration(&store, key).await.created
    );

    // The API fails (503): retried, then kept; nothing committed.
    api.status.store(503, Ordering::Relaxed);
    produce(&brokers, "events", &[("k", json!("one"))]).await;
    let h = health(&store, key, "retrying").await;
    assert!(h.message.contains("503"), "{}", h.message);
    let (b, g) = (brokers.clone(), group.clone());
    let c = tokio::task::spawn_blocking(move || committed(&b, &g, "events"))
        .await
        .unwrap();
    assert!(
        c.is_none_or(|o| o == 0),
        "nothing committed while the fire fails: {c:?}"
    );
    assert!(registration(&store, key).await.status.active);

    // The API accepts again: the same message fires, then is committed.
    api.status.store(202, Ordering::Relaxed);
    wait_until("the kept batch fired", Duration::from_secs(20), || {
        !messages(&api, "/guest/events").is_empty()
    })
    .await;
    assert_eq!(messages(&api, "/guest/events")[0]["offset"], 0);
    assert_eq!(messages(&api, "/guest/events")[0]["value"], "\"one\"");
    let (b, g) = (brokers.clone(), group.clone());
    eventually("committed after the fire", Duration::from_secs(10), || {
        let (b, g) = (b.clone(), g.clone());
        async move {
            tokio::task::spawn_blocking(move || committed(&b, &g, "events"))
                .await
                .unwrap()
                .filter(|o| *o == 1)
        }
    })
    .await;

    // A refused fire (404: the trigger is gone) disables the feed, commits nothing.
    api.status.store(404, Ordering::Relaxed);
    produce(&brokers, "events", &[("k", json!("two"))]).await;
    let doc = disabled(&store, key).await;
    assert_eq!(doc.status.reason.as_ref().unwrap().status_code, Some(404));
    let (b, g) = (brokers.clone(), group.clone());
    let c = tokio::task::spawn_blocking(move || committed(&b, &g, "events"))
        .await
        .unwrap();
    assert_eq!(c, Some(1), "the refused message is not committed");
    let read = lifecycle(&store, Feed::Kafka, "READ", "events", json!({}))
        .await
        .unwrap();
    assert_eq!(read["status"]["active"], false);
    assert_eq!(read["status"]["reason"]["statusCode"], 404);
    let e = lifecycle(
        &store,
        Feed::Kafka,
        "UPDATE",
        "events",
        json!({"isBinaryKey": true}),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be updated because it is disabled"),
        "{e}"
    );
    stop(p, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_that_are_down_show_in_the_registration_and_other_feeds_keep_firing() {
    let api = Api::start().await;
    let store = store_with(&["lost", "tick"]).await;
    let nowhere = format!("127.0.0.1:{}", free_port());
    create(
        &store,
        Feed::Kafka,
        "lost",
        json!({"brokers": nowhere, "topic": "t"}),
    )
    .await;
    every_second(&store, "tick").await;
    let (p, token) = provider("p", &api, &store).await;
    let h = health(&store, "messaging/guest/lost", "unreachable").await;
    assert!(h.message.contains(&nowhere), "{}", h.message);
    let read = lifecycle(&store, Feed::Kafka, "READ", "lost", json!({}))
        .await
        .unwrap();
    assert_eq!(read["health"]["state"], "unreachable");
    assert_eq!(read["status"]["active"], true);
    wait_until("the alarm fires meanwhile", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= 2
    })
    .await;
    // DELETE of an unreachable feed works and stops its consumer.
    lifecycle(&store, Feed::Kafka, "DELETE", "lost", json!({}))
        .await
        .unwrap();
    wait_until("its task ended", Duration::from_secs(10), || {
        !p.held().contains(&"messaging/guest/lost".to_string())
    })
    .await;
    stop(p, token).await;
}
