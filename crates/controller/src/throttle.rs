//! Per-namespace throttles, as OpenWhisk's entitlement applies them before an invoke:
//! invocations per minute (a fixed one-minute window) and activations in flight; and the
//! [`Limits`] they are checked against (an identity's own, else the controller's defaults).

use crate::config::ControllerConfig;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;
use whisk_core::{ErrorKind, UserLimits, WhiskError};

/// The limits of one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Invocations per minute.
    pub invocations_per_minute: u32,
    /// Activations in flight.
    pub concurrent_invocations: u32,
    /// Trigger fires per minute.
    pub fires_per_minute: u32,
}

impl Limits {
    /// The controller's defaults.
    pub fn defaults(config: &ControllerConfig) -> Self {
        Self {
            invocations_per_minute: config.invocations_per_minute,
            concurrent_invocations: config.concurrent_invocations,
            fires_per_minute: config.fires_per_minute,
        }
    }

    /// `user`'s own limits where it sets them, else these.
    pub fn of(&self, user: &UserLimits) -> Self {
        Self {
            invocations_per_minute: user
                .invocations_per_minute
                .unwrap_or(self.invocations_per_minute),
            concurrent_invocations: user
                .concurrent_invocations
                .unwrap_or(self.concurrent_invocations),
            fires_per_minute: user.fires_per_minute.unwrap_or(self.fires_per_minute),
        }
    }
}

const WINDOW_MS: u128 = 60_000;

#[derive(Default)]
struct Counters {
    window: u128,
    in_window: u32,
    in_flight: u32,
}

/// The throttle state of every namespace this controller has seen.
pub struct Throttles {
    epoch: Instant,
    namespaces: Mutex<HashMap<String, Counters>>,
}

impl Default for Throttles {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            namespaces: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttles {
    /// Admits one invocation of `namespace` (counting it against both limits) or answers 429.
    pub fn admit(
        &self,
        namespace: &str,
        per_minute: u32,
        concurrent: u32,
    ) -> Result<(), WhiskError> {
        self.admit_n(namespace, 1, per_minute, concurrent)
    }

    /// Admits `n` invocations at once (a gang: all or none) or answers 429.
    pub fn admit_n(
        &self,
        namespace: &str,
        n: u32,
        per_minute: u32,
        concurrent: u32,
    ) -> Result<(), WhiskError> {
        let window = self.epoch.elapsed().as_millis() / WINDOW_MS;
        let mut all = self.namespaces.lock();
        let c = all.entry(namespace.to_string()).or_default();
        if c.window != window {
            c.window = window;
            c.in_window = 0;
        }
        if c.in_window + n > per_minute {
            whisk_metrics::throttled(namespace, whisk_metrics::Throttle::Timed);
            return Err(WhiskError::new(
                ErrorKind::Throttled,
                format!(
                    "Too many requests in the last minute (count: {}, allowed: {per_minute}).",
                    c.in_window
                ),
            ));
        }
        if c.in_flight + n > concurrent {
            whisk_metrics::throttled(namespace, whisk_metrics::Throttle::Concurrent);
            return Err(WhiskError::new(
                ErrorKind::Throttled,
                format!(
                    "Too many concurrent requests in flight (count: {}, allowed: {concurrent}).",
                    c.in_flight
                ),
            ));
        }
        c.in_window += n;
        c.in_flight += n;
        Ok(())
    }

    /// Counts one more activation of `namespace` in flight without checking the limits: a
    /// step of a sequence or composition, which was admitted as a whole.
    pub fn occupy(&self, namespace: &str) {
        let mut all = self.namespaces.lock();
        all.entry(namespace.to_string()).or_default().in_flight += 1;
    }

    /// One activation of `namespace` is no longer in flight.
    pub fn release(&self, namespace: &str) {
        if let Some(c) = self.namespaces.lock().get_mut(namespace) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }

    /// Activations of `namespace` in flight now.
    pub fn in_flight(&self, namespace: &str) -> u32 {
        self.namespaces
            .lock()
            .get(namespace)
            .map_or(0, |c| c.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_then_concurrency() {
        let t = Throttles::default();
        t.admit("a", 2, 10).unwrap();
        t.admit("a", 2, 10).unwrap();
        let e = t.admit("a", 2, 10).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert!(e.message.contains("count: 2, allowed: 2"), "{}", e.message);
        t.admit("b", 100, 1).unwrap();
        let e = t.admit("b", 100, 1).unwrap_err();
        assert!(e
            .message
            .starts_with("Too many concurrent requests in flight (count: 1, allowed: 1)"));
        t.release("b");
        assert_eq!(t.in_flight("b"), 0);
        t.admit("b", 100, 1).unwrap();
    }
}
