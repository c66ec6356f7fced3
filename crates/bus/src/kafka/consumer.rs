//! The group consumer of [`super::KafkaBus`]: a driver task per consumer keeps polling
//! librdkafka (so rebalances are served even while the application is busy) and hands messages
//! over through a bounded channel; [`Consumer::commit`] stores offset + 1, which the driver
//! commits every `commit_interval_ms` and on close.
//!
//! A message fetched from a partition that was revoked before the application read it is
//! dropped here: the partition's new owner reads it again from the committed offset.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::KafkaConfig;
use crate::{BusError, Consumer, Delivery};

/// The producer's context: sends librdkafka's logs and client errors to `tracing`, and
/// forgets which topics exist when the connection to the brokers breaks (a broker restarted
/// with memory storage comes back without them, and tansu 0.6.0 acknowledges a message for an
/// unknown topic without storing it), so the next publish ensures its topic again.
pub(crate) struct ProducerContext {
    pub(crate) known: Arc<Mutex<HashSet<String>>>,
}

fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    use RDKafkaLogLevel::*;
    match level {
        Emerg | Alert | Critical => tracing::error!(fac, "librdkafka: {message}"),
        // librdkafka reports every failed connection attempt as an error.
        Error | Warning => tracing::warn!(fac, "librdkafka: {message}"),
        Notice | Info => tracing::info!(fac, "librdkafka: {message}"),
        Debug => tracing::debug!(fac, "librdkafka: {message}"),
    }
}

impl ClientContext for ProducerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        ) {
            self.known.lock().clear();
        }
        tracing::warn!(%error, "kafka producer: {reason}");
    }
}

/// What the driver task, the rebalance callbacks and the handle share.
struct Shared {
    topic: String,
    group: String,
    /// Assigned partitions, each with the epoch of its assignment.
    assigned: Mutex<HashMap<i32, u64>>,
    next_epoch: AtomicU64,
    /// Becomes true at the first assignment (possibly empty: more members than partitions).
    joined: watch::Sender<bool>,
    /// Offsets were stored since the driver last committed.
    stored: AtomicBool,
}

struct GroupContext(Arc<Shared>);

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(level, fac, message)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        let s = &self.0;
        tracing::warn!(topic = %s.topic, group = %s.group, %error, "kafka consumer: {reason}");
    }
    fn stats(&self, stats: rdkafka::Statistics) {
        // This member's lag (every `statistics.interval.ms`): unread messages of its partitions.
        let topic = stats.topics.get(&self.0.topic);
        let lags = topic.into_iter().flat_map(|t| t.partitions.iter());
        let lag = lags
            .filter(|(p, l)| **p >= 0 && l.consumer_lag >= 0)
            .map(|(_, l)| l.consumer_lag)
            .sum();
        whisk_metrics::kafka_lag(&self.0.topic, lag);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let s = &self.0;
        match rebalance {
            Rebalance::Assign(tpl) => {
                let mut assigned = s.assigned.lock();
                for e in tpl.elements() {
                    let epoch = s.next_epoch.fetch_add(1, Ordering::Relaxed);
                    assigned.insert(e.partition(), epoch);
                }
                tracing::debug!(topic = %s.topic, group = %s.group, partitions = ?assigned.keys().collect::<Vec<_>>(), "kafka partitions assigned");
                drop(assigned);
                s.joined.send_replace(true);
            }
            Rebalance::Revoke(tpl) => {
                let mut assigned = s.assigned.lock();
                for e in tpl.elements() {
                    assigned.remove(&e.partition());
                }
            }
            Rebalance::Error(e) => {
                tracing::warn!(topic = %s.topic, group = %s.group, error = %e, "kafka rebalance failed")
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            let s = &self.0;
            tracing::warn!(topic = %s.topic, group = %s.group, error = %e, ?offsets, "kafka commit failed; those messages may be delivered again");
        }
    }
}

type Inner = StreamConsumer<GroupContext>;

struct Tagged {
    delivery: Delivery,
    epoch: u64,
}

/// A member of a consumer group on one topic.
pub(crate) struct KafkaConsumer {
    consumer: Option<Arc<Inner>>,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Tagged>,
}

impl KafkaConsumer {
    /// Joins `group` on `topic` and returns once the group gave this member its partitions
    /// (so that with `latest` nothing published after this returns is missed), or
    /// [`BusError::Unavailable`] when no assignment came within `request_timeout_ms`.
    ///
    /// A member restarted after a crash joins while the broker still counts its predecessor
    /// (until `session_timeout_ms` passes without its heartbeats) and may be given nothing;
    /// some brokers (tansu) never hand it the partitions once the predecessor lapses. So a
    /// member still without partitions a session timeout and a margin after its first
    /// assignment leaves and joins again, until the deadline (twice the session timeout and a
    /// margin, or `request_timeout_ms` if longer); after that an empty assignment is accepted
    /// (more members than partitions).
    pub(crate) async fn join(
        cfg: &KafkaConfig,
        topic: &str,
        group: &str,
    ) -> Result<Self, BusError> {
        let session = Duration::from_millis(cfg.session_timeout_ms.into());
        let margin = Duration::from_secs(2);
        let request = Duration::from_millis(cfg.request_timeout_ms.into());
        let deadline = tokio::time::Instant::now() + request.max(session * 2 + margin * 2);
        loop {
            let (this, mut joined_rx) = Self::member(cfg, topic, group)?;
            let first = tokio::time::timeout(request, joined_rx.wait_for(|j| *j))
                .await
                .is_ok_and(|r| r.is_ok());
            if !first {
                return Err(BusError::Unavailable(format!(
                    "consumer group {group:?} on topic {topic:?} got no partitions from kafka \
                     brokers {} within {request:?}",
                    cfg.brokers
                )));
            }
            let rejoin_at = (tokio::time::Instant::now() + session + margin).min(deadline);
            while this.shared.assigned.lock().is_empty() {
                if tokio::time::Instant::now() >= rejoin_at {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !this.shared.assigned.lock().is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(this);
            }
            tracing::info!(%topic, %group, "no partitions a session timeout after joining; joining the group again");
        }
    }

    /// A new member of `group` on `topic`, and the flag its first assignment raises.
    fn member(
        cfg: &KafkaConfig,
        topic: &str,
        group: &str,
    ) -> Result<(Self, watch::Receiver<bool>), BusError> {
        let (joined, joined_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            topic: topic.to_string(),
            group: group.to_string(),
            assigned: Mutex::default(),
            next_epoch: AtomicU64::new(0),
            joined,
            stored: AtomicBool::new(false),
        });
        let consumer: Inner = cfg
            .consumer(topic, group)
            .set("statistics.interval.ms", "5000")
            .create_with_context(GroupContext(shared.clone()))
            .map_err(|e| BusError::Config(format!("kafka consumer: {e}")))?;
        consumer
            .subscribe(&[topic])
            .map_err(|e| BusError::Unavailable(format!("subscribing to {topic:?}: {e}")))?;
        let consumer = Arc::new(consumer);
        let (tx, rx) = mpsc::channel(cfg.prefetch_messages);
        let every = Duration::from_millis(cfg.commit_interval_ms.max(1).into());
        tokio::spawn(drive(consumer.clone(), shared.clone(), tx, every));
        let this = Self {
            consumer: Some(consumer),
            shared,
            rx,
        };
        Ok((this, joined_rx))
    }
}

fn owned(m: &BorrowedMessage<'_>) -> Delivery {
    use rdkafka::message::Headers as _;
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| {
                    let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                    (h.key.to_string(), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    Delivery {
        payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        offset: m.offset(),
        partition: m.partition(),
        headers,
    }
}

/// Polls `consumer` until the handle is dropped, then closes it (leaving the group) off the
/// async threads: closing blocks until pending commits are sent.
async fn drive(
    consumer: Arc<Inner>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Tagged>,
    commit_every: Duration,
) {
    let mut tick = tokio::time::interval(commit_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            _ = tx.closed() => break,
            _ = tick.tick() => {
                commit_stored(&consumer, &shared);
                continue;
            }
            m = consumer.recv() => m.map(|m| owned(&m)),
        };
        let delivery = match received {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(topic = %shared.topic, group = %shared.group, error = %e, "kafka consumer error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(epoch) = shared.assigned.lock().get(&delivery.partition).copied() else {
            continue;
        };
        if tx.send(Tagged { delivery, epoch }).await.is_err() {
            break;
        }
    }
    commit_stored(&consumer, &shared);
    close(consumer);
}

/// Commits the offsets stored by [`Consumer::commit`] since the last call, asynchronously.
fn commit_stored(consumer: &Inner, shared: &Shared) {
    if shared.stored.swap(false, Ordering::AcqRel) {
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
            tracing::warn!(topic = %shared.topic, group = %shared.group, error = %e, "kafka commit failed; those messages may be delivered again");
        }
    }
}

fn close(consumer: Arc<Inner>) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(move || drop(consumer))),
        Err(_) => drop(consumer),
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn recv(&mut self) -> Result<Delivery, BusError> {
        loop {
            let t = self.rx.recv().await.ok_or(BusError::Closed)?;
            let current = self
                .shared
                .assigned
                .lock()
                .get(&t.delivery.partition)
                .copied();
            if current == Some(t.epoch) {
                return Ok(t.delivery);
            }
            // Revoked since it was fetched: the partition's new owner gets it instead.
        }
    }

    /// Stores the offset after `delivery` for the group; the driver commits stored offsets
    /// every `commit_interval_ms` and when the consumer closes, so handled messages cost the
    /// broker one commit request per interval rather than one each. A crash redelivers at most
    /// the messages handled in the last interval (at least once).
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let consumer = self.consumer.as_ref().ok_or(BusError::Closed)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(
            &self.shared.topic,
            delivery.partition,
            Offset::Offset(delivery.offset + 1),
        )
        .map_err(|e| BusError::Unavailable(format!("commit: {e}")))?;
        consumer.store_offsets(&tpl).map_err(|e| {
            BusError::Unavailable(format!(
                "storing offset {} of {}/{} for group {:?}: {e}",
                delivery.offset + 1,
                self.shared.topic,
                delivery.partition,
                self.shared.group
            ))
        })?;
        self.shared.stored.store(true, Ordering::Release);
        Ok(())
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            close(c);
        }
    }
}
