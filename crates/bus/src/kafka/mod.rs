//! Kafka backend of the bus (rdkafka over a bundled librdkafka): one async producer shared by
//! every publish, one admin client for topics, one group consumer per [`Bus::subscribe`].
//!
//! Layout:
//! - this file: [`KafkaBus`] (topics, publish, subscribe).
//! - [`config`]: [`KafkaConfig`], every key and default, mapped onto librdkafka properties.
//! - [`consumer`]: the group consumer, its driver task and at-least-once commits.
//! - [`probe`]: [`probe()`], a metadata request for health checks, and [`KafkaHealth`].
//!
//! Delivery is at-least-once: a consumer commits a message's offset + 1 after handling it;
//! whatever was received but not committed when a consumer leaves its group is delivered again
//! to the next member. Consumers must tolerate duplicates.
//!
//! Faults. A broker that cannot be reached makes [`Bus::ensure_topic`], [`Bus::publish`] and
//! [`Bus::subscribe`] return [`BusError::Unavailable`] after `request_timeout_ms` (topic
//! creation, group join) and `message_timeout_ms` (delivery); the clients keep reconnecting, so
//! the same bus works once the broker is up. The producer retries within `message_timeout_ms`.
//!
//! A broker restarted with memory storage (tansu `memory://`) comes back without topics,
//! offsets or groups, and what it held is lost. The bus forgets which topics exist whenever the
//! connection breaks, so the next publish re-creates its topic (tansu 0.6.0 acknowledges a
//! message for an unknown topic without storing it, so this cannot wait for an error), and
//! `subscribe` always ensures its topic.
//!
//! Known defect (tansu 0.6.0 with librdkafka 2.12): a consumer that fetches a topic the broker
//! does not know crashes the process with SIGSEGV. tansu answers such a fetch with a zero topic
//! id and a current-leader tag; librdkafka's leader discovery (KIP-951) then looks the topic up
//! by a null name (`rd_kafka_metadata_update_op`). So consumers must not be running across a
//! restart of a memory-storage tansu: restart them with it, or give the broker persistent
//! storage (`scripts/kafka.sh` with `WHISK_KAFKA_STORAGE=sqlite`, as docker-compose does), where
//! topics, messages, offsets and groups survive: a broker killed and started again under load
//! loses no accepted activation (`crates/cli/tests/distributed.rs`).

pub mod config;
mod consumer;
pub mod probe;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

pub use config::KafkaConfig;
pub use probe::{probe, ClusterInfo, KafkaHealth};

use crate::{Bus, BusError, Consumer, Headers};

/// A [`Bus`] over Kafka-protocol brokers.
#[derive(Clone)]
pub struct KafkaBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer<consumer::ProducerContext>,
    admin: AdminClient<DefaultClientContext>,
    /// Topics this bus created or found; a publish to another topic ensures it first. Cleared
    /// when the connection to the brokers breaks.
    known: Arc<Mutex<HashSet<String>>>,
}

impl KafkaBus {
    /// Builds the clients. Nothing is contacted yet: an unreachable broker shows up as
    /// [`BusError::Unavailable`] from the first operation, not here. Errors here are bad
    /// configuration ([`BusError::Config`]).
    pub fn new(config: KafkaConfig) -> Result<Self, BusError> {
        config.validate()?;
        let known = Arc::new(Mutex::default());
        let producer = config
            .producer()
            .create_with_context(consumer::ProducerContext {
                known: known.clone(),
            })
            .map_err(|e| BusError::Config(format!("kafka producer: {e}")))?;
        let admin = config
            .admin()
            .create()
            .map_err(|e| BusError::Config(format!("kafka admin client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                known,
            }),
        })
    }

    /// The settings this bus was built with.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    async fn create_topic(&self, topic: &str) -> Result<(), BusError> {
        let cfg = &self.inner.config;
        let timeout = Duration::from_millis(cfg.request_timeout_ms.into());
        let max_bytes = cfg.message_max_bytes.to_string();
        let new = NewTopic::new(
            topic,
            cfg.topic_partitions,
            TopicReplication::Fixed(cfg.replication_factor),
        )
        // The broker's per-topic bound, as large as the clients' (Apache Kafka's default is
        // about 1 MB).
        .set("max.message.bytes", &max_bytes);
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let unavailable = |e: String| {
            BusError::Unavailable(format!(
                "cannot create topic {topic:?} on kafka brokers {}: {e}",
                cfg.brokers
            ))
        };
        // The admin request has its own timeout; this one bounds it should librdkafka not.
        let results = tokio::time::timeout(
            timeout + Duration::from_secs(1),
            self.inner.admin.create_topics([&new], &opts),
        )
        .await
        .map_err(|_| unavailable(format!("no answer within {timeout:?}")))?
        .map_err(|e| unavailable(e.to_string()))?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(unavailable(code.to_string())),
            }
        }
        self.inner.known.lock().insert(topic.to_string());
        Ok(())
    }

    async fn send(
        &self,
        topic: &str,
        payload: &Bytes,
        headers: &Headers,
    ) -> Result<(), KafkaError> {
        let mut record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).payload(&payload[..]);
        if !headers.is_empty() {
            let owned = headers.iter().fold(
                rdkafka::message::OwnedHeaders::new_with_capacity(headers.len()),
                |hs, (key, value)| {
                    hs.insert(rdkafka::message::Header {
                        key,
                        value: Some(value.as_bytes()),
                    })
                },
            );
            record = record.headers(owned);
        }
        let queue_timeout = Duration::from_millis(self.inner.config.message_timeout_ms.into());
        self.inner
            .producer
            .send(record, queue_timeout)
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

fn unknown_topic(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
        )
    )
}

#[async_trait]
impl Bus for KafkaBus {
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        validate_topic(topic)?;
        self.create_topic(topic).await
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_with_headers(topic, payload, Headers::new())
            .await
    }

    async fn publish_with_headers(
        &self,
        topic: &str,
        payload: Bytes,
        headers: Headers,
    ) -> Result<(), BusError> {
        validate_topic(topic)?;
        let max = self.inner.config.message_max_bytes;
        if payload.len() > max {
            return Err(BusError::Unavailable(format!(
                "a message of {} bytes for topic {topic:?} exceeds the kafka `message_max_bytes` ({max})",
                payload.len()
            )));
        }
        if !self.inner.known.lock().contains(topic) {
            self.create_topic(topic).await?;
        }
        let mut result = self.send(topic, &payload, &headers).await;
        if let Err(e) = &result {
            if unknown_topic(e) {
                // The broker lost the topic (a restart with memory storage): create it again.
                tracing::warn!(topic, error = %e, "topic unknown to the broker; re-creating it");
                self.inner.known.lock().remove(topic);
                self.create_topic(topic).await?;
                result = self.send(topic, &payload, &headers).await;
            }
        }
        result.map_err(|e| {
            BusError::Unavailable(format!(
                "publishing to topic {topic:?} on kafka brokers {} failed: {e}",
                self.inner.config.brokers
            ))
        })
    }

    /// Creates `topic` when missing, joins `group` and returns once the group assigned this
    /// member its partitions (none when the group has more members than partitions).
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        validate_topic(topic)?;
        if group.is_empty() {
            return Err(BusError::Config("empty consumer group name".into()));
        }
        // Always: a topic this bus published to may have been lost since (a broker restart).
        self.create_topic(topic).await?;
        let c = consumer::KafkaConsumer::join(&self.inner.config, topic, group).await?;
        Ok(Box::new(c))
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`.
fn validate_topic(topic: &str) -> Result<(), BusError> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BusError::Config(format!(
            "invalid kafka topic name {topic:?} (1 to 249 of a-z A-Z 0-9 . _ -)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["invoker0", "completed12", "health", "a.b_c-d"] {
            validate_topic(ok).unwrap();
        }
        for bad in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            assert!(matches!(validate_topic(bad), Err(BusError::Config(_))));
        }
    }

    #[test]
    fn bad_config_is_refused_up_front() {
        let e = KafkaBus::new(KafkaConfig {
            acks: "many".into(),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert!(matches!(e, BusError::Config(_)), "{e}");
    }
}
