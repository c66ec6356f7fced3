//! The message bus between controllers and invokers: a small trait with topic/consumer-group
//! semantics (as Kafka's), the in-process backend used by `standalone` and unit tests, and the
//! Kafka backend of the distributed mode.
//!
//! Layout:
//! - this file: the [`Bus`] and [`Consumer`] traits, [`Delivery`], [`BusError`].
//! - [`memory`]: [`memory::InProcessBus`], channels inside one process.
//! - [`durable`]: [`durable::DurableBus`], the in-process bus whose chosen topics are kept in
//!   a log file until committed (standalone with a data folder: survives a crash).
//! - [`kafka`]: [`kafka::KafkaBus`], Kafka-protocol brokers through rdkafka; its health probe
//!   [`kafka::KafkaHealth`] (a metadata request).

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;

pub mod durable;
pub mod kafka;
pub mod memory;

pub use durable::DurableBus;
pub use kafka::{KafkaBus, KafkaConfig, KafkaHealth};
pub use memory::InProcessBus;

/// A failure of the bus.
#[derive(Debug, Error)]
pub enum BusError {
    /// The bus was shut down; no more messages will arrive.
    #[error("message bus closed")]
    Closed,
    /// The broker (or backend) could not be reached or refused the operation.
    #[error("message bus unavailable: {0}")]
    Unavailable(String),
    /// A setting or argument the backend cannot use (bad configuration, invalid topic name).
    #[error("message bus misconfigured: {0}")]
    Config(String),
}

/// A message's headers (Kafka record headers): name and value pairs, in order. The platform
/// puts the W3C trace context (`traceparent`, `tracestate`) there.
pub type Headers = Vec<(String, String)>;

/// One message received from a topic.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The encoded message.
    pub payload: Bytes,
    /// Position in the topic (for commits); 0 where the backend has none.
    pub offset: i64,
    /// Partition of the topic the message came from (commits are per partition); 0 where the
    /// backend has none.
    pub partition: i32,
    /// The headers it was published with (empty where the backend keeps none: the durable
    /// in-process topics).
    pub headers: Headers,
}

/// Publish/subscribe with consumer groups: every group of a topic gets every message once,
/// consumers within a group share them.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Creates `topic` if it does not exist yet.
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError>;
    /// Sends `payload` to `topic`.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError>;
    /// Sends `payload` to `topic` with `headers` (the default drops them).
    async fn publish_with_headers(
        &self,
        topic: &str,
        payload: Bytes,
        headers: Headers,
    ) -> Result<(), BusError> {
        let _ = headers;
        self.publish(topic, payload).await
    }
    /// Joins `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError>;
}

/// A member of a consumer group.
#[async_trait]
pub trait Consumer: Send {
    /// Waits for the next message.
    async fn recv(&mut self) -> Result<Delivery, BusError>;
    /// Marks `delivery` (and everything before it) as handled (at-least-once backends).
    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError>;
}
