//! The activation families (OpenWhisk's user-events names: activations, cold starts, status,
//! wait/init/duration histograms, memory) and the per-action handle cache of the hot path:
//! an action's label sets are made once (on its first activation with a given initiator,
//! kind and memory) and its counters and histograms kept, so recording an activation is a
//! read-locked map lookup by the borrowed action path and a few atomic updates, no
//! allocation.

use crate::{latency_histogram, HistogramFamily};
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;

/// Actions whose handles are kept; past it, an action's handles are looked up in the
/// families each time (a few allocations per activation, still correct).
const CACHED_ACTIONS: usize = 10_000;

/// OpenWhisk's status words, by status code (0 success .. 3 whisk error).
pub const STATUS_WORDS: [&str; 4] = [
    "success",
    "application_error",
    "action_developer_error",
    "whisk_internal_error",
];

/// One ended activation, as the invoker records it.
#[derive(Debug, Clone, Copy)]
pub struct ActivationEvent<'a> {
    /// The namespace that invoked it (OpenWhisk's `initiator`).
    pub initiator: &'a str,
    /// The action's fully qualified path, `namespace/[package/]name`.
    pub path: &'a str,
    /// Its kind (`python:3`, `blackbox`, ...).
    pub kind: &'a str,
    /// Its memory limit, MB.
    pub memory_mb: u64,
    /// Its status code: 0 success, 1 application error, 2 developer error, 3 whisk error.
    pub status: u8,
    /// From acceptance by the controller to the start of its run, ms.
    pub wait_ms: i64,
    /// Its `/init`, ms, on a cold start.
    pub init_ms: Option<i64>,
    /// Its run, ms.
    pub duration_ms: i64,
}

impl ActivationEvent<'_> {
    /// `(namespace, action)` of the path (the whole path as the action when it has no `/`).
    fn split(&self) -> (&str, &str) {
        self.path.split_once('/').unwrap_or(("", self.path))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActivationLabels {
    namespace: String,
    initiator: String,
    action: String,
    kind: String,
    memory: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    namespace: String,
    initiator: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    namespace: String,
    initiator: String,
    action: String,
    status: &'static str,
}

/// The handles of one (action, initiator, kind, memory).
struct Handles {
    initiator: Box<str>,
    kind: Box<str>,
    memory_mb: u64,
    activations: Counter,
    cold_starts: Counter,
    status: [Counter; 4],
    wait: Histogram,
    init: Histogram,
    duration: Histogram,
}

impl Handles {
    fn matches(&self, e: &crate::ActivationEvent<'_>) -> bool {
        &*self.initiator == e.initiator && &*self.kind == e.kind && self.memory_mb == e.memory_mb
    }

    fn record(&self, e: &crate::ActivationEvent<'_>) {
        self.activations.inc();
        if let Some(init) = e.init_ms {
            self.cold_starts.inc();
            self.init.observe(ms(init));
        }
        self.wait.observe(ms(e.wait_ms));
        self.duration.observe(ms(e.duration_ms));
        self.status[usize::from(e.status.min(3))].inc();
    }
}

fn ms(v: i64) -> f64 {
    v.max(0) as f64 / 1000.0
}

/// The activation families and the handle cache.
pub(crate) struct Families {
    activations: Family<ActivationLabels, Counter>,
    cold_starts: Family<ActionLabels, Counter>,
    status: Family<StatusLabels, Counter>,
    wait: HistogramFamily<ActionLabels>,
    init: HistogramFamily<ActionLabels>,
    duration: HistogramFamily<ActionLabels>,
    memory: Family<ActionLabels, Gauge>,
    /// By action path; a few entries per path at most (initiators, redefinitions).
    cache: RwLock<HashMap<Box<str>, Vec<Arc<Handles>>>>,
}

impl Families {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let f = Self {
            activations: Family::default(),
            cold_starts: Family::default(),
            status: Family::default(),
            wait: Family::new_with_constructor(latency_histogram),
            init: Family::new_with_constructor(latency_histogram),
            duration: Family::new_with_constructor(latency_histogram),
            memory: Family::default(),
            cache: RwLock::default(),
        };
        registry.register(
            "openwhisk_action_activations",
            "Activations ended, by action",
            f.activations.clone(),
        );
        registry.register(
            "openwhisk_action_cold_starts",
            "Activations that initialized their container",
            f.cold_starts.clone(),
        );
        registry.register(
            "openwhisk_action_status",
            "Activations ended, by action and status",
            f.status.clone(),
        );
        registry.register(
            "openwhisk_action_wait_time_seconds",
            "Internal system hold time: from the controller's acceptance to the run's start",
            f.wait.clone(),
        );
        registry.register(
            "openwhisk_action_init_time_seconds",
            "Time it took to initialize an action's container (/init)",
            f.init.clone(),
        );
        registry.register(
            "openwhisk_action_duration_seconds",
            "Actual time the action code was running",
            f.duration.clone(),
        );
        registry.register(
            "openwhisk_action_memory",
            "Memory limit of the action's containers, MB",
            f.memory.clone(),
        );
        f
    }

    pub(crate) fn record(&self, e: &crate::ActivationEvent<'_>) {
        if let Some(list) = self.cache.read().get(e.path) {
            if let Some(h) = list.iter().find(|h| h.matches(e)) {
                h.record(e);
                return;
            }
        }
        let h = Arc::new(self.handles(e));
        h.record(e);
        let mut cache = self.cache.write();
        if cache.len() < CACHED_ACTIONS || cache.contains_key(e.path) {
            let list = cache.entry(e.path.into()).or_default();
            // A redefined action (other kind or memory) replaces its old handles.
            list.retain(|old| &*old.initiator != e.initiator);
            list.push(h);
        }
    }

    fn handles(&self, e: &crate::ActivationEvent<'_>) -> Handles {
        let (namespace, action) = e.split();
        let action_labels = ActionLabels {
            namespace: namespace.to_string(),
            initiator: e.initiator.to_string(),
            action: action.to_string(),
        };
        let status = |word: &'static str| {
            self.status.get_or_create_owned(&StatusLabels {
                namespace: namespace.to_string(),
                initiator: e.initiator.to_string(),
                action: action.to_string(),
                status: word,
            })
        };
        self.memory
            .get_or_create(&action_labels)
            .set(i64::try_from(e.memory_mb).unwrap_or(i64::MAX));
        Handles {
            initiator: e.initiator.into(),
            kind: e.kind.into(),
            memory_mb: e.memory_mb,
            activations: self.activations.get_or_create_owned(&ActivationLabels {
                namespace: namespace.to_string(),
                initiator: e.initiator.to_string(),
                action: action.to_string(),
                kind: e.kind.to_string(),
                memory: e.memory_mb.to_string(),
            }),
            cold_starts: self.cold_starts.get_or_create_owned(&action_labels),
            status: STATUS_WORDS.map(status),
            wait: self.wait.get_or_create_owned(&action_labels),
            init: self.init.get_or_create_owned(&action_labels),
            duration: self.duration.get_or_create_owned(&action_labels),
        }
    }
}
