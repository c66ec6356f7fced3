//! The consumer a provider runs for a Kafka registration it holds: a librdkafka group consumer
//! (group `whisk-feed-<ns>-<trigger>-<created>`) on the registration's brokers and topic,
//! batching messages up to [`PAYLOAD_LIMIT`](super::PAYLOAD_LIMIT) and firing each batch.
//!
//! Where it starts: upstream starts a new group at the topic's end (`latest`), which loses
//! whatever is produced while the consumer joins. Here a new group reads from the beginning
//! and skips (commits without firing) the messages stamped before the registration was
//! created, so every message produced after CREATE fires, however long the join takes.
//!
//! Offsets are committed only after the fire was accepted (2xx). A fire worth retrying
//! (408, 409, 429, 5xx, no answer) is retried 2ⁿ × the backoff unit, up to six times; if it
//! still fails, nothing is committed: the consumer seeks back to the batch and tries again
//! later, and the registration's `health` says so. Any other 4xx disables the registration
//! (its reason readable with READ), again without a commit. Brokers that cannot be reached
//! show as `health.state = "unreachable"` with librdkafka's error while the client keeps
//! reconnecting; the platform is not affected.
//!
//! The task supervising it ([`run`]) renews the lease, restarts the consumer when an UPDATE
//! changed the configuration, and stops it when the lease, the registration or the provider
//! ends.

use super::{size_of, Spec, PAYLOAD_LIMIT};
use crate::fire::Outcome;
use crate::provider::Provider;
use crate::registration::{self, Health, Registration};
use crate::FeedError;
use parking_lot::Mutex;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use whisk_core::now_ms;

/// What librdkafka's callbacks tell the consumer loop.
#[derive(Default)]
struct Context {
    /// The last client error (cleared by an assignment).
    error: Mutex<Option<String>>,
    /// The group gave this member its partitions.
    assigned: AtomicBool,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(fac, "librdkafka (feed): {message}")
            }
            _ => tracing::debug!(fac, "librdkafka (feed): {message}"),
        }
    }
    fn error(&self, error: KafkaError, reason: &str) {
        *self.error.lock() = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(_) => {
                self.assigned.store(true, Ordering::Relaxed);
                *self.error.lock() = None;
            }
            Rebalance::Revoke(_) => self.assigned.store(false, Ordering::Relaxed),
            Rebalance::Error(e) => *self.error.lock() = Some(format!("rebalance: {e}")),
        }
    }
}

type Kafka = StreamConsumer<Context>;

/// How long a batch waits for one more message once it has one.
const GATHER: Duration = Duration::from_millis(2);

/// Runs the Kafka registration `key` while this provider holds it.
pub(crate) async fn run(p: &Provider, key: &str, poke: &Notify) -> Result<(), FeedError> {
    let Some(mut held) = p.claim(key).await? else {
        return Ok(());
    };
    loop {
        let Some(spec) = Spec::of(&held.reg.config) else {
            p.disable(
                key,
                None,
                "the registration's Kafka configuration is not readable",
            )
            .await;
            return Ok(());
        };
        let stop = p.shutdown().child_token();
        let mut consumer = p.tasks().spawn(consume(
            p.clone(),
            key.to_string(),
            held.reg.clone(),
            spec,
            stop.clone(),
        ));
        let mut ended = false;
        let restart = loop {
            let wait = (p.renew_at(&held) - now_ms()).max(0) as u64;
            tokio::select! {
                _ = p.shutdown().cancelled() => break false,
                _ = poke.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = &mut consumer, if !ended => {
                    ended = true;
                    // It stopped by itself (disabled, or a client it could not make): look
                    // again shortly.
                    tokio::time::sleep(p.lease_ttl() / 6).await;
                }
            }
            match p.claim(key).await {
                Ok(Some(h)) => {
                    let changed = h.reg.config != held.reg.config;
                    held = h;
                    if changed || ended {
                        break true;
                    }
                }
                Ok(None) => break false,
                Err(e) => tracing::warn!(error = %e, key, "renewing a feed lease failed"),
            }
        };
        stop.cancel();
        if !ended {
            let _ = consumer.await;
        }
        if !restart {
            return Ok(());
        }
    }
}

/// Writes `state` (and `message`) as the registration's health when it changed.
async fn report(p: &Provider, key: &str, state: &str, message: &str) {
    let r = registration::modify(p.store(), key, |reg| {
        if reg
            .health
            .as_ref()
            .is_some_and(|h| h.state == state && h.message == message)
        {
            return Ok(false);
        }
        reg.health = Some(Health {
            state: state.to_string(),
            message: message.to_string(),
            since: now_ms(),
        });
        Ok(true)
    })
    .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, key, "recording a Kafka feed's health failed");
    }
}

fn client(reg: &Registration, spec: &Spec) -> Result<Kafka, KafkaError> {
    let group = format!(
        "whisk-feed-{}-{}-{}",
        reg.namespace, reg.trigger, reg.created
    );
    ClientConfig::new()
        .set("bootstrap.servers", spec.brokers.join(","))
        .set("group.id", group)
        .set("client.id", "whisk-feeds")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .set("fetch.wait.max.ms", "100")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create_with_context(Context::default())
}

/// True for a message stamped before `created` (produced before the registration).
fn before(m: &OwnedMessage, created: i64) -> bool {
    m.timestamp().to_millis().is_some_and(|t| t < created)
}

/// Where each partition of `batch` resumes: the offset after its last message.
fn next_offsets(batch: &[OwnedMessage]) -> TopicPartitionList {
    let mut last: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for m in batch {
        let e = last
            .entry((m.topic().to_string(), m.partition()))
            .or_insert(m.offset());
        *e = (*e).max(m.offset());
    }
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in last {
        let _ = tpl.add_partition_offset(&t, p, Offset::Offset(o + 1));
    }
    tpl
}

/// Runs in a blocking thread (librdkafka's commit and seek wait for the broker).
async fn blocking<T: Send + 'static>(
    consumer: &Arc<Kafka>,
    f: impl FnOnce(&Kafka) -> T + Send + 'static,
) -> Option<T> {
    let c = consumer.clone();
    tokio::task::spawn_blocking(move || f(&c)).await.ok()
}

/// Consumes and fires until `stop` is cancelled or the registration is disabled.
async fn consume(p: Provider, key: String, reg: Registration, spec: Spec, stop: CancellationToken) {
    let consumer = match client(&reg, &spec) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            report(
                &p,
                &key,
                "unreachable",
                &format!("cannot make a Kafka client: {e}"),
            )
            .await;
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[spec.topic.as_str()]) {
        report(
            &p,
            &key,
            "unreachable",
            &format!("cannot subscribe to {:?}: {e}", spec.topic),
        )
        .await;
        return;
    }
    report(&p, &key, "connecting", "").await;
    let mut reported = "connecting".to_string();
    let mut pending: Option<OwnedMessage> = None;
    // Messages from before the registration, passed over and committed when idle.
    let mut skipped: Vec<OwnedMessage> = Vec::new();
    let backoff = p.firer().settings().backoff;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let first = match pending.take() {
            Some(m) => m,
            None => {
                let got = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = tokio::time::timeout(Duration::from_millis(250), consumer.recv()) => r,
                };
                let message = match got {
                    Ok(Ok(m)) => {
                        let m = m.detach();
                        if before(&m, reg.created) {
                            skipped.push(m);
                            continue;
                        }
                        Some(m)
                    }
                    Ok(Err(e)) => {
                        *consumer.context().error.lock() = Some(e.to_string());
                        None
                    }
                    Err(_) => None,
                };
                // Between messages: say how the connection is.
                let ctx = consumer.context();
                let (state, message_text) = if ctx.assigned.load(Ordering::Relaxed) {
                    ("running".to_string(), String::new())
                } else if let Some(e) = ctx.error.lock().clone() {
                    (
                        "unreachable".to_string(),
                        format!("kafka brokers {}: {e}", spec.brokers.join(",")),
                    )
                } else {
                    ("connecting".to_string(), String::new())
                };
                if message.is_none() && state != reported {
                    report(&p, &key, &state, &message_text).await;
                    reported = state;
                }
                if message.is_none() && !skipped.is_empty() {
                    let tpl = next_offsets(&skipped);
                    if let Some(Ok(())) =
                        blocking(&consumer, move |c| c.commit(&tpl, CommitMode::Sync)).await
                    {
                        skipped.clear();
                    }
                }
                match message {
                    Some(m) => m,
                    None => continue,
                }
            }
        };
        let first_value = spec.message(
            first.topic(),
            first.partition(),
            first.offset(),
            first.key(),
            first.payload(),
        );
        if size_of(&first_value) > PAYLOAD_LIMIT {
            tracing::warn!(
                key,
                offset = first.offset(),
                "a single Kafka message exceeds the payload limit; skipping it"
            );
            let tpl = next_offsets(std::slice::from_ref(&first));
            blocking(&consumer, move |c| c.commit(&tpl, CommitMode::Sync)).await;
            continue;
        }
        let mut size = size_of(&first_value);
        let mut values = vec![first_value];
        let mut batch = vec![first];
        // More messages that are already there (fetched with the first), up to the payload
        // limit: a short wait, so a lone message is not held back.
        while let Ok(Ok(m)) = tokio::time::timeout(GATHER, consumer.recv()).await {
            let m = m.detach();
            if before(&m, reg.created) {
                skipped.push(m);
                continue;
            }
            let v = spec.message(m.topic(), m.partition(), m.offset(), m.key(), m.payload());
            let s = size_of(&v);
            if size + s > PAYLOAD_LIMIT {
                pending = Some(m);
                break;
            }
            size += s;
            values.push(v);
            batch.push(m);
        }
        let payload = json!({ "messages": Value::Array(values) });
        match p.firer().fire(&reg, &payload, &stop).await {
            Outcome::Accepted(_) => {
                skipped.append(&mut batch);
                let tpl = next_offsets(&skipped);
                skipped.clear();
                match blocking(&consumer, move |c| c.commit(&tpl, CommitMode::Sync)).await {
                    Some(Ok(())) => {}
                    other => tracing::warn!(
                        key,
                        ?other,
                        "committing a fired Kafka batch failed; it may fire again"
                    ),
                }
                if reported != "running" {
                    report(&p, &key, "running", "").await;
                    reported = "running".into();
                }
            }
            Outcome::Disable(status, message) => {
                p.disable(&key, Some(status), &message).await;
                break;
            }
            Outcome::Failed(status, message) => {
                if stop.is_cancelled() {
                    break;
                }
                let text = match status {
                    Some(s) => format!("firing the trigger failed with {s} after retries: {message}; the batch is kept"),
                    None => format!("firing the trigger failed after retries: {message}; the batch is kept"),
                };
                report(&p, &key, "retrying", &text).await;
                reported = "retrying".into();
                pending = None;
                let mut firsts: BTreeMap<(String, i32), i64> = BTreeMap::new();
                for m in &batch {
                    let e = firsts
                        .entry((m.topic().to_string(), m.partition()))
                        .or_insert(m.offset());
                    *e = (*e).min(m.offset());
                }
                blocking(&consumer, move |c| {
                    for ((t, part), o) in firsts {
                        if let Err(e) = c.seek(&t, part, Offset::Offset(o), Duration::from_secs(5)) {
                            tracing::warn!(error = %e, topic = %t, part, "seeking back to an unfired batch failed");
                        }
                    }
                })
                .await;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff * 64) => {}
                }
            }
        }
    }
    // Closing leaves the group; it may wait for the broker.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
}
