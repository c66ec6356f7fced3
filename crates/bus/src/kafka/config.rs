//! [`KafkaConfig`]: every setting of the Kafka backend, its default, and how it maps onto
//! librdkafka properties for the producer, the consumers and the admin client.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::BusError;

/// Default of [`KafkaConfig::message_max_bytes`]: 32 MiB.
///
/// The largest legal message is a completion (`completed<M>`): it carries the whole activation
/// record, whose result may reach 1 MiB (`whisk_core::limits::PAYLOAD_MAX_BYTES`) and whose
/// logs may reach 10 MiB (`LOGS_MAX_MB`), JSON-escaped, plus annotations: about 12 MiB for
/// ordinary text; 32 MiB leaves room for heavily escaped logs. An activation message holds a
/// reference to its action, never its code (up to 48 MiB), and parameters of at most 1 MiB
/// each (invoke payload, action, package, binding). Health pings are a few bytes.
pub const MESSAGE_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The largest `message_max_bytes` librdkafka takes (its `message.max.bytes` bound, with room
/// for `receive.message.max.bytes` above it).
const MESSAGE_MAX_BYTES_CEILING: usize = 1_000_000_000 - 1024 * 1024;

/// Settings of [`super::KafkaBus`]. Every key is optional; [`Default`] gives the values below,
/// tuned for latency on one broker (a controller and a few invokers on one or five nodes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `brokers`: bootstrap servers, `host:port[,host:port...]` (librdkafka
    /// `bootstrap.servers`). Default `127.0.0.1:9092`.
    pub brokers: String,
    /// `client_id`: name the clients give the broker (`client.id`). Default `whisk`.
    pub client_id: String,
    /// `topic_partitions`: partitions of a topic that [`crate::Bus::ensure_topic`] creates (an
    /// existing topic is left as it is). More than one lets several consumers of one group
    /// share a topic; order is kept only within a partition. Default `1`.
    pub topic_partitions: i32,
    /// `replication_factor`: replicas of a created topic. Default `1` (one broker).
    pub replication_factor: i32,
    /// `acks`: `0`, `1` or `all` (`acks`). Default `all`: a publish returns once every in-sync
    /// replica has the message, so an activation the controller accepted survives the loss of
    /// the partition leader; on one broker it costs nothing over `1`.
    pub acks: String,
    /// `idempotence`: `enable.idempotence`. Default `false`: a broker that restarts with memory
    /// storage forgets producer ids, which turns an idempotent producer's next send into a
    /// fatal error; consumers are at-least-once anyway and must tolerate duplicates.
    pub idempotence: bool,
    /// `linger_ms`: how long the producer waits to fill a batch (`linger.ms`). Default `0`:
    /// send at once; batches form only while a request is in flight.
    pub linger_ms: u32,
    /// `batch_num_messages`: most messages in one produce request (`batch.num.messages`).
    /// Default `100`.
    pub batch_num_messages: u32,
    /// `message_timeout_ms`: bound on one publish, retries included (`message.timeout.ms`):
    /// past it [`crate::Bus::publish`] returns [`BusError::Unavailable`]. Default `10000`.
    pub message_timeout_ms: u32,
    /// `request_timeout_ms`: bound on creating a topic and on joining a group (the wait in
    /// [`crate::Bus::subscribe`] for the first partition assignment). Default `10000`.
    pub request_timeout_ms: u32,
    /// `session_timeout_ms`: a consumer that sends no heartbeat for this long leaves its group
    /// and its partitions go to the others (`session.timeout.ms`). Default `6000`.
    pub session_timeout_ms: u32,
    /// `heartbeat_interval_ms`: `heartbeat.interval.ms`; at most a third of the session
    /// timeout. Default `2000`.
    pub heartbeat_interval_ms: u32,
    /// `fetch_wait_max_ms`: longest time the broker holds a fetch that has no data
    /// (`fetch.wait.max.ms`). Default `100`. A broker answers a waiting fetch as soon as data
    /// arrives (Apache Kafka, and the project's tansu build, `deploy/tansu/build.sh`), so this
    /// costs no latency; it only bounds how often an idle consumer asks (about 10 fetches a
    /// second). Stock tansu 0.6.0 holds every fetch for the whole wait even when it found data:
    /// with it, set 1 or 2.
    pub fetch_wait_max_ms: u32,
    /// `metadata_refresh_ms`: period of metadata refreshes (`topic.metadata.refresh.interval.ms`),
    /// how soon a consumer notices a topic that was re-created. Default `5000`.
    pub metadata_refresh_ms: u32,
    /// `latest_topic_prefixes`: a group without a committed offset starts at the end of a topic
    /// whose name starts with one of these (`auto.offset.reset=latest`), at the beginning of
    /// every other topic (`earliest`). Default `["health", "feeds", "logFollow"]`: old pings,
    /// feed announcements and live-log follow requests are stale (a feed provider lists the
    /// store anyway; a follower asks again every second until answered), while
    /// `invoker<N>` and `completed<M>` must not lose what was published before the consumer
    /// joined (an invoker started after the controller placed work on it; a completion that
    /// raced the controller's first assignment).
    pub latest_topic_prefixes: Vec<String>,
    /// `commit_interval_ms`: how often the offsets stored by [`crate::Consumer::commit`] are
    /// committed to the broker (one asynchronous commit request; closing a consumer commits
    /// at once). librdkafka's own auto-commit is off: its commit on close can wait forever
    /// for a broker in the middle of a rebalance. A crash redelivers what was handled in the last interval.
    /// Default `100`.
    pub commit_interval_ms: u32,
    /// `prefetch_messages`: received messages buffered per consumer before the application
    /// reads them. Default `1000`.
    pub prefetch_messages: usize,
    /// `message_max_bytes`: the largest message, bytes, set alike everywhere it matters: the
    /// producer's `message.max.bytes` (a larger publish fails at once with a clear error), the
    /// consumers' `fetch.max.bytes` and `max.partition.fetch.bytes` (one fetch holds a whole
    /// message; `receive.message.max.bytes` a whole response above that), and the
    /// `max.message.bytes` of the topics [`crate::Bus::ensure_topic`] creates (Apache Kafka
    /// brokers refuse larger messages; tansu 0.6.0 has no limit of its own). Default
    /// [`MESSAGE_MAX_BYTES`] (32 MiB: see there why).
    pub message_max_bytes: usize,
    /// `properties`: raw librdkafka properties set last on every client (TLS, SASL, ...).
    /// Default empty.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            client_id: "whisk".into(),
            topic_partitions: 1,
            replication_factor: 1,
            acks: "all".into(),
            idempotence: false,
            linger_ms: 0,
            batch_num_messages: 100,
            message_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
            session_timeout_ms: 6_000,
            heartbeat_interval_ms: 2_000,
            fetch_wait_max_ms: 100,
            metadata_refresh_ms: 5_000,
            latest_topic_prefixes: vec!["health".into(), "feeds".into(), "logFollow".into()],
            prefetch_messages: 1000,
            message_max_bytes: MESSAGE_MAX_BYTES,
            commit_interval_ms: 100,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Checks the values that librdkafka would otherwise reject later, with less clear errors.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |m: String| Err(BusError::Config(m));
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return bad("kafka `brokers` is empty".into());
        }
        if self.topic_partitions < 1 {
            return bad(format!(
                "kafka `topic_partitions` must be at least 1, not {}",
                self.topic_partitions
            ));
        }
        if self.replication_factor < 1 {
            return bad(format!(
                "kafka `replication_factor` must be at least 1, not {}",
                self.replication_factor
            ));
        }
        if !matches!(self.acks.as_str(), "0" | "1" | "all" | "-1") {
            return bad(format!(
                "kafka `acks` must be 0, 1 or all, not {:?}",
                self.acks
            ));
        }
        if self.idempotence && !matches!(self.acks.as_str(), "all" | "-1") {
            return bad("kafka `idempotence` needs `acks` = all".into());
        }
        if self.message_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return bad("kafka timeouts must be positive".into());
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms.saturating_mul(3) > self.session_timeout_ms
        {
            return bad(format!(
                "kafka `heartbeat_interval_ms` ({}) must be positive and at most a third of \
                 `session_timeout_ms` ({})",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        if self.prefetch_messages == 0 {
            return bad("kafka `prefetch_messages` must be at least 1".into());
        }
        // librdkafka's own bounds of `message.max.bytes`.
        if !(1000..=MESSAGE_MAX_BYTES_CEILING).contains(&self.message_max_bytes) {
            return bad(format!(
                "kafka `message_max_bytes` must be between 1000 and {MESSAGE_MAX_BYTES_CEILING}, not {}",
                self.message_max_bytes
            ));
        }
        Ok(())
    }

    /// `earliest` or `latest` for `topic`, by [`Self::latest_topic_prefixes`].
    pub fn offset_reset(&self, topic: &str) -> &'static str {
        if self
            .latest_topic_prefixes
            .iter()
            .any(|p| topic.starts_with(p.as_str()))
        {
            "latest"
        } else {
            "earliest"
        }
    }

    fn common(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            .set(
                "topic.metadata.refresh.interval.ms",
                self.metadata_refresh_ms.to_string(),
            )
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "1000")
            .set("socket.connection.setup.timeout.ms", "5000")
            .set("socket.nagle.disable", "true");
        c
    }

    fn finish(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn producer(&self) -> ClientConfig {
        let mut c = self.common();
        c.set("acks", &self.acks)
            .set("enable.idempotence", self.idempotence.to_string())
            .set("linger.ms", self.linger_ms.to_string())
            .set("batch.num.messages", self.batch_num_messages.to_string())
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("message.max.bytes", self.message_max_bytes.to_string())
            .set("retry.backoff.ms", "50")
            .set("retry.backoff.max.ms", "500")
            // A message for a topic the broker does not know fails after this long instead of
            // waiting out `message.timeout.ms`: the bus then re-creates the topic and retries.
            .set("topic.metadata.propagation.max.ms", "1000");
        self.finish(c)
    }

    pub(crate) fn consumer(&self, topic: &str, group: &str) -> ClientConfig {
        let mut c = self.common();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("auto.offset.reset", self.offset_reset(topic))
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms.to_string(),
            )
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("fetch.error.backoff.ms", "50")
            .set("fetch.min.bytes", "1")
            .set("fetch.max.bytes", self.message_max_bytes.to_string())
            .set(
                "max.partition.fetch.bytes",
                self.message_max_bytes.to_string(),
            )
            // librdkafka wants room for a whole fetch response above `fetch.max.bytes`.
            .set(
                "receive.message.max.bytes",
                self.receive_max_bytes().to_string(),
            );
        self.finish(c)
    }

    /// `receive.message.max.bytes` of the consumers: a fetch response's framing (topic,
    /// partition and batch headers) above a full fetch.
    fn receive_max_bytes(&self) -> usize {
        self.message_max_bytes + 1024 * 1024
    }

    pub(crate) fn admin(&self) -> ClientConfig {
        let c = self.common();
        self.finish(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_reset_rule() {
        let c = KafkaConfig::default();
        c.validate().unwrap();
        assert_eq!(c.offset_reset("health"), "latest");
        assert_eq!(c.offset_reset("invoker0"), "earliest");
        assert_eq!(c.offset_reset("completed3"), "earliest");
        assert_eq!(
            c.consumer("health", "g").get("fetch.wait.max.ms"),
            Some("100")
        );
    }

    #[test]
    fn bad_values_are_config_errors() {
        for c in [
            KafkaConfig {
                brokers: " , ".into(),
                ..Default::default()
            },
            KafkaConfig {
                acks: "2".into(),
                ..Default::default()
            },
            KafkaConfig {
                topic_partitions: 0,
                ..Default::default()
            },
            KafkaConfig {
                heartbeat_interval_ms: 3000,
                ..Default::default()
            },
            KafkaConfig {
                idempotence: true,
                acks: "1".into(),
                ..Default::default()
            },
        ] {
            assert!(matches!(c.validate(), Err(BusError::Config(_))), "{c:?}");
        }
    }

    #[test]
    fn one_message_size_bound_everywhere_that_fits_the_largest_record() {
        let c = KafkaConfig::default();
        let m = c.message_max_bytes.to_string();
        assert_eq!(c.producer().get("message.max.bytes"), Some(m.as_str()));
        let k = c.consumer("invoker0", "g");
        assert_eq!(k.get("fetch.max.bytes"), Some(m.as_str()));
        assert_eq!(k.get("max.partition.fetch.bytes"), Some(m.as_str()));
        let receive: usize = k.get("receive.message.max.bytes").unwrap().parse().unwrap();
        // librdkafka's rule: a whole fetch and its framing.
        assert!(receive >= c.message_max_bytes + 512);
        // A completion with a full result and full logs, twice over for escaping.
        let record = whisk_core::limits::PAYLOAD_MAX_BYTES
            + (whisk_core::limits::LOGS_MAX_MB as usize) * 1024 * 1024;
        assert!(c.message_max_bytes >= 2 * record, "{}", c.message_max_bytes);
        for bad in [999, 2_000_000_000] {
            let c = KafkaConfig {
                message_max_bytes: bad,
                ..Default::default()
            };
            assert!(matches!(c.validate(), Err(BusError::Config(_))));
        }
    }

    #[test]
    fn properties_come_last() {
        let c = KafkaConfig {
            properties: [("linger.ms".to_string(), "5".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(c.producer().get("linger.ms"), Some("5"));
        assert_eq!(
            c.consumer("health", "g").get("auto.offset.reset"),
            Some("latest")
        );
    }
}
