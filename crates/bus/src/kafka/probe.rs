//! [`probe`]: one metadata request to the brokers (which brokers and topics they have), and
//! [`KafkaHealth`], the bus's probe for `whisk status`. Neither creates a topic, publishes or
//! joins a group: probing leaves the brokers exactly as they were.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use whisk_core::health::{Checked, Health};

use super::KafkaConfig;
use crate::BusError;

/// What the brokers said about their cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The brokers, as `host:port`.
    pub brokers: Vec<String>,
    /// Every topic's name, sorted.
    pub topics: Vec<String>,
}

/// Asks the brokers of `config` for the cluster's metadata (all topics), within
/// `request_timeout_ms`. [`BusError::Unavailable`] when no broker answers.
pub async fn probe(config: &KafkaConfig) -> Result<ClusterInfo, BusError> {
    config.validate()?;
    let admin: AdminClient<DefaultClientContext> = config
        .admin()
        .create()
        .map_err(|e| BusError::Config(format!("kafka admin client: {e}")))?;
    let timeout = Duration::from_millis(config.request_timeout_ms.into());
    let brokers = config.brokers.clone();
    // librdkafka's metadata call blocks (up to `timeout`).
    let metadata = tokio::task::spawn_blocking(move || {
        admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| {
        BusError::Unavailable(format!("kafka brokers {brokers} answer no metadata: {e}"))
    })?;
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    topics.sort();
    Ok(ClusterInfo {
        brokers: metadata
            .brokers()
            .iter()
            .map(|b| format!("{}:{}", b.host(), b.port()))
            .collect(),
        topics,
    })
}

/// Probes the brokers of a [`KafkaConfig`] with [`probe`].
#[derive(Debug, Clone)]
pub struct KafkaHealth {
    config: KafkaConfig,
}

impl KafkaHealth {
    /// The brokers of `config` (bounded by its `request_timeout_ms`).
    pub fn new(config: KafkaConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Health for KafkaHealth {
    fn name(&self) -> &str {
        "kafka"
    }

    fn address(&self) -> String {
        self.config.brokers.clone()
    }

    async fn check(&self) -> Checked {
        let info = probe(&self.config).await.map_err(|e| e.to_string())?;
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        Ok(format!(
            "{}, {}",
            plural(info.brokers.len(), "broker"),
            plural(info.topics.len(), "topic")
        ))
    }
}
