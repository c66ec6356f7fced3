//! [`RegistryBackend`]: where the registry keeps its state. The backend is the source of truth;
//! the [`crate::Registry`] in front of it validates requests and pushes every resulting
//! [`PeerMap`] to watchers. Two implementations: [`crate::memory::MemoryBackend`] (one process)
//! and [`crate::redis::RedisBackend`] (shared by restarts and by several directories).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::DirectoryError;
use crate::proto::{Peer, PeerMap};

/// A group of peers: instances see the peers of their own (namespace, group) only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    /// The OpenWhisk namespace.
    pub namespace: String,
    /// The group within the namespace.
    pub group: String,
}

impl GroupKey {
    /// The key of (`namespace`, `group`).
    pub fn new(namespace: impl Into<String>, group: impl Into<String>) -> Self {
        GroupKey {
            namespace: namespace.into(),
            group: group.into(),
        }
    }

    /// An empty map of this group at `version`.
    pub fn empty_map(&self, version: u64) -> PeerMap {
        PeerMap {
            namespace: self.namespace.clone(),
            group: self.group.clone(),
            version,
            peers: Vec::new(),
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.group)
    }
}

/// Something that happened in the backend outside this directory (another directory sharing
/// the same Redis changed a group, or the backend reconnected and notifications may be lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// This group changed elsewhere: reload it.
    Changed(GroupKey),
    /// Notifications may have been missed: reload every group being watched.
    Resync,
}

/// Storage of groups, peers, versions and leases. Every mutation returns the whole group after
/// it (maps are small), with `peers` sorted by id and a version that grows with every change
/// of that group and never goes back.
///
/// Inputs are validated by the [`crate::Registry`] before they get here.
#[async_trait]
pub trait RegistryBackend: Send + Sync + 'static {
    /// Adds `peer` to its group, replacing an entry with the same id. When its invoker holds
    /// no live lease, starts one of `lease` in the same atomic step: no entry is ever outside
    /// a lease, so an invoker that never sends a heartbeat loses its entries when it lapses.
    async fn register(
        &self,
        key: &GroupKey,
        peer: Peer,
        lease: Duration,
    ) -> Result<PeerMap, DirectoryError>;

    /// Removes instance `id` (only if it belongs to `activation_id`, when that is not empty).
    /// Returns whether it was removed, and the group after.
    async fn deregister(
        &self,
        key: &GroupKey,
        id: &str,
        activation_id: &str,
    ) -> Result<(bool, PeerMap), DirectoryError>;

    /// Renews (or starts) the lease of `invoker_id` for `ttl`. Returns true when no lease was
    /// held (a new lease).
    async fn renew_lease(&self, invoker_id: u32, ttl: Duration) -> Result<bool, DirectoryError>;

    /// Ends every lapsed lease, removing the instances of its invoker. Returns the groups that
    /// changed.
    async fn expire_leases(&self) -> Result<Vec<PeerMap>, DirectoryError>;

    /// The current state of one group (empty at version 0 if it never existed).
    async fn load(&self, key: &GroupKey) -> Result<PeerMap, DirectoryError>;

    /// Every group that has or had peers.
    async fn load_all(&self) -> Result<Vec<PeerMap>, DirectoryError>;

    /// The groups of `namespace` that have or had peers (default: [`Self::load_all`],
    /// filtered).
    async fn load_namespace(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        let mut all = self.load_all().await?;
        all.retain(|m| m.namespace == namespace);
        Ok(all)
    }

    /// The backend's notifications of changes made elsewhere; `None` when it has none (or they
    /// were already taken: there is one receiver).
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<BackendEvent>> {
        None
    }

    /// How many groups it holds, when it counts them in this process (the in-memory backend).
    fn group_count(&self) -> Option<usize> {
        None
    }
}
