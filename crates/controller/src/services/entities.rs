//! [`Entities`]: the namespace's entities in the store — actions (read, created or updated,
//! deleted; refused when their blackbox image is not allowed or they are too large; in a
//! package only when it exists and is not a binding), packages and bindings ([`packages`]),
//! the action resolver every invoke goes through ([`resolve`]: entitlement across namespaces,
//! bindings, parameters merged package → binding → action → invoke), and the collections
//! listed generically (triggers, rules).
//!
//! Owns the [`ActionCache`] the invoke path reads through: every write or delete here
//! invalidates it, in this controller at once and in the others through the bus (see
//! [`crate::cache`]); the bus's invalidations reach [`Entities::on_invalidation`].

mod packages;
mod resolve;

pub use resolve::{ReadablePackage, Resolved, PARAMETERS_NOT_ALLOWED};

use crate::cache::{ActionCache, MalformedInvalidation, PackageCache, INVALIDATION_TOPIC};
use crate::config::ControllerConfig;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::task::TaskTracker;
use whisk_bus::Bus;
use whisk_core::entity::ActionPut;
use whisk_core::kinds::image_allowed;
use whisk_core::limits::{ACTION_MAX_BYTES, PAYLOAD_MAX_BYTES};
use whisk_core::{now_ms, Action, ErrorKind, FullyQualifiedName, WhiskError};
use whisk_store::{ActionStore, EntityKind, Revisioned, Store, StoreError};

/// Entities in the store, and the action cache; cheap to clone.
#[derive(Clone)]
pub struct Entities {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    actions: ActionCache,
    /// Packages and bindings, for the invoke path only (like actions).
    packages: PackageCache,
    blackbox_images: Vec<String>,
    /// Shared packages may be invoked but not read (`shared_packages_execute_only`).
    execute_only: bool,
    /// Where the invalidation publishes run (drained on shutdown).
    tasks: TaskTracker,
}

impl Entities {
    /// Entities of `store`; invalidations go out on `bus`, published in `tasks`.
    pub fn new(
        config: &ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        tasks: TaskTracker,
    ) -> Self {
        let instance = format!("controller{}-{:016x}", config.id, rand::random::<u64>());
        let actions = ActionCache::new(
            config.action_cache_size,
            config.action_cache_ttl,
            instance.clone(),
        );
        let packages =
            PackageCache::new(config.action_cache_size, config.action_cache_ttl, instance);
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                actions,
                packages,
                blackbox_images: config.blackbox_images.clone(),
                execute_only: config.shared_packages_execute_only,
                tasks,
            }),
        }
    }

    /// True when another namespace's shared packages may be invoked but not read.
    pub fn execute_only(&self) -> bool {
        self.inner.execute_only
    }

    /// Entities of `kind` in `namespace`, most recently updated first.
    pub async fn list(
        &self,
        kind: EntityKind,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        Ok(self
            .inner
            .store
            .list_entities(kind, namespace, skip, limit)
            .await?)
    }

    /// How many entities of `kind` `namespace` has.
    pub async fn count(&self, kind: EntityKind, namespace: &str) -> Result<usize, WhiskError> {
        Ok(self.inner.store.count_entities(kind, namespace).await?)
    }

    /// The summaries of `namespace`'s actions (corrupt documents skipped).
    pub async fn list_actions(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        let docs = self
            .list(EntityKind::Action, namespace, skip, limit)
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            match serde_json::from_value::<Action>(doc) {
                Ok(a) => out.push(a.summary()),
                Err(e) => {
                    tracing::warn!(error = %e, %namespace, "skipping a corrupt action document")
                }
            }
        }
        Ok(out)
    }

    /// The stored action `fqn` (never the cache), or 404.
    pub async fn action(&self, fqn: &FullyQualifiedName) -> Result<Revisioned<Action>, WhiskError> {
        self.inner
            .store
            .get_action(fqn)
            .await?
            .ok_or_else(WhiskError::not_found)
    }

    /// Creates `fqn` from `put`, or updates it when it exists and `overwrite` (else 409);
    /// answers the stored action.
    pub async fn put_action(
        &self,
        fqn: &FullyQualifiedName,
        put: ActionPut,
        overwrite: bool,
    ) -> Result<Action, WhiskError> {
        self.check_writable_package(fqn).await?;
        let store = &self.inner.store;
        let existing = store.get_action(fqn).await?;
        if existing.is_some() && !overwrite {
            return Err(WhiskError::conflict());
        }
        let action = put.apply(fqn, existing.as_ref().map(|r| &r.doc), now_ms())?;
        check_blackbox_image(&action, &self.inner.blackbox_images)?;
        let params_size = serde_json::to_vec(&action.parameters).map_or(0, |v| v.len());
        if params_size > PAYLOAD_MAX_BYTES {
            return Err(WhiskError::too_large(format!(
                "Parameters larger than allowed: {params_size} > {PAYLOAD_MAX_BYTES} bytes."
            )));
        }
        let doc = serde_json::to_value(&action).map_err(|e| WhiskError::internal(e.to_string()))?;
        let size = doc.to_string().len();
        if size > ACTION_MAX_BYTES {
            return Err(WhiskError::too_large(format!(
                "Action larger than allowed: {size} > {ACTION_MAX_BYTES} bytes."
            )));
        }
        let rev = existing.as_ref().map(|r| r.rev.as_str());
        match store
            .put_entity(EntityKind::Action, &fqn.to_string(), &doc, rev)
            .await
        {
            Ok(_) => {
                self.invalidate_action(fqn);
                Ok(action)
            }
            Err(StoreError::Conflict) if rev.is_none() => Err(WhiskError::conflict()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes action `fqn` (404 when absent); answers what was deleted.
    pub async fn delete_action(&self, fqn: &FullyQualifiedName) -> Result<Action, WhiskError> {
        self.check_writable_package(fqn).await?;
        let existing = self.action(fqn).await?;
        self.inner
            .store
            .delete_entity(EntityKind::Action, &fqn.to_string(), Some(&existing.rev))
            .await?;
        self.invalidate_action(fqn);
        Ok(existing.doc)
    }

    /// The action `fqn` through the cache (see [`ActionCache::get`]): what invokes read.
    pub async fn cached_action(
        &self,
        fqn: &FullyQualifiedName,
    ) -> Result<Option<Arc<Revisioned<Action>>>, StoreError> {
        self.inner.actions.get(self.inner.store.as_ref(), fqn).await
    }

    /// After `fqn` was written or deleted: forgets it here at once, and tells the other
    /// controllers in the background (a failed publish is logged; their TTL is the net).
    pub fn invalidate_action(&self, fqn: &FullyQualifiedName) {
        self.invalidate_key(fqn.to_string());
    }

    /// After the action or package `key` was written or deleted: forgets it in both caches
    /// here at once and tells the other controllers in the background.
    fn invalidate_key(&self, key: String) {
        let actions = &self.inner.actions;
        actions.invalidate(&key);
        self.inner.packages.invalidate(&key);
        let payload = actions.invalidation_message(&key);
        let bus = self.inner.bus.clone();
        self.inner.tasks.spawn(async move {
            if let Err(e) = bus.publish(INVALIDATION_TOPIC, payload).await {
                tracing::warn!(error = %e, action = %key, "publishing a cache invalidation failed; other controllers keep their copy until its TTL");
            }
        });
    }

    /// Applies an invalidation received from the bus (this controller's own are skipped).
    pub fn on_invalidation(&self, payload: &[u8]) -> Result<(), MalformedInvalidation> {
        self.inner.packages.on_message(payload)?;
        self.inner.actions.on_message(payload)
    }

    /// The action cache's `(hits, misses)` so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.inner.actions.stats()
    }
}

/// Refuses (403) a blackbox action whose image is not on the platform's list: an arbitrary
/// image is arbitrary code with the image's own user and files, chosen by the tenant.
fn check_blackbox_image(action: &Action, allowed: &[String]) -> Result<(), WhiskError> {
    let Some(image) = action.exec.image.as_deref() else {
        return Ok(());
    };
    if image_allowed(image, allowed) {
        return Ok(());
    }
    let list = if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    };
    Err(WhiskError::new(
        ErrorKind::Forbidden,
        format!(
            "The image '{image}' is not allowed for blackbox actions on this platform (allowed: {list})."
        ),
    ))
}
