//! Prometheus metrics of every whisk role: the process's one registry ([`global`]), every
//! metric family, the one-line recording functions the roles call, and the `/metrics`
//! handler ([`router`], [`serve`]) that answers the Prometheus text exposition (OpenMetrics
//! flavour, as `prometheus-client` writes it; Prometheus and `promtool check metrics` read it).
//!
//! Names follow OpenWhisk where it has one (its user-events service and the Kamon markers of
//! its controller and invoker), written in snake case as Prometheus' conventions (and
//! `promtool check metrics`) want: OpenWhisk's `openwhisk_action_waitTime_seconds` is
//! `openwhisk_action_wait_time_seconds` here, `gauge_containerPool_activeCount_counter` is
//! `openwhisk_containerpool_active_containers`. [`NAMES`] lists them all.
//!
//! Two kinds of values:
//! - events, recorded where they happen into the families of [`global`] (activations,
//!   throttles, gateway requests, Kafka lag, peer-map propagation): a counter increment or a
//!   histogram observation, no allocation once an action's label set exists;
//! - states read only when Prometheus scrapes ([`Source`], [`Gauges`]): invokers known to a
//!   controller, a container pool's counts and memory, a directory's groups. Nobody scraping
//!   costs nothing.
//!
//! Layout: this file (the families and recording functions), `activations` (the per-action
//! label cache of the hot path), `scrape` (sources, encoding, the HTTP handler).

mod activations;
mod scrape;

pub use activations::ActivationEvent;
pub use scrape::{
    encode, encode_text, router, serve, Gauges, Source, CONTENT_TYPE, TEXT_CONTENT_TYPE,
};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms: from half a millisecond (a warm
/// activation's wait) to a minute (OpenWhisk's default action timeout).
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// Every metric name this crate exposes (as it appears on `/metrics`), with its type.
pub const NAMES: &[(&str, &str)] = &[
    ("openwhisk_action_activations_total", "counter"),
    ("openwhisk_action_cold_starts_total", "counter"),
    ("openwhisk_action_status_total", "counter"),
    ("openwhisk_action_wait_time_seconds", "histogram"),
    ("openwhisk_action_init_time_seconds", "histogram"),
    ("openwhisk_action_duration_seconds", "histogram"),
    ("openwhisk_action_memory", "gauge"),
    ("openwhisk_action_limit_concurrent_total", "counter"),
    ("openwhisk_action_limit_timed_total", "counter"),
    ("openwhisk_loadbalancer_activations_total", "counter"),
    ("openwhisk_loadbalancer_activations_inflight", "gauge"),
    ("openwhisk_loadbalancer_invokers", "gauge"),
    ("openwhisk_loadbalancer_total_capacity_bytes", "gauge"),
    ("openwhisk_loadbalancer_memory_inflight_bytes", "gauge"),
    ("openwhisk_loadbalancer_overloaded_total", "counter"),
    ("openwhisk_containerpool_active_containers", "gauge"),
    ("openwhisk_containerpool_active_size_bytes", "gauge"),
    ("openwhisk_containerpool_idle_containers", "gauge"),
    ("openwhisk_containerpool_idle_size_bytes", "gauge"),
    ("openwhisk_containerpool_prewarm_containers", "gauge"),
    ("openwhisk_containerpool_prewarm_size_bytes", "gauge"),
    ("openwhisk_invoker_user_memory_bytes", "gauge"),
    ("openwhisk_kafka_consumer_lag", "gauge"),
    ("whisk_peer_groups", "gauge"),
    ("whisk_peer_watchers", "gauge"),
    ("whisk_peer_instances_registered_total", "counter"),
    ("whisk_peer_map_propagation_seconds", "histogram"),
    ("whisk_gateway_requests_total", "counter"),
    ("whisk_gateway_request_duration_seconds", "histogram"),
    ("whisk_gateway_refused_total", "counter"),
];

/// `namespace`: a namespace, as OpenWhisk's limit counters carry it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NamespaceLabels {
    pub(crate) namespace: String,
}

/// `topic`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

/// `code`: an HTTP status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

/// `reason` of a gateway refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The process's families, registered in its registry.
pub struct Metrics {
    registry: Registry,
    pub(crate) actions: activations::Families,
    limit_concurrent: Family<NamespaceLabels, Counter>,
    limit_timed: Family<NamespaceLabels, Counter>,
    placed: Counter,
    kafka_lag: Family<TopicLabels, Gauge>,
    peer_registered: Counter,
    peer_propagation: Histogram,
    gateway_requests: Family<CodeLabels, Counter>,
    gateway_latency: Histogram,
    gateway_refused: Family<ReasonLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let actions = activations::Families::register(&mut registry);
        let limit_concurrent = Family::default();
        registry.register(
            "openwhisk_action_limit_concurrent",
            "Invocations refused because the namespace had its limit of concurrent invocations in flight",
            limit_concurrent.clone(),
        );
        let limit_timed = Family::default();
        registry.register(
            "openwhisk_action_limit_timed",
            "Invocations refused because the namespace reached its invocations per minute",
            limit_timed.clone(),
        );
        let placed = Counter::default();
        registry.register(
            "openwhisk_loadbalancer_activations",
            "Activations this controller placed on an invoker and published",
            placed.clone(),
        );
        let kafka_lag = Family::default();
        registry.register(
            "openwhisk_kafka_consumer_lag",
            "Messages of the topic not yet consumed by this process's group member, summed over its partitions (OpenWhisk's kafka topic counter)",
            kafka_lag.clone(),
        );
        let peer_registered = Counter::default();
        registry.register(
            "whisk_peer_instances_registered",
            "Peer-group instances this invoker registered with the directory",
            peer_registered.clone(),
        );
        let peer_propagation = latency_histogram();
        registry.register(
            "whisk_peer_map_propagation_seconds",
            "From an instance's registration to the peer map holding it written into its group's containers on this invoker",
            peer_propagation.clone(),
        );
        let gateway_requests = Family::default();
        registry.register(
            "whisk_gateway_requests",
            "Requests the gateway answered past its limits, by HTTP status",
            gateway_requests.clone(),
        );
        let gateway_latency = latency_histogram();
        registry.register(
            "whisk_gateway_request_duration_seconds",
            "Time from a request's head to its answer's head, at the gateway",
            gateway_latency.clone(),
        );
        let gateway_refused = Family::default();
        registry.register(
            "whisk_gateway_refused",
            "Requests or connections the gateway's limits refused, by limit",
            gateway_refused.clone(),
        );
        Self {
            registry,
            actions,
            limit_concurrent,
            limit_timed,
            placed,
            kafka_lag,
            peer_registered,
            peer_propagation,
            gateway_requests,
            gateway_latency,
            gateway_refused,
        }
    }

    /// The registry every family is in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics (made at first use).
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// One activation ended (its record is made): counts it by action and status, and observes
/// its wait, init and run times.
pub fn activation(event: &ActivationEvent<'_>) {
    global().actions.record(event)
}

/// Which throttle refused an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Invocations per minute (OpenWhisk's `TimedRateLimit`).
    Timed,
    /// Concurrent invocations (OpenWhisk's `ConcurrentRateLimit`).
    Concurrent,
}

/// An invocation of `namespace` was refused by a throttle (429).
pub fn throttled(namespace: &str, which: Throttle) {
    let labels = NamespaceLabels {
        namespace: namespace.to_string(),
    };
    let m = global();
    match which {
        Throttle::Timed => m.limit_timed.get_or_create(&labels).inc(),
        Throttle::Concurrent => m.limit_concurrent.get_or_create(&labels).inc(),
    };
}

/// The controller placed `n` activations on invokers.
pub fn placed(n: u64) {
    global().placed.inc_by(n);
}

/// The consumer lag of `topic` in this process (librdkafka's statistics).
pub fn kafka_lag(topic: &str, lag: i64) {
    global()
        .kafka_lag
        .get_or_create(&TopicLabels {
            topic: topic.to_string(),
        })
        .set(lag.max(0));
}

/// The invoker registered a peer-group instance with the directory.
pub fn peer_registered() {
    global().peer_registered.inc();
}

/// A peer map reached its group's containers on this invoker `latency` after its newest
/// instance registered.
pub fn peer_map_propagated(latency: Duration) {
    global().peer_propagation.observe(latency.as_secs_f64());
}

/// The gateway answered a request with `status` after `latency`.
pub fn gateway_request(status: u16, latency: Duration) {
    let m = global();
    m.gateway_requests
        .get_or_create(&CodeLabels { code: status })
        .inc();
    m.gateway_latency.observe(latency.as_secs_f64());
}

/// The gateway refused a request or a connection: `reason` is `rate` (token bucket, 429),
/// `concurrency` (requests in flight per key, 429), `in_flight` (the whole gateway, 503) or
/// `connections` (the connection cap, 503).
pub fn gateway_refused(reason: &'static str) {
    global()
        .gateway_refused
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

#[cfg(test)]
mod tests;
