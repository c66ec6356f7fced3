//! [`Invocations`]: one invocation end to end — throttle, choose an invoker, publish the
//! `ActivationMessage` (a reference to the action: its path and revision, never its code), and
//! (blocking) wait for its completion — and what ends activations in
//! flight: completions from the bus, or [`Invocations::expire_lost`] when an invoker went
//! silent or the active-ack timeout passed; either gives back the throttle and invoker slots.
//! Owns the throttles, the invokers' health (fed by pings) and the table of activations in
//! flight.

use crate::balancer::{shard_hash, Placement};
use crate::config::ControllerConfig;
use crate::health::Invokers;
use crate::inflight::{ack_timeout, lost_record, InFlight, Origin, Pending, Waiter};
use crate::throttle::{Limits, Throttles};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use whisk_bus::Bus;
use whisk_core::{
    now_ms, Action, Activation, ActivationId, FullyQualifiedName, Identity, WhiskError,
};
use whisk_proto::{ActivationMessage, CompletionMessage, Message, PingMessage};
use whisk_store::Store;

/// OpenWhisk's answer when no invoker can take an activation.
pub const OVERLOADED: &str = "System is overloaded, try again later.";

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
    /// Its store revision: with `fqn`, the reference the activation message carries (the
    /// invoker reads the document itself through its action cache).
    pub revision: &'a str,
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
    /// The package binding the action is invoked through (`ns/binding`), if any: the
    /// record's `binding` annotation.
    pub binding: Option<String>,
}

/// Invoking, invokers and throttles; cheap to clone.
#[derive(Clone)]
pub struct Invocations {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    invokers: Invokers,
    throttles: Throttles,
    pending: Pending,
    defaults: Limits,
    blackbox_fraction: f64,
    /// This controller's completion topic.
    reply_to: String,
    /// Ends the waits of blocking invocations.
    shutdown: CancellationToken,
}

impl Invocations {
    /// Publishes on `bus`, reads records of timed-out waits from `store`, stops waiting when
    /// `shutdown` is cancelled.
    pub fn new(
        config: &ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                invokers: Invokers::new(config.invoker_offline_after)
                    .with_overload_queue(config.overload_wait, config.overload_queue),
                throttles: Throttles::default(),
                pending: Pending::with_max(config.max_in_flight),
                defaults: Limits::defaults(config),
                blackbox_fraction: config.blackbox_fraction,
                reply_to: whisk_proto::completion_topic(config.id),
                shutdown,
            }),
        }
    }

    /// The topic completions for this controller arrive on.
    pub fn reply_to(&self) -> &str {
        &self.inner.reply_to
    }

    /// The invokers as their pings describe them.
    pub fn invokers(&self) -> &Invokers {
        &self.inner.invokers
    }

    /// Records an invoker's health ping; `false` when it is malformed.
    pub fn on_ping(&self, ping: &PingMessage) -> bool {
        self.inner.invokers.on_ping(ping)
    }

    /// The controller's default limits.
    pub fn default_limits(&self) -> Limits {
        self.inner.defaults
    }

    /// The limits of `identity`'s namespace: its own, else the controller's defaults.
    pub fn limits(&self, identity: &Identity) -> Limits {
        self.inner.defaults.of(&identity.limits)
    }

    /// Activations placed by this controller that have not completed yet.
    pub fn in_flight(&self) -> usize {
        self.inner.pending.len()
    }

    /// The namespace of activation `id` when this controller placed it and has not seen it
    /// end.
    pub fn placed_here(&self, id: &str) -> Option<String> {
        self.inner.pending.namespace_of(id)
    }

    /// The activations of `namespace` this controller placed and has not seen end: id,
    /// action path and when accepted (epoch ms), oldest first.
    pub fn running(&self, namespace: &str) -> Vec<(String, String, i64)> {
        self.inner.pending.of_namespace(namespace)
    }

    /// Admits a gang of `n` invocations of `identity` at once, or answers 429 (throttles) or
    /// 503 (the healthy invokers lack the memory to run them all at once).
    pub fn admit_gang(
        &self,
        identity: &Identity,
        n: u32,
        memory_mb: u64,
    ) -> Result<(), WhiskError> {
        let room = self.inner.invokers.room_for(memory_mb);
        if u64::from(n) > room {
            let need = u64::from(n) * memory_mb;
            return Err(WhiskError::unavailable(format!(
                "A gang of {n} instances needs {need} MB at once but the healthy invokers have room for {room} of them."
            )));
        }
        let limits = self.limits(identity);
        self.inner.throttles.admit_n(
            &identity.namespace,
            n,
            limits.invocations_per_minute,
            limits.concurrent_invocations,
        )
    }

    /// Admits a sequence or composition of `identity` as OpenWhisk does: it counts once toward
    /// the invocations per minute and is refused (429) when the namespace is at either limit,
    /// but holds no slot in flight itself; each of its steps does ([`Invocations::occupy`]).
    pub fn admit_composite(&self, identity: &Identity) -> Result<(), WhiskError> {
        let limits = self.limits(identity);
        let ns = &identity.namespace;
        let t = &self.inner.throttles;
        t.admit(
            ns,
            limits.invocations_per_minute,
            limits.concurrent_invocations,
        )?;
        t.release(ns);
        Ok(())
    }

    /// Takes a slot in flight for a step of an admitted sequence or composition, unchecked;
    /// invoke it `preadmitted` (its completion gives the slot back).
    pub fn occupy(&self, identity: &Identity) {
        self.inner.throttles.occupy(&identity.namespace);
    }

    /// Runs `inv`: 429 when throttled, 503 when no invoker is healthy or the bus fails.
    ///
    /// Traced as the span `invoke` (activation id, namespace, action; it covers throttles
    /// and the wait) with `placement` and `publish` inside; the activation message carries the
    /// `publish` span's context (or the caller's, passed through, when not exporting).
    pub async fn invoke(&self, inv: Invocation<'_>) -> Result<Invoked, WhiskError> {
        let span = tracing::trace_span!(
            "invoke",
            whisk.activation.id = tracing::field::Empty,
            whisk.namespace = %inv.identity.namespace,
            whisk.action = %inv.fqn,
            whisk.gang.size = inv.gang_size,
        );
        self.invoke_in(inv, &span).instrument(span.clone()).await
    }

    async fn invoke_in(
        &self,
        inv: Invocation<'_>,
        span: &tracing::Span,
    ) -> Result<Invoked, WhiskError> {
        let me = &self.inner;
        let ns = inv.identity.namespace.clone();
        if !inv.preadmitted {
            let limits = self.limits(inv.identity);
            me.throttles.admit(
                &ns,
                limits.invocations_per_minute,
                limits.concurrent_invocations,
            )?;
        }

        let path = inv.fqn.to_string();
        let a = inv.action;
        let memory_mb = whisk_core::limits::activation_share_mb(
            a.limits.memory,
            a.limits.concurrency,
            &a.exec.kind,
            a.exec.image.as_deref(),
        );
        let blackbox = inv.action.exec.kind == "blackbox";
        let hash = shard_hash(&ns, &path);
        let gang = inv.gang_size > 0;
        let placement = Placement::of(inv.content.get(crate::balancer::PLACEMENT_PARAM));
        let Some(invoker) = me
            .invokers
            .place(
                hash,
                memory_mb,
                blackbox,
                me.blackbox_fraction,
                gang,
                placement,
            )
            .instrument(tracing::trace_span!("placement"))
            .await
        else {
            me.throttles.release(&ns);
            return Err(WhiskError::unavailable(OVERLOADED));
        };

        let id = ActivationId::generate();
        span.record("whisk.activation.id", id.as_str());
        let (tx, rx) = if inv.blocking {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let entry = InFlight {
            namespace: ns.clone(),
            invoker,
            memory_mb,
            deadline: Instant::now() + ack_timeout(inv.action.limits.timeout),
            waiter: tx,
            origin: Origin::new(&inv.identity.subject, &path, inv.action),
        };
        if let Err(refused) = me.pending.insert(&id, entry) {
            let (e, entry) = *refused;
            self.release(&entry);
            return Err(e);
        }
        let msg = ActivationMessage {
            transaction_id: inv.transaction_id,
            activation_id: id.to_string(),
            subject: inv.identity.subject.clone(),
            namespace: ns.clone(),
            api_key: inv.identity.api_key(),
            action_path: path,
            action_version: inv.action.version.clone(),
            action_revision: inv.revision.to_string(),
            memory_mb,
            // A reference, not the document: see `action_revision`.
            action: Vec::new(),
            blocking: inv.blocking,
            content: serde_json::to_vec(&inv.content).unwrap_or_default(),
            reply_to: me.reply_to.clone(),
            accepted_at_ms: now_ms(),
            cause: inv.cause.clone().unwrap_or_default(),
            trace_context: HashMap::new(),
            gang_size: inv.gang_size,
            binding: inv.binding.clone().unwrap_or_default(),
        };
        let topic = whisk_proto::invoker_topic(invoker);
        let publish = tracing::trace_span!("publish", otel.kind = "producer", messaging.destination.name = %topic);
        let mut msg = msg;
        let mut headers = Vec::new();
        if let Some(cx) = publish.in_scope(whisk_telemetry::current_context) {
            whisk_telemetry::propagation::inject_map(&cx, &mut msg.trace_context);
            whisk_telemetry::propagation::inject_pairs(&cx, &mut headers);
        }
        if let Err(e) = me
            .bus
            .publish_with_headers(&topic, Bytes::from(msg.encode_to_vec()), headers)
            .instrument(publish)
            .await
        {
            tracing::warn!(error = %e, %topic, "publishing an activation failed");
            self.finish(id.as_str());
            return Err(WhiskError::unavailable(OVERLOADED));
        }
        whisk_metrics::placed(1);
        let Some(rx) = rx else {
            return Ok(Invoked::Accepted(id));
        };

        let waited = tokio::select! {
            r = tokio::time::timeout(inv.wait, rx) => r.ok().and_then(Result::ok).flatten(),
            _ = me.shutdown.cancelled() => None,
        };
        if let Some(activation) = waited {
            return Ok(Invoked::Completed(Box::new(activation)));
        }
        me.pending.stop_waiting(id.as_str());
        match me.store.get_activation(&ns, &id).await {
            Ok(Some(activation)) => Ok(Invoked::Completed(Box::new(activation))),
            Ok(None) => Ok(Invoked::Accepted(id)),
            Err(e) => {
                tracing::warn!(error = %e, activation = %id, "reading a timed-out activation failed");
                Ok(Invoked::Accepted(id))
            }
        }
    }

    /// Handles a completion: frees the slots and wakes the waiter, if any.
    pub fn on_completion(&self, msg: CompletionMessage) {
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
    fn finish(&self, id: &str) -> Option<Option<Waiter>> {
        let entry = self.inner.pending.remove(id)?;
        self.release(&entry);
        Some(entry.waiter)
    }

    /// Gives back the throttle slot and invoker memory `entry` held.
    fn release(&self, entry: &InFlight) {
        self.inner.throttles.release(&entry.namespace);
        self.inner.invokers.release(entry.invoker, entry.memory_mb);
    }

    /// Frees the slots of activations whose completion never came.
    ///
    /// Activations of an invoker that went offline end at once with a whisk error record (so
    /// no accepted activation vanishes silently); others after the active-ack timeout.
    pub async fn expire_lost(&self) {
        let me = &self.inner;
        let lost = me
            .pending
            .lost(Instant::now(), |invoker| me.invokers.is_offline(invoker));
        for (id, offline) in lost {
            let Some(entry) = me.pending.remove(&id) else {
                continue;
            };
            self.release(&entry);
            let message = if offline {
                format!("The invoker running this activation (invoker{}) stopped responding; the activation did not complete.", entry.invoker)
            } else {
                "No completion arrived within the active-ack timeout; the activation did not complete.".to_string()
            };
            tracing::warn!(activation = %id, invoker = entry.invoker, "{message}");
            let Ok(activation_id) = ActivationId::parse(&id) else {
                continue;
            };
            let record = lost_record(activation_id, entry.namespace, entry.origin, message);
            // A record the invoker stored before it died wins over this one.
            match me
                .store
                .get_activation(&record.namespace, &record.activation_id)
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
            if let Err(e) = me.store.put_activation(&record).await {
                tracing::error!(error = %e, activation = %id, "storing the record of a lost activation failed");
            }
            if let Some(w) = entry.waiter {
                let _ = w.send(Some(record));
            }
        }
    }
}
