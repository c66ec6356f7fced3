//! [`Triggers`]: triggers and rules in the store — one service, because a rule's status lives
//! in its trigger's document (the `rules` map), as in OpenWhisk. This file: triggers (read,
//! created or updated with their rules kept, deleted — their rules stay, orphaned), the
//! fires-per-minute throttle, and the trigger activation records. Rules, and the links they
//! keep in trigger documents, are in [`super::rules`].
//!
//! Every change of a trigger document reads it, changes it and writes it back with the
//! revision it read; a write that lost a race with another one (a rule enabled while the
//! trigger is updated) is retried on the new document, up to [`WRITE_ATTEMPTS`] times.

use crate::config::ControllerConfig;
use crate::throttle::{Limits, Throttles};
use serde_json::{json, Value};
use std::sync::Arc;
use whisk_core::trigger::{Trigger, TriggerPut};
use whisk_core::{now_ms, Activation, FullyQualifiedName, Identity, WhiskError};
use whisk_store::{EntityKind, Revisioned, Store, StoreError};

/// How often a trigger document is re-read and written again after losing a revision race.
pub const WRITE_ATTEMPTS: usize = 16;

/// Triggers and rules; cheap to clone.
#[derive(Clone)]
pub struct Triggers {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    /// Fires per minute per namespace (the in-flight half of these counters is unused).
    fires: Throttles,
    defaults: Limits,
}

/// The key of entity `name` of `namespace` in the store.
pub(super) fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Triggers {
    /// Triggers and rules of `store`, fires throttled by the limits of `config` (or a
    /// namespace's own).
    pub fn new(config: &ControllerConfig, store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                fires: Throttles::default(),
                defaults: Limits::defaults(config),
            }),
        }
    }

    /// Counts one fire of `identity`'s namespace, or answers 429 with OpenWhisk's message
    /// when the namespace fired its `firesPerMinute` in this minute already.
    pub fn admit_fire(&self, identity: &Identity) -> Result<(), WhiskError> {
        let limit = self.inner.defaults.of(&identity.limits).fires_per_minute;
        let ns = &identity.namespace;
        self.inner.fires.admit(ns, limit, u32::MAX)?;
        self.inner.fires.release(ns);
        Ok(())
    }

    /// Stores a trigger activation record.
    pub async fn record(&self, activation: &Activation) -> Result<(), WhiskError> {
        Ok(self.inner.store.put_activation(activation).await?)
    }

    /// The summaries of `namespace`'s triggers (`{namespace, name, version, publish,
    /// annotations, updated}`, as OpenWhisk lists them), most recently updated first.
    pub async fn list_triggers(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        let docs = self
            .inner
            .store
            .list_entities(EntityKind::Trigger, namespace, skip, limit)
            .await?;
        Ok(docs
            .into_iter()
            .map(|d| {
                json!({
                    "namespace": d.get("namespace"),
                    "name": d.get("name"),
                    "version": d.get("version"),
                    "publish": d.get("publish").cloned().unwrap_or(Value::Bool(false)),
                    "annotations": d.get("annotations").cloned().unwrap_or_else(|| json!([])),
                    "updated": d.get("updated"),
                })
            })
            .collect())
    }

    /// How many entities of `kind` (triggers or rules) `namespace` has.
    pub async fn count(&self, kind: EntityKind, namespace: &str) -> Result<usize, WhiskError> {
        Ok(self.inner.store.count_entities(kind, namespace).await?)
    }

    /// Trigger `ns/name` with its revision, if it exists.
    pub async fn find_trigger(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Revisioned<Trigger>>, WhiskError> {
        self.find(EntityKind::Trigger, namespace, name).await
    }

    /// Entity `ns/name` of `kind` as a `T`, with its revision, if it exists.
    pub(super) async fn find<T: serde::de::DeserializeOwned>(
        &self,
        kind: EntityKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Revisioned<T>>, WhiskError> {
        let key = key(namespace, name);
        Ok(whisk_store::get_typed(&*self.inner.store, kind, &key).await?)
    }

    /// Trigger `fqn`, or 404.
    pub async fn trigger(&self, fqn: &FullyQualifiedName) -> Result<Trigger, WhiskError> {
        self.find_trigger(fqn.namespace.as_str(), fqn.name.as_str())
            .await?
            .map(|r| r.doc)
            .ok_or_else(WhiskError::not_found)
    }

    /// Creates trigger `fqn` from `put`, or updates it when it exists and `overwrite` (else
    /// 409); an update keeps the trigger's rules. Answers the stored trigger.
    pub async fn put_trigger(
        &self,
        fqn: &FullyQualifiedName,
        put: TriggerPut,
        overwrite: bool,
    ) -> Result<Trigger, WhiskError> {
        let (ns, name) = (fqn.namespace.as_str(), fqn.name.as_str());
        let k = key(ns, name);
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self.find_trigger(ns, name).await?;
            if existing.is_some() && !overwrite {
                return Err(WhiskError::conflict());
            }
            let trigger = put.clone().apply(
                &fqn.namespace,
                &fqn.name,
                existing.as_ref().map(|r| &r.doc),
                now_ms(),
            )?;
            check_size(&trigger.parameters, "Parameters")?;
            check_size(&trigger.annotations, "Annotations")?;
            let doc = to_doc(&trigger)?;
            let rev = existing.as_ref().map(|r| r.rev.as_str());
            match self
                .inner
                .store
                .put_entity(EntityKind::Trigger, &k, &doc, rev)
                .await
            {
                Ok(_) => return Ok(trigger),
                Err(StoreError::Conflict) if rev.is_none() && !overwrite => {
                    return Err(WhiskError::conflict())
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WhiskError::concurrent_modification())
    }

    /// Deletes trigger `fqn` (404 when absent) and answers it. Its rules stay, orphaned:
    /// inactive, and refused activation until a trigger of that name exists again.
    pub async fn delete_trigger(&self, fqn: &FullyQualifiedName) -> Result<Trigger, WhiskError> {
        let (ns, name) = (fqn.namespace.as_str(), fqn.name.as_str());
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self
                .find_trigger(ns, name)
                .await?
                .ok_or_else(WhiskError::not_found)?;
            match self
                .inner
                .store
                .delete_entity(EntityKind::Trigger, &key(ns, name), Some(&existing.rev))
                .await
            {
                Ok(()) => return Ok(existing.doc),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(WhiskError::not_found()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(WhiskError::concurrent_modification())
    }

    /// Reads trigger `ns/name`, lets `change` edit it (answering whether it changed
    /// anything) and writes it back, again on a fresh copy when another write came first.
    /// `None` when the trigger does not exist.
    pub(super) async fn update_trigger(
        &self,
        namespace: &str,
        name: &str,
        mut change: impl FnMut(&mut Trigger) -> bool,
    ) -> Result<Option<Trigger>, WhiskError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(r) = self.find_trigger(namespace, name).await? else {
                return Ok(None);
            };
            let mut trigger = r.doc;
            if !change(&mut trigger) {
                return Ok(Some(trigger));
            }
            let doc = to_doc(&trigger)?;
            match self
                .inner
                .store
                .put_entity(
                    EntityKind::Trigger,
                    &key(namespace, name),
                    &doc,
                    Some(&r.rev),
                )
                .await
            {
                Ok(_) => return Ok(Some(trigger)),
                Err(StoreError::Conflict | StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(WhiskError::concurrent_modification())
    }
}

pub(super) fn to_doc<T: serde::Serialize>(entity: &T) -> Result<Value, WhiskError> {
    serde_json::to_value(entity).map_err(|e| WhiskError::internal(e.to_string()))
}

/// 413 when parameters or annotations are larger than OpenWhisk allows on an entity.
pub(super) fn check_size<T: serde::Serialize>(list: &T, what: &str) -> Result<(), WhiskError> {
    let limit = whisk_core::limits::PAYLOAD_MAX_BYTES;
    let size = serde_json::to_vec(list).map_or(0, |v| v.len());
    if size > limit {
        return Err(WhiskError::too_large(format!(
            "{what} larger than allowed: {size} > {limit} bytes."
        )));
    }
    Ok(())
}
