//! [`MemoryBackend`]: groups and leases in this process, behind one mutex. The default backend,
//! used by `standalone` and tests; its state ends with the process.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::backend::{GroupKey, RegistryBackend};
use crate::error::DirectoryError;
use crate::proto::{Peer, PeerMap};

#[derive(Default)]
struct Group {
    version: u64,
    peers: BTreeMap<String, Peer>,
}

impl Group {
    fn map(&self, key: &GroupKey) -> PeerMap {
        PeerMap {
            namespace: key.namespace.clone(),
            group: key.group.clone(),
            version: self.version,
            peers: self.peers.values().cloned().collect(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Groups are kept once created, even when empty, so that their version never goes back.
    groups: HashMap<GroupKey, Group>,
    /// Lease deadline per invoker.
    leases: HashMap<u32, Instant>,
}

/// Registry state in this process.
#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

impl MemoryBackend {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RegistryBackend for MemoryBackend {
    async fn register(
        &self,
        key: &GroupKey,
        peer: Peer,
        lease: Duration,
    ) -> Result<PeerMap, DirectoryError> {
        let now = Instant::now();
        let mut st = self.state.lock();
        let deadline = st.leases.entry(peer.invoker_id).or_insert(now + lease);
        if *deadline <= now {
            *deadline = now + lease;
        }
        let g = st.groups.entry(key.clone()).or_default();
        g.peers.insert(peer.id.clone(), peer);
        g.version += 1;
        Ok(g.map(key))
    }

    async fn deregister(
        &self,
        key: &GroupKey,
        id: &str,
        activation_id: &str,
    ) -> Result<(bool, PeerMap), DirectoryError> {
        let mut st = self.state.lock();
        let Some(g) = st.groups.get_mut(key) else {
            return Ok((false, key.empty_map(0)));
        };
        let matches = g
            .peers
            .get(id)
            .is_some_and(|p| activation_id.is_empty() || p.activation_id == activation_id);
        if matches {
            g.peers.remove(id);
            g.version += 1;
        }
        Ok((matches, g.map(key)))
    }

    async fn renew_lease(&self, invoker_id: u32, ttl: Duration) -> Result<bool, DirectoryError> {
        let deadline = Instant::now() + ttl;
        Ok(self
            .state
            .lock()
            .leases
            .insert(invoker_id, deadline)
            .is_none())
    }

    async fn expire_leases(&self) -> Result<Vec<PeerMap>, DirectoryError> {
        let now = Instant::now();
        let mut st = self.state.lock();
        let lapsed: Vec<u32> = st
            .leases
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(inv, _)| *inv)
            .collect();
        if lapsed.is_empty() {
            return Ok(Vec::new());
        }
        for inv in &lapsed {
            st.leases.remove(inv);
        }
        let mut changed = Vec::new();
        for (key, g) in st.groups.iter_mut() {
            let before = g.peers.len();
            g.peers.retain(|_, p| !lapsed.contains(&p.invoker_id));
            if g.peers.len() != before {
                g.version += 1;
                changed.push(g.map(key));
            }
        }
        Ok(changed)
    }

    async fn load(&self, key: &GroupKey) -> Result<PeerMap, DirectoryError> {
        let st = self.state.lock();
        Ok(st
            .groups
            .get(key)
            .map(|g| g.map(key))
            .unwrap_or_else(|| key.empty_map(0)))
    }

    async fn load_all(&self) -> Result<Vec<PeerMap>, DirectoryError> {
        let st = self.state.lock();
        Ok(st.groups.iter().map(|(k, g)| g.map(k)).collect())
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
