//! [`Web`]: what web actions and API routes need beyond actions and invocations — the owner
//! of a namespace (web actions run on behalf of the identity that owns the action's
//! namespace, not of the caller), the namespace an API route URL names (its key's uuid or the
//! namespace itself), and the route documents of `wsk api` (one [`EntityKind::Api`] document
//! per base path of a namespace, holding the API's swagger).
//!
//! Owners are cached for the identity cache's TTL: a web action request reads no identity
//! from the store while its namespace is warm.

use crate::config::ControllerConfig;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_core::{Identity, WhiskError};
use whisk_store::{EntityKind, Revisioned, Store, StoreError};

/// Largest number of namespaces whose owner is cached (the cache is emptied beyond it).
const OWNERS_MAX: usize = 10_000;

/// Namespace owners and API route documents; cheap to clone.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    ttl: Duration,
    /// Namespace (or route key) → (owner, when it was read).
    owners: Mutex<HashMap<String, (Arc<Identity>, Instant)>>,
}

impl Web {
    /// Owners and routes of `store`.
    pub fn new(config: &ControllerConfig, store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                ttl: config.identity_cache_ttl,
                owners: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn cached(&self, key: &str) -> Option<Arc<Identity>> {
        let owners = self.inner.owners.lock();
        let (id, at) = owners.get(key)?;
        (at.elapsed() < self.inner.ttl).then(|| id.clone())
    }

    fn remember(&self, key: &str, id: Arc<Identity>) {
        let mut owners = self.inner.owners.lock();
        if owners.len() >= OWNERS_MAX {
            owners.clear();
        }
        owners.insert(key.to_string(), (id, Instant::now()));
    }

    /// An identity owning `namespace` (the first of its keys), or 404: a namespace nobody
    /// owns has no web actions.
    pub async fn owner(&self, namespace: &str) -> Result<Arc<Identity>, WhiskError> {
        if let Some(id) = self.cached(namespace) {
            return Ok(id);
        }
        let mut ids = self.inner.store.identities_of_namespace(namespace).await?;
        ids.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        let id = Arc::new(ids.into_iter().next().ok_or_else(WhiskError::not_found)?);
        self.remember(namespace, id.clone());
        Ok(id)
    }

    /// The owner of the namespace a route URL names: a key's uuid (what `wsk api create`
    /// prints) or the namespace's name; 404 when neither.
    pub async fn route_owner(&self, segment: &str) -> Result<Arc<Identity>, WhiskError> {
        let key = format!("uuid:{segment}");
        if let Some(id) = self.cached(&key) {
            return Ok(id);
        }
        if let Some(identity) = self.inner.store.get_identity(segment).await? {
            let id = Arc::new(identity);
            self.remember(&key, id.clone());
            return Ok(id);
        }
        self.owner(segment).await
    }

    /// The API of `namespace` at `basepath`, with its revision.
    pub async fn api(
        &self,
        namespace: &str,
        basepath: &str,
    ) -> Result<Option<Revisioned<Value>>, WhiskError> {
        Ok(self
            .inner
            .store
            .get_entity(EntityKind::Api, &api_key(namespace, basepath))
            .await?)
    }

    /// Writes the API of `namespace` at `basepath` (`rev`: the revision it replaces).
    pub async fn put_api(
        &self,
        namespace: &str,
        basepath: &str,
        doc: &Value,
        rev: Option<&str>,
    ) -> Result<(), WhiskError> {
        match self
            .inner
            .store
            .put_entity(EntityKind::Api, &api_key(namespace, basepath), doc, rev)
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict) => Err(WhiskError::concurrent_modification()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the API of `namespace` at `basepath`.
    pub async fn delete_api(
        &self,
        namespace: &str,
        basepath: &str,
        rev: &str,
    ) -> Result<(), WhiskError> {
        Ok(self
            .inner
            .store
            .delete_entity(EntityKind::Api, &api_key(namespace, basepath), Some(rev))
            .await?)
    }

    /// The APIs of `namespace`, most recently updated first.
    pub async fn apis(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        Ok(self
            .inner
            .store
            .list_entities(EntityKind::Api, namespace, skip, limit)
            .await?)
    }
}

/// The store key of an API: `ns/` followed by its base path without the leading `/`.
fn api_key(namespace: &str, basepath: &str) -> String {
    format!("{namespace}/{}", basepath.trim_start_matches('/'))
}
