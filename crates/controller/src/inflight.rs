//! The table of activations this controller placed and has not seen complete ([`Pending`]):
//! what each holds (its namespace's throttle slot, memory on its invoker), who waits for it,
//! when it counts as lost ([`ack_timeout`]), and the whisk-error record a lost one ends with
//! ([`lost_record`]). Freeing the slots is [`crate::services::Invocations`]'s.
//!
//! The table is capped ([`Pending::with_max`], the controller's `max_in_flight`): past it an
//! activation is refused with 503 before it is published, and [`Pending::refused`] counts it.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use whisk_core::{
    now_ms, Action, Activation, ActivationId, ActivationResponse, KeyValue, WhiskError,
};

/// Default most activations one controller keeps in flight.
pub const MAX_IN_FLIGHT_DEFAULT: usize = 100_000;

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

/// Why [`Pending::insert`] refused an entry (503), and the entry.
pub type Refused = Box<(WhiskError, InFlight)>;

/// Activations placed by this controller and not yet completed, by activation id.
pub struct Pending {
    map: Mutex<HashMap<String, InFlight>>,
    max: usize,
    refused: AtomicU64,
}

impl Default for Pending {
    fn default() -> Self {
        Self::with_max(MAX_IN_FLIGHT_DEFAULT)
    }
}

impl Pending {
    /// An empty table holding at most `max` activations (at least 1).
    pub fn with_max(max: usize) -> Self {
        Self {
            map: Mutex::default(),
            max: max.max(1),
            refused: AtomicU64::new(0),
        }
    }

    /// Adds activation `id`; refuses (503, counted) when the table is full. The entry is
    /// handed back with the error so its holder can free what it reserved.
    pub fn insert(&self, id: &ActivationId, entry: InFlight) -> Result<(), Refused> {
        let mut map = self.map.lock();
        if map.len() >= self.max {
            drop(map);
            self.refused.fetch_add(1, Ordering::Relaxed);
            let e = WhiskError::unavailable(format!(
                "Too many activations in flight on this controller (at most {}); try again later.",
                self.max
            ));
            return Err(Box::new((e, entry)));
        }
        map.insert(id.to_string(), entry);
        Ok(())
    }

    /// The most activations the table holds.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Activations refused because the table was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes activation `id` out of the table.
    pub fn remove(&self, id: &str) -> Option<InFlight> {
        self.map.lock().remove(id)
    }

    /// The namespace of activation `id`, if it is in the table.
    pub fn namespace_of(&self, id: &str) -> Option<String> {
        self.map.lock().get(id).map(|f| f.namespace.clone())
    }

    /// The activations of `namespace` in the table: id, action path and when accepted
    /// (epoch ms), oldest first.
    pub fn of_namespace(&self, namespace: &str) -> Vec<(String, String, i64)> {
        let mut v: Vec<_> = self
            .map
            .lock()
            .iter()
            .filter(|(_, f)| f.namespace == namespace)
            .map(|(id, f)| (id.clone(), f.origin.path.clone(), f.origin.accepted_at))
            .collect();
        v.sort_by_key(|e| e.2);
        v
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

    fn entry() -> InFlight {
        let put = r#"{"exec": {"kind": "python:3", "code": "x"}}"#;
        let put = whisk_core::entity::ActionPut::from_json(put.as_bytes()).unwrap();
        let fqn = whisk_core::names::FullyQualifiedName::parse("a", "guest").unwrap();
        let action = put.apply(&fqn, None, 0).unwrap();
        InFlight {
            namespace: "guest".into(),
            invoker: 0,
            memory_mb: 256,
            deadline: Instant::now(),
            waiter: None,
            origin: Origin::new("guest", "guest/a", &action),
        }
    }

    #[test]
    fn the_table_is_capped_and_counts_refusals() {
        let p = Pending::with_max(2);
        let ids: Vec<ActivationId> = (0..3).map(|_| ActivationId::generate()).collect();
        assert!(p.insert(&ids[0], entry()).is_ok());
        assert!(p.insert(&ids[1], entry()).is_ok());
        let (e, back) = *p.insert(&ids[2], entry()).unwrap_err();
        assert_eq!(e.kind.http_status(), 503);
        assert!(e.message.contains("at most 2"), "{}", e.message);
        assert_eq!((back.memory_mb, p.len(), p.refused()), (256, 2, 1));
        p.remove(ids[0].as_str()).unwrap();
        assert!(p.insert(&ids[2], entry()).is_ok());
    }

    #[test]
    fn ack_timeout_is_openwhisks() {
        assert_eq!(ack_timeout(1000), Duration::from_secs(180));
        assert_eq!(ack_timeout(300_000), Duration::from_secs(660));
    }
}
