//! Feeds against an in-process standalone platform (its feed provider in process) and the
//! Kafka broker of `scripts/services.sh up` (`WHISK_BENCH_KAFKA`, default 127.0.0.1:9092): a
//! trigger (with a rule to a noop action) registered with `/whisk.system/messaging/kafkaFeed`,
//! then one message at a time
//! produced to its topic, each measured from the produce call until the trigger's activation
//! record with that message is stored (polled every millisecond); a direct `POST` fire of the
//! same trigger measured the same way is shown for reference.

use crate::load;
use crate::rest::Rest;
use crate::standalone::start;
use crate::table::{self, Row};
use anyhow::Context;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use whisk_bus::{Bus, KafkaBus, KafkaConfig};

/// Sizes of a run.
pub struct Plan {
    /// Messages (and fires) measured.
    pub requests: usize,
}

impl Rest {
    /// Polls the newest records of trigger `t` (every millisecond, 10 s at most) until one
    /// carries `i` (in its payload or its first message's value).
    async fn fired(&self, i: u64) -> anyhow::Result<()> {
        for _ in 0..10_000 {
            let (_, list) = self
                .send(
                    reqwest::Method::GET,
                    "_/activations?name=k&limit=3&docs=true",
                    Value::Null,
                )
                .await?;
            let hit = list.as_array().into_iter().flatten().any(|a| {
                let r = &a["response"]["result"];
                r["i"] == json!(i) || r["messages"][0]["value"]["i"] == json!(i)
            });
            if hit {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        anyhow::bail!("no fire of message {i}")
    }
}

/// Runs the scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let brokers = std::env::var("WHISK_BENCH_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let bus = Arc::new(KafkaBus::new(KafkaConfig {
        brokers: brokers.clone(),
        ..KafkaConfig::default()
    })?);
    let topic = format!("bench-feed-{:08x}", rand_u32());
    bus.ensure_topic(&topic)
        .await
        .with_context(|| format!("the Kafka broker at {brokers} (scripts/services.sh up)"))?;

    let dir = tempfile::tempdir()?;
    let mut s = whisk_serve::Settings::load(None, &HashMap::new())?;
    s.listen = "127.0.0.1:0".into();
    s.data_dir = Some(dir.path().to_path_buf());
    s.controller.fires_per_minute = 100_000_000;
    let (platform, addr) = start(s).await?;
    let rest = Arc::new(Rest::guest(format!("http://{addr}/api/v1/namespaces"))?);
    // A trigger with a rule (a fire without an active rule stores no record).
    let noop = json!({"exec": {"kind": "python:3", "code": "def main(args):\n    return {}\n"}});
    let rule = json!({"trigger": "/_/k", "action": "/_/noop"});
    for (path, body) in [
        ("_/actions/noop", noop),
        ("_/triggers/k", json!({})),
        ("_/rules/r", rule),
    ] {
        rest.put(path, body).await?;
    }
    let params = json!({
        "lifecycleEvent": "CREATE", "triggerName": "/_/k", "authKey": whisk_core::identity::GUEST_KEY,
        "brokers": brokers, "topic": topic, "isJSONData": true,
    });
    let feed = "whisk.system/actions/messaging/kafkaFeed?blocking=true";
    let (st, v) = rest.send(reqwest::Method::POST, feed, params).await?;
    anyhow::ensure!(st == 200, "the feed's CREATE: {st} {v}");
    // The consumer joins its group and reaches the topic: wait for a first message to fire.
    let seq = Arc::new(AtomicU64::new(1_000_000));
    let warm = seq.fetch_add(1, Ordering::Relaxed);
    bus.publish(&topic, json!({"i": warm}).to_string().into())
        .await?;
    let first = tokio::time::timeout(Duration::from_secs(60), async {
        while rest.fired(warm).await.is_err() {}
    })
    .await;
    if first.is_err() {
        let read = json!({"lifecycleEvent": "READ", "triggerName": "/_/k"});
        let (_, state) = rest.send(reqwest::Method::POST, feed, read).await?;
        anyhow::bail!(
            "the Kafka feed never fired; its registration: {}",
            state["response"]["result"]
        );
    }

    let kafka = {
        let (bus, rest, seq, topic) = (bus.clone(), rest.clone(), seq.clone(), topic.clone());
        load::run(1, plan.requests, move || {
            let (bus, rest, topic) = (bus.clone(), rest.clone(), topic.clone());
            let i = seq.fetch_add(1, Ordering::Relaxed);
            async move {
                bus.publish(&topic, json!({"i": i}).to_string().into())
                    .await?;
                rest.fired(i).await
            }
        })
        .await
    };
    let direct = {
        let (rest, seq) = (rest.clone(), seq.clone());
        load::run(1, plan.requests, move || {
            let rest = rest.clone();
            let i = seq.fetch_add(1, Ordering::Relaxed);
            async move {
                let (st, v) = rest
                    .send(reqwest::Method::POST, "_/triggers/k", json!({"i": i}))
                    .await?;
                anyhow::ensure!(st < 300, "fire: {st} {v}");
                rest.fired(i).await
            }
        })
        .await
    };
    table::print(
        "Feeds: a Kafka message to its trigger's fire (standalone, in-process provider)",
        &[
            Row::measured("kafka message → trigger fired (record stored)", 1, &kafka),
            Row::measured("POST fire → trigger record stored (reference)", 1, &direct),
        ],
    );
    platform.shutdown().await?;
    Ok(())
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id()
}
