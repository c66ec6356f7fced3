//! System-wide limits and defaults, as OpenWhisk's `application.conf` sets them.

/// Default action timeout in milliseconds.
pub const TIMEOUT_DEFAULT_MS: u64 = 60_000;
/// Smallest allowed action timeout.
pub const TIMEOUT_MIN_MS: u64 = 100;
/// Largest allowed action timeout.
pub const TIMEOUT_MAX_MS: u64 = 300_000;
/// Default action memory in MB.
pub const MEMORY_DEFAULT_MB: u64 = 256;
/// Smallest allowed action memory in MB.
pub const MEMORY_MIN_MB: u64 = 128;
/// Largest allowed action memory in MB.
pub const MEMORY_MAX_MB: u64 = 512;
/// Default log limit in MB.
pub const LOGS_DEFAULT_MB: u64 = 10;
/// Largest log limit in MB.
pub const LOGS_MAX_MB: u64 = 10;
/// Default intra-container concurrency.
pub const CONCURRENCY_DEFAULT: u64 = 1;
/// Largest intra-container concurrency unless configured ([`set_concurrency_max`]): as
/// OpenWhisk deployments set `limit_action_concurrency_max`.
pub const CONCURRENCY_MAX: u64 = 500;

static CONCURRENCY_LIMIT: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(CONCURRENCY_MAX);

/// The platform's largest `limits.concurrency` (the controller's setting; at least 1).
pub fn concurrency_max() -> u64 {
    CONCURRENCY_LIMIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets the platform's largest `limits.concurrency` (at least 1), for this process.
pub fn set_concurrency_max(max: u64) {
    CONCURRENCY_LIMIT.store(max.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Memory one activation holds on its invoker, MB, for the balancer and the invoker's budget:
/// the action's memory, shared (rounded up) by the activations one container runs at once
/// when its kind takes several (`limits.concurrency`, [`crate::kinds::concurrent`]).
pub fn activation_share_mb(
    memory_mb: u64,
    concurrency: u64,
    kind: &str,
    image: Option<&str>,
) -> u64 {
    if concurrency > 1 && crate::kinds::concurrent(kind, image) {
        memory_mb.div_ceil(concurrency)
    } else {
        memory_mb
    }
}
/// Largest invocation payload (parameters) and result, in bytes.
pub const PAYLOAD_MAX_BYTES: usize = 1024 * 1024;
/// Largest action document (code included), in bytes.
pub const ACTION_MAX_BYTES: usize = 48 * 1024 * 1024;
/// Longest a blocking invoke waits before answering 202, in milliseconds.
pub const BLOCKING_WAIT_MAX_MS: u64 = 60_000;
/// Default page size of list routes.
pub const LIST_LIMIT_DEFAULT: usize = 30;
/// Largest page size of list routes.
pub const LIST_LIMIT_MAX: usize = 200;
/// Default per-namespace invocations per minute (OpenWhisk standalone).
pub const INVOCATIONS_PER_MINUTE_DEFAULT: u32 = 60;
/// Default per-namespace concurrent activations (OpenWhisk standalone).
pub const CONCURRENT_INVOCATIONS_DEFAULT: u32 = 30;
/// Default per-namespace trigger fires per minute.
pub const FIRES_PER_MINUTE_DEFAULT: u32 = 60;
