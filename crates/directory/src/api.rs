//! [`PeerDirectory`]: the seam the invoker uses to publish and follow peers. Two
//! implementations: the in-process [`crate::Registry`] (standalone: no gRPC, no copies beyond
//! the map itself) and the gRPC [`crate::DirectoryClient`] (a separate directory service).

use std::time::Duration;

use async_trait::async_trait;

use crate::error::DirectoryError;
use crate::proto::Peer;
use crate::registry::{Deregistered, Lease, PeerMapStream, Registry};

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
}

#[async_trait]
impl PeerDirectory for Registry {
    async fn register(
        &self,
        namespace: &str,
        group: &str,
        peer: Peer,
    ) -> Result<u64, DirectoryError> {
        Registry::register(self, namespace, group, peer).await
    }

    async fn deregister(
        &self,
        namespace: &str,
        group: &str,
        id: &str,
        activation_id: &str,
    ) -> Result<Deregistered, DirectoryError> {
        Registry::deregister(self, namespace, group, id, activation_id).await
    }

    async fn heartbeat(&self, invoker_id: u32, ttl: Duration) -> Result<Lease, DirectoryError> {
        Registry::heartbeat(self, invoker_id, ttl).await
    }

    async fn watch(&self, namespace: &str, group: &str) -> Result<PeerMapStream, DirectoryError> {
        Registry::watch(self, namespace, group).await
    }
}
