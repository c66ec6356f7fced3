//! [`Activations`]: the activation records of a namespace, listed with filters, counted, or
//! read one at a time (404 when absent).

use std::sync::Arc;
use whisk_core::{Activation, ActivationId, WhiskError};
use whisk_store::{ActivationQuery, Store};

/// Activation records in the store; cheap to clone.
#[derive(Clone)]
pub struct Activations {
    store: Arc<dyn Store>,
}

impl Activations {
    /// Records in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The records of `namespace` matching `query`, newest first.
    pub async fn list(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>, WhiskError> {
        Ok(self.store.list_activations(namespace, query).await?)
    }

    /// How many records of `namespace` match `query`.
    pub async fn count(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<usize, WhiskError> {
        Ok(self.store.count_activations(namespace, query).await?)
    }

    /// Record `id` of `namespace`, or 404.
    pub async fn get(&self, namespace: &str, id: &ActivationId) -> Result<Activation, WhiskError> {
        self.store
            .get_activation(namespace, id)
            .await?
            .ok_or_else(WhiskError::not_found)
    }
}
