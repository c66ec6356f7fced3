//! [`ControllerConfig`]: every setting of a controller, with OpenWhisk's defaults. Durations are
//! integer milliseconds in configuration files and environment variables.

use serde::Deserialize;
use std::time::Duration;
use whisk_core::limits;

/// Settings of one controller.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ControllerConfig {
    /// Controller id: consumes topic `completed<id>` and group `health<id>`.
    pub id: u32,
    /// Default per-namespace invocations per minute (an identity's limits override it).
    pub invocations_per_minute: u32,
    /// Default per-namespace activations in flight (an identity's limits override it).
    pub concurrent_invocations: u32,
    /// Default per-namespace trigger fires per minute.
    pub fires_per_minute: u32,
    /// Share of invokers (the last ones) that may run blackbox actions; 1.0 = all.
    pub blackbox_fraction: f64,
    /// Images a blackbox action may name (`*` matches any run of characters); creating or
    /// updating an action with any other image is refused with 403. Default: the project's
    /// own images, `whisk/*`. Invokers check their own list too (`docker.allowed_images`).
    pub blackbox_images: Vec<String>,
    /// An invoker without a ping for this long is offline.
    #[serde(with = "millis")]
    pub invoker_offline_after: Duration,
    /// How long a verified identity is trusted without asking the store again.
    #[serde(with = "millis")]
    pub identity_cache_ttl: Duration,
    /// Most actions the invoke path keeps in memory (0: no cache); see [`crate::cache`].
    pub action_cache_size: usize,
    /// How long a cached action is trusted without an invalidation, a safety net.
    #[serde(with = "millis")]
    pub action_cache_ttl: Duration,
    /// Most atomic actions one sequence runs (nested sequences inlined) and most components one
    /// composition invokes: OpenWhisk's `limits.actions.sequence.maxLength`.
    pub sequence_length: usize,
    /// Largest `limits.concurrency` of an action (activations one container runs at once):
    /// OpenWhisk's `limit_action_concurrency_max`. Applies to the whole process.
    pub action_concurrency_max: u64,
    /// When every healthy invoker is full, how long an activation waits for room before it is
    /// refused with 503 "System is overloaded, try again later." (0: refused at once).
    #[serde(with = "millis")]
    pub overload_wait: Duration,
    /// Most activations waiting for room at once; more are refused with 503 at once.
    pub overload_queue: usize,
    /// Most activations this controller keeps in flight (placed, not yet completed); more are
    /// refused with 503.
    pub max_in_flight: usize,
    /// OpenWhisk's `whisk.shared-packages-execute-only`: actions and packages shared by another
    /// namespace may be invoked and bound but not read (`GET` answers 403).
    pub shared_packages_execute_only: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            id: 0,
            invocations_per_minute: limits::INVOCATIONS_PER_MINUTE_DEFAULT,
            concurrent_invocations: limits::CONCURRENT_INVOCATIONS_DEFAULT,
            fires_per_minute: limits::FIRES_PER_MINUTE_DEFAULT,
            blackbox_fraction: 1.0,
            blackbox_images: vec!["whisk/*".into()],
            invoker_offline_after: Duration::from_secs(10),
            identity_cache_ttl: Duration::from_secs(10),
            action_cache_size: 1024,
            action_cache_ttl: Duration::from_secs(60),
            sequence_length: whisk_core::sequence::SEQUENCE_LENGTH_DEFAULT,
            action_concurrency_max: limits::CONCURRENCY_MAX,
            overload_wait: Duration::from_secs(1),
            overload_queue: 1024,
            max_in_flight: crate::inflight::MAX_IN_FLIGHT_DEFAULT,
            shared_packages_execute_only: false,
        }
    }
}

/// Durations as integer milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
