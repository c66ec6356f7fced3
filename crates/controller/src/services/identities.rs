//! [`Identities`]: who a request is — the `Authorization` header checked against the store's
//! identities through the [`IdentityCache`] — and `whisk admin`'s operations on identities
//! ([`crate::admin::execute`]), after which the keys they changed are forgotten at once.

use crate::admin::{self, AdminAnswer, AdminRequest};
use crate::auth::{parse_basic, IdentityCache, MISSING_MESSAGE};
use crate::config::ControllerConfig;
use std::sync::Arc;
use whisk_core::{ErrorKind, Identity, WhiskError};
use whisk_store::Store;

/// Authentication and identity administration; cheap to clone.
#[derive(Clone)]
pub struct Identities {
    store: Arc<dyn Store>,
    cache: Arc<IdentityCache>,
}

impl Identities {
    /// The identities of `store`, verified ones trusted for the configured TTL.
    pub fn new(config: &ControllerConfig, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: Arc::new(IdentityCache::new(config.identity_cache_ttl)),
        }
    }

    /// The identity owning `uuid:key`, or 401.
    pub async fn authenticate(&self, uuid: &str, key: &str) -> Result<Arc<Identity>, WhiskError> {
        self.cache
            .authenticate(self.store.as_ref(), uuid, key)
            .await
    }

    /// The identity an `Authorization` header value names, or 401 (also when there is none).
    pub async fn authenticate_header(
        &self,
        header: Option<&str>,
    ) -> Result<Arc<Identity>, WhiskError> {
        match parse_basic(header)? {
            None => Err(WhiskError::new(ErrorKind::Unauthorized, MISSING_MESSAGE)),
            Some((uuid, key)) => self.authenticate(&uuid, &key).await,
        }
    }

    /// Runs `request` on the store and forgets the cached identities it changed.
    pub async fn administer(&self, request: AdminRequest) -> Result<AdminAnswer, WhiskError> {
        let answer = admin::execute(self.store.as_ref(), request).await?;
        for uuid in &answer.changed {
            self.cache.invalidate(uuid);
        }
        Ok(answer)
    }
}
