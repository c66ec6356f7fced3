//! Persistence of entities (actions, later triggers, rules, packages), activation records and
//! identities behind one [`Store`] trait, with the embedded backend used by `standalone`.
//!
//! Layout:
//! - this file: the [`Store`] trait, [`StoreError`], [`EntityKind`], [`ActivationQuery`] and
//!   typed helpers over the generic entity methods.
//! - [`embedded`]: [`embedded::EmbeddedStore`], a redb database file.
//! - [`couch`]: [`couch::CouchStore`], CouchDB (or pouchdb-server) through couch_rs.
//! - [`EmbeddedHealth`] and [`CouchHealth`]: each backend's probe for `whisk status`.
//! - [`testsuite`]: the conformance suite every backend runs.

use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;
use whisk_core::{Action, Activation, ActivationId, FullyQualifiedName, Identity, WhiskError};

pub mod couch;
pub mod embedded;
pub mod testsuite;

pub use couch::{CouchConfig, CouchHealth, CouchStore};
pub use embedded::{EmbeddedHealth, EmbeddedStore};

/// A failure of the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Create of an existing document, or update with a stale revision.
    #[error("document conflict")]
    Conflict,
    /// No such document.
    #[error("document not found")]
    NotFound,
    /// The backend cannot be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored document could not be decoded.
    #[error("corrupt document: {0}")]
    Corrupt(String),
}

impl From<StoreError> for WhiskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => WhiskError::concurrent_modification(),
            StoreError::NotFound => WhiskError::not_found(),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                WhiskError::unavailable("The database is not available, try again later.")
            }
            StoreError::Corrupt(m) => {
                WhiskError::internal(format!("A stored document is corrupt: {m}"))
            }
        }
    }
}

/// The collections of named entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// Actions.
    Action,
    /// Triggers.
    Trigger,
    /// Rules.
    Rule,
    /// Packages.
    Package,
    /// Feed registrations (whisk-feeds), keyed `<provider>/<ns>/<trigger>`.
    Feed,
    /// API routes (`wsk api`): one document per base path of a namespace.
    Api,
}

impl EntityKind {
    /// The collection name, as in routes.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Action => "actions",
            EntityKind::Trigger => "triggers",
            EntityKind::Rule => "rules",
            EntityKind::Package => "packages",
            EntityKind::Feed => "feeds",
            EntityKind::Api => "apis",
        }
    }
}

/// A document with its revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Revisioned<T> {
    /// Opaque revision; changes on every write.
    pub rev: String,
    /// The document.
    pub doc: T,
}

/// Filters of `GET .../activations`.
#[derive(Debug, Clone, Default)]
pub struct ActivationQuery {
    /// Action name (`name` or `pkg/name`).
    pub name: Option<String>,
    /// Only activations that started at or after this epoch ms.
    pub since: Option<i64>,
    /// Only activations that started at or before this epoch ms.
    pub upto: Option<i64>,
    /// Skip this many (newest first).
    pub skip: usize,
    /// Return at most this many.
    pub limit: usize,
}

impl ActivationQuery {
    /// True when `a` passes the name and time filters (skip/limit aside).
    pub fn matches(&self, a: &Activation) -> bool {
        let name_ok = match &self.name {
            None => true,
            Some(n) if n.contains('/') => a
                .path()
                .map(|p| p.ends_with(&format!("/{n}")))
                .unwrap_or(false),
            Some(n) => &a.name == n,
        };
        name_ok && self.since.is_none_or(|s| a.start >= s) && self.upto.is_none_or(|u| a.start <= u)
    }
}

/// Where entities, activations and identities live.
///
/// Entity keys are fully qualified names without a leading slash (`ns/name`, `ns/pkg/name`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one entity.
    async fn get_entity(
        &self,
        kind: EntityKind,
        key: &str,
    ) -> Result<Option<Revisioned<Value>>, StoreError>;
    /// Writes one entity: creates it when `rev` is `None` ([`StoreError::Conflict`] if it
    /// exists), else replaces it when `rev` is the stored revision (else `Conflict`).
    /// Returns the new revision.
    async fn put_entity(
        &self,
        kind: EntityKind,
        key: &str,
        doc: &Value,
        rev: Option<&str>,
    ) -> Result<String, StoreError>;
    /// Deletes one entity ([`StoreError::NotFound`] if absent; `Conflict` on a stale `rev`).
    async fn delete_entity(
        &self,
        kind: EntityKind,
        key: &str,
        rev: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Entities of `namespace` (packaged ones included), most recently updated first.
    async fn list_entities(
        &self,
        kind: EntityKind,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError>;
    /// How many entities `namespace` has of `kind`.
    async fn count_entities(&self, kind: EntityKind, namespace: &str) -> Result<usize, StoreError>;

    /// Stores an activation record (visible to reads as soon as this returns).
    async fn put_activation(&self, activation: &Activation) -> Result<(), StoreError>;
    /// Reads an activation record of `namespace`.
    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError>;
    /// Activation records of `namespace` matching `query`, newest first.
    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>, StoreError>;
    /// How many activation records of `namespace` match `query` (skip/limit ignored).
    async fn count_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<usize, StoreError>;

    /// Finds the identity owning the key whose uuid part is `uuid`.
    async fn get_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError>;
    /// Creates or replaces an identity (keyed by uuid).
    async fn put_identity(&self, identity: &Identity) -> Result<(), StoreError>;
    /// Identities whose namespace is `namespace`.
    async fn identities_of_namespace(&self, namespace: &str) -> Result<Vec<Identity>, StoreError>;
    /// Removes the identity whose key's uuid is `uuid` ([`StoreError::NotFound`] if none).
    async fn delete_identity(&self, uuid: &str) -> Result<(), StoreError>;
    /// Every identity (administration only: `whisk admin user list`).
    async fn list_identities(&self) -> Result<Vec<Identity>, StoreError>;

    /// Makes every write so far durable (called on shutdown).
    async fn flush(&self) -> Result<(), StoreError>;
}

/// Typed access to actions over the generic entity methods.
#[async_trait]
pub trait ActionStore {
    /// Reads an action and its revision.
    async fn get_action(
        &self,
        fqn: &FullyQualifiedName,
    ) -> Result<Option<Revisioned<Action>>, StoreError>;
}

#[async_trait]
impl<S: Store + ?Sized> ActionStore for S {
    async fn get_action(
        &self,
        fqn: &FullyQualifiedName,
    ) -> Result<Option<Revisioned<Action>>, StoreError> {
        get_typed(self, EntityKind::Action, &fqn.to_string()).await
    }
}

/// Entity `key` of `kind` as a `T`, with its revision, if it exists (a document that is no
/// `T` is corrupt).
pub async fn get_typed<T: serde::de::DeserializeOwned, S: Store + ?Sized>(
    store: &S,
    kind: EntityKind,
    key: &str,
) -> Result<Option<Revisioned<T>>, StoreError> {
    let Some(r) = store.get_entity(kind, key).await? else {
        return Ok(None);
    };
    let doc = serde_json::from_value(r.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Some(Revisioned { rev: r.rev, doc }))
}
