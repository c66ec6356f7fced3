//! [`MemoryBackend`]: groups and leases in this process, behind one mutex. The default backend,
//! used by `standalone` and tests; its state ends with the process.
//!
//! Bounded: a group is forgotten once its last instance leaves (every gang has a group of its
//! own, so keeping empty ones would grow without end); a group created again starts above every
//! version a forgotten group reached, so versions still never go back. At most `max_groups`
//! groups and `max_group_peers` instances per group: a register past either is refused
//! ([`DirectoryError::Unavailable`], a clear message) and counted ([`MemoryBackend::refused`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Groups with at least one instance.
    groups: HashMap<GroupKey, Group>,
    /// The highest version a forgotten (emptied) group reached: new groups start above it.
    floor: u64,
    /// Lease deadline per invoker.
    leases: HashMap<u32, Instant>,
}

impl State {
    /// Forgets `key` if it has no instance left.
    fn forget_if_empty(&mut self, key: &GroupKey) {
        if let Some(g) = self.groups.get(key) {
            if g.peers.is_empty() {
                self.floor = self.floor.max(g.version);
                self.groups.remove(key);
            }
        }
    }
}

/// Default most groups one directory holds.
pub const MAX_GROUPS_DEFAULT: usize = 100_000;
/// Default most instances in one group (a gang has at most 1024).
pub const MAX_GROUP_PEERS_DEFAULT: usize = 4096;

/// Registry state in this process.
pub struct MemoryBackend {
    state: Mutex<State>,
    max_groups: usize,
    max_group_peers: usize,
    refused: AtomicU64,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::with_limits(MAX_GROUPS_DEFAULT, MAX_GROUP_PEERS_DEFAULT)
    }
}

impl MemoryBackend {
    /// An empty registry with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty registry holding at most `max_groups` groups of at most `max_group_peers`
    /// instances each (at least 1 of each).
    pub fn with_limits(max_groups: usize, max_group_peers: usize) -> Self {
        Self {
            state: Mutex::default(),
            max_groups: max_groups.max(1),
            max_group_peers: max_group_peers.max(1),
            refused: AtomicU64::new(0),
        }
    }

    /// Groups held now (each with at least one instance).
    pub fn groups(&self) -> usize {
        self.state.lock().groups.len()
    }

    /// Registrations refused because a limit was reached.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self, what: String) -> DirectoryError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        DirectoryError::Unavailable(what)
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
        match st.groups.get(key) {
            None if st.groups.len() >= self.max_groups => {
                return Err(self.refuse(format!(
                    "the directory holds its most groups ({}); group {key} cannot be created",
                    self.max_groups
                )));
            }
            Some(g) if g.peers.len() >= self.max_group_peers && !g.peers.contains_key(&peer.id) => {
                return Err(self.refuse(format!(
                    "group {key} holds its most instances ({})",
                    self.max_group_peers
                )));
            }
            _ => {}
        }
        let deadline = st.leases.entry(peer.invoker_id).or_insert(now + lease);
        if *deadline <= now {
            *deadline = now + lease;
        }
        let floor = st.floor;
        let g = st.groups.entry(key.clone()).or_insert_with(|| Group {
            version: floor,
            peers: BTreeMap::new(),
        });
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
        let map = g.map(key);
        st.forget_if_empty(key);
        Ok((matches, map))
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
        for map in &changed {
            st.forget_if_empty(&GroupKey::new(map.namespace.clone(), map.group.clone()));
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

    async fn load_namespace(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        let st = self.state.lock();
        Ok(st
            .groups
            .iter()
            .filter(|(k, _)| k.namespace == namespace)
            .map(|(k, g)| g.map(k))
            .collect())
    }

    fn group_count(&self) -> Option<usize> {
        Some(self.groups())
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
