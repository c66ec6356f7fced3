//! [`PeerDirectory`]: the seam the invoker uses to publish and follow peers, and the types of
//! its answers. Two implementations: the in-process `whisk_directory::Registry` (standalone:
//! no gRPC, no copies beyond the map itself) and the gRPC [`crate::DirectoryClient`] (a
//! separate directory service).

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::DirectoryError;
use crate::proto::{Peer, PeerMap};

/// A stream of whole maps of one group: the current one first, then one after every change.
pub type PeerMapStream = BoxStream<'static, PeerMap>;

/// Most groups [`PeerDirectory::groups`] answers for one namespace (the first ones by name).
pub const GROUPS_LIST_MAX: usize = 256;

/// The outcome of a deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deregistered {
    /// The group's version after the call.
    pub version: u64,
    /// Whether an instance was removed (false: it was not there, or belonged to another
    /// activation).
    pub removed: bool,
}

/// The outcome of a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease granted.
    pub ttl: Duration,
    /// True when no lease was held before: the first heartbeat, or one after the lease lapsed
    /// and the invoker's instances were removed (it should register them again).
    pub new_lease: bool,
}

/// Register, deregister, renew leases, and watch groups of peers.
#[async_trait]
pub trait PeerDirectory: Send + Sync {
    /// Adds (or replaces, by id) `peer` in (`namespace`, `group`). Returns the new version.
    async fn register(
        &self,
        namespace: &str,
        group: &str,
        peer: Peer,
    ) -> Result<u64, DirectoryError>;

    /// Removes instance `id` (only if it belongs to `activation_id`, when not empty).
    async fn deregister(
        &self,
        namespace: &str,
        group: &str,
        id: &str,
        activation_id: &str,
    ) -> Result<Deregistered, DirectoryError>;

    /// Renews the lease of `invoker_id` (`ttl` zero: the directory's default).
    async fn heartbeat(&self, invoker_id: u32, ttl: Duration) -> Result<Lease, DirectoryError>;

    /// The group's map now, then after every change. Every item is a whole map that replaces
    /// the previous one. (Through [`crate::DirectoryClient`], a reconnect starts again with a
    /// fresh snapshot, whose version may be lower if an in-memory directory restarted.)
    async fn watch(&self, namespace: &str, group: &str) -> Result<PeerMapStream, DirectoryError>;

    /// The groups of `namespace` that have instances now, each as its whole map, sorted by
    /// group; at most [`GROUPS_LIST_MAX`]. Read-only (the web console lists them).
    async fn groups(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError>;
}
