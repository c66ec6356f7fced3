//! One invocation end to end: throttle, choose an invoker, publish the `ActivationMessage`,
//! and (blocking) wait for its completion; plus the table of activations in flight, which
//! completions (or the active-ack timeout) clear, giving back throttle and invoker slots.

use crate::balancer::shard_hash;
use crate::service::Controller;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use whisk_core::{
    now_ms, Action, Activation, ActivationId, FullyQualifiedName, Identity, WhiskError,
};
use whisk_proto::{ActivationMessage, CompletionMessage, Message};

/// OpenWhisk's answer when no invoker can take an activation.
pub const OVERLOADED: &str = "System is overloaded, try again later.";

struct InFlight {
    namespace: String,
    invoker: u32,
    memory_mb: u64,
    deadline: Instant,
    waiter: Option<oneshot::Sender<Option<Activation>>>,
    origin: Origin,
}

/// What the record of an activation lost with its invoker is made of.
struct Origin {
    subject: String,
    path: String,
    name: String,
    version: String,
    kind: String,
    limits: Value,
    accepted_at: i64,
}

/// Activations placed by this controller and not yet completed, by activation id.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<String, InFlight>>,
}

impl Pending {
    /// How many.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }
    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How an invocation was answered.
#[derive(Debug)]
pub enum Invoked {
    /// Accepted; the record will appear later (non-blocking, or the wait timed out).
    Accepted(ActivationId),
    /// Completed within the wait.
    Completed(Box<Activation>),
}

/// What to invoke and how.
pub struct Invocation<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The action's name.
    pub fqn: &'a FullyQualifiedName,
    /// The action document.
    pub action: &'a Action,
    /// Merged parameters.
    pub content: Map<String, Value>,
    /// Wait for the result.
    pub blocking: bool,
    /// How long to wait when blocking.
    pub wait: Duration,
    /// Transaction id of the request.
    pub transaction_id: String,
    /// Size of the gang this invocation belongs to (0: none).
    pub gang_size: u32,
    /// Parent activation id (the gang's), if any.
    pub cause: Option<String>,
    /// The throttles already admitted it (gangs are admitted as a whole).
    pub preadmitted: bool,
}

/// `max(action timeout, 60 s) * 2 + 60 s`: after this a lost completion frees its slots.
pub fn ack_timeout(action_timeout_ms: u64) -> Duration {
    Duration::from_millis(action_timeout_ms.max(60_000) * 2 + 60_000)
}

impl Controller {
    /// Admits a gang of `n` invocations of `identity` at once, or answers 429 (throttles) or
    /// 503 (the healthy invokers lack the memory to run them all at once).
    pub fn admit_gang(
        &self,
        identity: &Identity,
        n: u32,
        memory_mb: u64,
    ) -> Result<(), WhiskError> {
        let free = self.invokers().free_total_mb();
        let need = u64::from(n) * memory_mb;
        if need > free {
            return Err(WhiskError::unavailable(format!(
                "A gang of {n} instances needs {need} MB at once but the healthy invokers have {free} MB free."
            )));
        }
        let (per_minute, concurrent) = self.throttle_limits(identity);
        self.throttles()
            .admit_n(&identity.namespace, n, per_minute, concurrent)
    }

    /// Invocations per minute and in flight allowed to `identity`'s namespace: its own limits,
    /// else the controller's defaults.
    fn throttle_limits(&self, identity: &Identity) -> (u32, u32) {
        let limits = identity.limits;
        (
            limits
                .invocations_per_minute
                .unwrap_or(self.config().invocations_per_minute),
            limits
                .concurrent_invocations
                .unwrap_or(self.config().concurrent_invocations),
        )
    }

    /// Runs `inv`: 429 when throttled, 503 when no invoker is healthy or the bus fails.
    pub async fn invoke(&self, inv: Invocation<'_>) -> Result<Invoked, WhiskError> {
        let ns = inv.identity.namespace.clone();
        if !inv.preadmitted {
            let (per_minute, concurrent) = self.throttle_limits(inv.identity);
            self.throttles().admit(&ns, per_minute, concurrent)?;
        }

        let path = inv.fqn.to_string();
        let memory_mb = inv.action.limits.memory;
        let blackbox = inv.action.exec.kind == "blackbox";
        let hash = shard_hash(&ns, &path);
        let Some(invoker) =
            self.invokers()
                .schedule(hash, memory_mb, blackbox, self.config().blackbox_fraction)
        else {
            self.throttles().release(&ns);
            return Err(WhiskError::unavailable(OVERLOADED));
        };

        let id = ActivationId::generate();
        let (tx, rx) = if inv.blocking {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.pending().map.lock().insert(
            id.to_string(),
            InFlight {
                namespace: ns.clone(),
                invoker,
                memory_mb,
                deadline: Instant::now() + ack_timeout(inv.action.limits.timeout),
                waiter: tx,
                origin: Origin {
                    subject: inv.identity.subject.clone(),
                    path: path.clone(),
                    name: inv.action.name.clone(),
                    version: inv.action.version.clone(),
                    kind: inv.action.exec.kind.clone(),
                    limits: serde_json::to_value(inv.action.limits).unwrap_or_default(),
                    accepted_at: now_ms(),
                },
            },
        );
        let msg = ActivationMessage {
            transaction_id: inv.transaction_id,
            activation_id: id.to_string(),
            subject: inv.identity.subject.clone(),
            namespace: ns.clone(),
            api_key: inv.identity.api_key(),
            action_path: path,
            action_version: inv.action.version.clone(),
            action: serde_json::to_vec(inv.action).unwrap_or_default(),
            blocking: inv.blocking,
            content: serde_json::to_vec(&inv.content).unwrap_or_default(),
            reply_to: self.reply_to().to_string(),
            accepted_at_ms: now_ms(),
            cause: inv.cause.clone().unwrap_or_default(),
            trace_context: HashMap::new(),
            gang_size: inv.gang_size,
        };
        let topic = whisk_proto::invoker_topic(invoker);
        if let Err(e) = self
            .bus()
            .publish(&topic, Bytes::from(msg.encode_to_vec()))
            .await
        {
            tracing::warn!(error = %e, %topic, "publishing an activation failed");
            self.finish(id.as_str());
            return Err(WhiskError::unavailable(OVERLOADED));
        }
        let Some(rx) = rx else {
            return Ok(Invoked::Accepted(id));
        };

        let waited = tokio::select! {
            r = tokio::time::timeout(inv.wait, rx) => r.ok().and_then(Result::ok).flatten(),
            _ = self.shutdown_token().cancelled() => None,
        };
        if let Some(activation) = waited {
            return Ok(Invoked::Completed(Box::new(activation)));
        }
        if let Some(f) = self.pending().map.lock().get_mut(id.as_str()) {
            f.waiter = None;
        }
        match self.store().get_activation(&ns, &id).await {
            Ok(Some(activation)) => Ok(Invoked::Completed(Box::new(activation))),
            Ok(None) => Ok(Invoked::Accepted(id)),
            Err(e) => {
                tracing::warn!(error = %e, activation = %id, "reading a timed-out activation failed");
                Ok(Invoked::Accepted(id))
            }
        }
    }

    /// Handles a completion: frees the slots and wakes the waiter, if any.
    pub(crate) fn complete(&self, msg: CompletionMessage) {
        let activation = match serde_json::from_slice::<Activation>(&msg.activation) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, activation = %msg.activation_id, "completion carries an unreadable activation record");
                None
            }
        };
        match self.finish(&msg.activation_id) {
            Some(Some(waiter)) => {
                let _ = waiter.send(activation);
            }
            Some(None) => {}
            None => {
                tracing::debug!(activation = %msg.activation_id, "completion of an activation not in flight here")
            }
        }
    }

    /// Removes an activation from the table and frees its slots; returns its waiter slot.
    #[allow(clippy::type_complexity)]
    fn finish(&self, id: &str) -> Option<Option<oneshot::Sender<Option<Activation>>>> {
        let entry = self.pending().map.lock().remove(id)?;
        self.throttles().release(&entry.namespace);
        self.invokers().release(entry.invoker, entry.memory_mb);
        Some(entry.waiter)
    }

    /// Frees the slots of activations whose completion never came.
    ///
    /// Activations of an invoker that went offline end at once with a whisk error record (so
    /// no accepted activation vanishes silently); others after the active-ack timeout.
    pub(crate) async fn expire_lost(&self) {
        let now = Instant::now();
        let lost: Vec<(String, bool)> = self
            .pending()
            .map
            .lock()
            .iter()
            .filter_map(|(id, f)| {
                let offline = self.invokers().is_offline(f.invoker);
                (offline || f.deadline <= now).then(|| (id.clone(), offline))
            })
            .collect();
        for (id, offline) in lost {
            let Some(entry) = self.pending().map.lock().remove(&id) else {
                continue;
            };
            self.throttles().release(&entry.namespace);
            self.invokers().release(entry.invoker, entry.memory_mb);
            let message = if offline {
                format!("The invoker running this activation (invoker{}) stopped responding; the activation did not complete.", entry.invoker)
            } else {
                "No completion arrived within the active-ack timeout; the activation did not complete.".to_string()
            };
            tracing::warn!(activation = %id, invoker = entry.invoker, "{message}");
            let Ok(activation_id) = ActivationId::parse(&id) else {
                continue;
            };
            let o = entry.origin;
            let end = now_ms();
            let record = Activation {
                namespace: entry.namespace.clone(),
                name: o.name,
                version: o.version,
                subject: o.subject,
                activation_id,
                start: o.accepted_at,
                end,
                duration: end - o.accepted_at,
                response: whisk_core::ActivationResponse::whisk_error(message),
                logs: vec![],
                annotations: vec![
                    whisk_core::KeyValue {
                        key: "path".into(),
                        value: Value::String(o.path),
                    },
                    whisk_core::KeyValue {
                        key: "waitTime".into(),
                        value: Value::from(0),
                    },
                    whisk_core::KeyValue {
                        key: "kind".into(),
                        value: Value::String(o.kind),
                    },
                    whisk_core::KeyValue {
                        key: "timeout".into(),
                        value: Value::Bool(false),
                    },
                    whisk_core::KeyValue {
                        key: "limits".into(),
                        value: o.limits,
                    },
                ],
                publish: false,
                cause: None,
            };
            // A record the invoker stored before it died wins over this one.
            match self
                .store()
                .get_activation(&entry.namespace, &record.activation_id)
                .await
            {
                Ok(Some(existing)) => {
                    if let Some(w) = entry.waiter {
                        let _ = w.send(Some(existing));
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading a lost activation failed"),
            }
            if let Err(e) = self.store().put_activation(&record).await {
                tracing::error!(error = %e, activation = %id, "storing the record of a lost activation failed");
            }
            if let Some(w) = entry.waiter {
                let _ = w.send(Some(record));
            }
        }
    }
}

/// Merges `body` over the action's parameters; with annotation `final: true`, a body may not
/// redefine a parameter the action sets.
pub fn merge_parameters(
    action: &Action,
    body: Map<String, Value>,
) -> Result<Map<String, Value>, WhiskError> {
    let mut merged = whisk_core::entity::to_object(&action.parameters);
    let is_final =
        whisk_core::entity::lookup(&action.annotations, "final") == Some(&Value::Bool(true));
    if is_final
        && body
            .keys()
            .any(|k| merged.get(k).is_some_and(|v| !v.is_null()))
    {
        return Err(WhiskError::bad_request(
            "Request defines parameters that are not allowed (e.g., reserved properties).",
        ));
    }
    merged.extend(body);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use whisk_core::entity::ActionPut;

    fn action(body: &str) -> Action {
        let fqn = FullyQualifiedName::parse("a", "guest").unwrap();
        ActionPut::from_json(body.as_bytes())
            .unwrap()
            .apply(&fqn, None, 0)
            .unwrap()
    }

    #[test]
    fn body_overrides_parameters_unless_final() {
        let a = action(
            r#"{"exec":{"kind":"python:3","code":"x"},"parameters":[{"key":"n","value":1},{"key":"m","value":2}]}"#,
        );
        let body = json!({"n": 5, "k": 3}).as_object().unwrap().clone();
        let merged = merge_parameters(&a, body.clone()).unwrap();
        assert_eq!(Value::Object(merged), json!({"n": 5, "m": 2, "k": 3}));
        let f = action(
            r#"{"exec":{"kind":"python:3","code":"x"},"parameters":[{"key":"n","value":1}],"annotations":[{"key":"final","value":true}]}"#,
        );
        assert!(merge_parameters(&f, body).is_err());
    }

    #[test]
    fn ack_timeout_is_openwhisks() {
        assert_eq!(ack_timeout(1000), Duration::from_secs(180));
        assert_eq!(ack_timeout(300_000), Duration::from_secs(660));
    }
}
