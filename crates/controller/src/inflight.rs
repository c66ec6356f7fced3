//! The table of activations this controller placed and has not seen complete ([`Pending`]):
//! what each holds (its namespace's throttle slot, memory on its invoker), who waits for it,
//! when it counts as lost ([`ack_timeout`]), and the whisk-error record a lost one ends with
//! ([`lost_record`]). Freeing the slots is [`crate::services::Invocations`]'s.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use whisk_core::{now_ms, Action, Activation, ActivationId, ActivationResponse, KeyValue};

/// Where a blocking request waits for the record (`None`: the completion carried none).
pub type Waiter = oneshot::Sender<Option<Activation>>;

/// One activation in flight.
pub struct InFlight {
    /// The namespace whose throttle slot it holds.
    pub namespace: String,
    /// The invoker it was published to.
    pub invoker: u32,
    /// The memory it holds there, MB.
    pub memory_mb: u64,
    /// When it counts as lost without a completion.
    pub deadline: Instant,
    /// The blocking request waiting for it, if any.
    pub waiter: Option<Waiter>,
    /// What its record is made of should it be lost.
    pub origin: Origin,
}

/// What the record of an activation lost with its invoker is made of.
pub struct Origin {
    subject: String,
    path: String,
    name: String,
    version: String,
    kind: String,
    limits: Value,
    accepted_at: i64,
}

impl Origin {
    /// An activation of `action` (at `path`) by `subject`, accepted now.
    pub fn new(subject: &str, path: &str, action: &Action) -> Self {
        Self {
            subject: subject.to_string(),
            path: path.to_string(),
            name: action.name.clone(),
            version: action.version.clone(),
            kind: action.exec.kind.clone(),
            limits: serde_json::to_value(action.limits).unwrap_or_default(),
            accepted_at: now_ms(),
        }
    }
}

/// Activations placed by this controller and not yet completed, by activation id.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<String, InFlight>>,
}

impl Pending {
    /// Adds activation `id`.
    pub fn insert(&self, id: &ActivationId, entry: InFlight) {
        self.map.lock().insert(id.to_string(), entry);
    }

    /// Takes activation `id` out of the table.
    pub fn remove(&self, id: &str) -> Option<InFlight> {
        self.map.lock().remove(id)
    }

    /// Nobody waits for activation `id` any more (its request answered 202).
    pub fn stop_waiting(&self, id: &str) {
        if let Some(f) = self.map.lock().get_mut(id) {
            f.waiter = None;
        }
    }

    /// Ids of the activations lost by `now`, with whether their invoker `is_offline` (else
    /// their deadline passed).
    pub fn lost(&self, now: Instant, is_offline: impl Fn(u32) -> bool) -> Vec<(String, bool)> {
        self.map
            .lock()
            .iter()
            .filter_map(|(id, f)| {
                let offline = is_offline(f.invoker);
                (offline || f.deadline <= now).then(|| (id.clone(), offline))
            })
            .collect()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `max(action timeout, 60 s) * 2 + 60 s`: after this a lost completion frees its slots.
pub fn ack_timeout(action_timeout_ms: u64) -> Duration {
    Duration::from_millis(action_timeout_ms.max(60_000) * 2 + 60_000)
}

/// The record of activation `id` of `namespace` that ended without a completion: a whisk
/// error saying `message`.
pub fn lost_record(
    id: ActivationId,
    namespace: String,
    origin: Origin,
    message: String,
) -> Activation {
    let o = origin;
    let end = now_ms();
    let annotation = |key: &str, value: Value| KeyValue {
        key: key.into(),
        value,
    };
    Activation {
        namespace,
        name: o.name,
        version: o.version,
        subject: o.subject,
        activation_id: id,
        start: o.accepted_at,
        end,
        duration: end - o.accepted_at,
        response: ActivationResponse::whisk_error(message),
        logs: vec![],
        annotations: vec![
            annotation("path", Value::String(o.path)),
            annotation("waitTime", Value::from(0)),
            annotation("kind", Value::String(o.kind)),
            annotation("timeout", Value::Bool(false)),
            annotation("limits", o.limits),
        ],
        publish: false,
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_timeout_is_openwhisks() {
        assert_eq!(ack_timeout(1000), Duration::from_secs(180));
        assert_eq!(ack_timeout(300_000), Duration::from_secs(660));
    }
}
