//! [`Registry`]: the directory's model, free of any transport. It validates requests, hands
//! them to a [`RegistryBackend`], and pushes every resulting [`PeerMap`] to the watchers of that
//! group through one `tokio::sync::watch` channel per watched group (a slow watcher may skip
//! intermediate versions but always ends on the latest). Two background tasks live as long as
//! the registry: the lease sweeper, and the reader of the backend's change notifications.
//!
//! Choices:
//! - A duplicate instance id in a group **replaces** the old entry: a restarted instance (or a
//!   warm container reused under the same `instanceID`) registers again under its id.
//! - Versions count changes per group and never go back (also across restarts with Redis).
//!   Watchers only ever move forward: a map older than the one they hold is dropped.
//! - Leases are per invoker, and every entry lives under one: an invoker holds a lease from its
//!   first heartbeat, and a register from an invoker without a live lease starts one of the
//!   default length (300 ms). When a lease lapses, every instance registered by that invoker is
//!   removed within one sweep (≤ 50 ms); so an entry whose invoker never heartbeats expires.
//! - Bounded: at most `max_watchers` watch streams open at once (more are refused with
//!   [`DirectoryError::Unavailable`] and counted: [`Registry::watchers`],
//!   [`Registry::refused_watchers`]); groups and their instances are capped by the in-memory
//!   backend ([`crate::memory`]; a Redis backend is bounded by Redis's own memory settings).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backend::{BackendEvent, GroupKey, RegistryBackend};
use crate::config::{BackendKind, DirectoryConfig, RegistryOptions};
use crate::error::DirectoryError;
use crate::memory::{epoch_ms, MemoryBackend};
use crate::proto::{Peer, PeerMap};
use crate::validate::{check_instance_id, check_name, check_peer};
pub use whisk_directory_api::{Deregistered, Lease, PeerDirectory, PeerMapStream};

/// The peer registry: cheap to clone (a handle), usable from many tasks.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn RegistryBackend>,
    /// One channel per group that has (or recently had) watchers.
    hub: Mutex<HashMap<GroupKey, watch::Sender<Arc<PeerMap>>>>,
    options: RegistryOptions,
    refused_watchers: std::sync::atomic::AtomicU64,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Registry {
    /// A registry kept in this process. Must be called inside a Tokio runtime (it spawns the
    /// lease sweeper).
    pub fn in_memory(options: RegistryOptions) -> Registry {
        let backend = MemoryBackend::with_limits(options.max_groups, options.max_group_peers);
        Registry::with_backend(Arc::new(backend), options)
    }

    /// The registry `config` asks for; with Redis, connects and loads the existing state
    /// (fails with [`DirectoryError::Unavailable`] when Redis cannot be reached).
    pub async fn open(config: &DirectoryConfig) -> Result<Registry, DirectoryError> {
        let options = config.registry_options();
        match config.backend {
            BackendKind::Memory => Ok(Registry::in_memory(options)),
            BackendKind::Redis => {
                let backend = crate::redis::RedisBackend::connect(
                    &config.redis_url,
                    options.max_groups,
                    options.max_group_peers,
                )
                .await?;
                let registry = Registry::with_backend(Arc::new(backend), options);
                let groups = registry.inner.backend.load_all().await?;
                let peers: usize = groups.iter().map(|g| g.peers.len()).sum();
                info!(
                    groups = groups.len(),
                    peers,
                    url = %config.redis_url,
                    "directory state loaded from redis"
                );
                Ok(registry)
            }
        }
    }

    /// A registry over `backend`. Must be called inside a Tokio runtime.
    pub fn with_backend(backend: Arc<dyn RegistryBackend>, options: RegistryOptions) -> Registry {
        let events = backend.take_events();
        let inner = Arc::new(Inner {
            backend,
            hub: Mutex::new(HashMap::new()),
            options,
            refused_watchers: Default::default(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(sweep(Arc::downgrade(&inner), inner.stop.clone()));
        if let Some(events) = events {
            tokio::spawn(follow(Arc::downgrade(&inner), events, inner.stop.clone()));
        }
        Registry { inner }
    }

    /// Adds `peer` to (`namespace`, `group`), replacing an instance with the same id. The IP is
    /// stored in canonical form; `since_ms` is set to now when 0. Its invoker's lease covers
    /// it (one of the default length is started when the invoker holds none). Returns the
    /// group's new version.
    pub async fn register(
        &self,
        namespace: &str,
        group: &str,
        mut peer: Peer,
    ) -> Result<u64, DirectoryError> {
        let key = group_key(namespace, group)?;
        check_peer(&mut peer)?;
        if peer.since_ms == 0 {
            peer.since_ms = epoch_ms();
        }
        debug!(group = %key, id = %peer.id, ip = %peer.ip, invoker = peer.invoker_id, "register");
        let map = self
            .inner
            .backend
            .register(&key, peer, self.inner.options.default_lease)
            .await?;
        let version = map.version;
        self.inner.publish(map);
        Ok(version)
    }

    /// Removes instance `id` from (`namespace`, `group`); idempotent. With a non-empty
    /// `activation_id`, only removes the instance if it still belongs to that activation (a
    /// newer registration under the same id is left alone).
    pub async fn deregister(
        &self,
        namespace: &str,
        group: &str,
        id: &str,
        activation_id: &str,
    ) -> Result<Deregistered, DirectoryError> {
        let key = group_key(namespace, group)?;
        check_instance_id(id)?;
        let (removed, map) = self
            .inner
            .backend
            .deregister(&key, id, activation_id)
            .await?;
        debug!(group = %key, id, removed, "deregister");
        let version = map.version;
        if removed {
            self.inner.publish(map);
        }
        Ok(Deregistered { version, removed })
    }

    /// Renews the lease of `invoker_id` for `ttl` (zero: the default lease; capped at the
    /// maximum lease).
    pub async fn heartbeat(&self, invoker_id: u32, ttl: Duration) -> Result<Lease, DirectoryError> {
        let ttl = if ttl.is_zero() {
            self.inner.options.default_lease
        } else {
            ttl.min(self.inner.options.max_lease)
        };
        let new_lease = self.inner.backend.renew_lease(invoker_id, ttl).await?;
        if new_lease {
            debug!(invoker = invoker_id, ?ttl, "new lease");
        }
        Ok(Lease { ttl, new_lease })
    }

    /// The current map of (`namespace`, `group`) (empty at version 0 if it never had peers).
    pub async fn snapshot(&self, namespace: &str, group: &str) -> Result<PeerMap, DirectoryError> {
        let key = group_key(namespace, group)?;
        self.inner.backend.load(&key).await
    }

    /// The groups of `namespace` that have instances now, sorted by group, at most
    /// [`GROUPS_LIST_MAX`](whisk_directory_api::GROUPS_LIST_MAX).
    pub async fn groups_of(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        check_name("namespace", namespace)?;
        let mut maps = self.inner.backend.load_namespace(namespace).await?;
        maps.retain(|m| !m.peers.is_empty());
        maps.sort_by(|a, b| a.group.cmp(&b.group));
        maps.truncate(whisk_directory_api::GROUPS_LIST_MAX);
        Ok(maps)
    }

    /// The map of (`namespace`, `group`) now, then after every change, pushed as it happens.
    /// The group need not exist yet. Dropping the stream unsubscribes.
    pub async fn watch(
        &self,
        namespace: &str,
        group: &str,
    ) -> Result<PeerMapStream, DirectoryError> {
        Ok(into_stream(self.watch_receiver(namespace, group).await?))
    }

    /// Like [`Registry::watch`], as the underlying channel receiver (its current value is the
    /// snapshot).
    pub async fn watch_receiver(
        &self,
        namespace: &str,
        group: &str,
    ) -> Result<watch::Receiver<Arc<PeerMap>>, DirectoryError> {
        let key = group_key(namespace, group)?;
        // Subscribe first, then load: a change that lands in between is either in the load or
        // pushed to the channel; the version guard keeps the newest of both.
        let rx = {
            let mut hub = self.inner.hub.lock();
            let open: usize = hub.values().map(|tx| tx.receiver_count()).sum();
            if open >= self.inner.options.max_watchers {
                drop(hub);
                self.inner
                    .refused_watchers
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(DirectoryError::Unavailable(format!(
                    "the directory has its most watchers open ({}); try again later",
                    self.inner.options.max_watchers
                )));
            }
            hub.entry(key.clone())
                .or_insert_with(|| watch::Sender::new(Arc::new(key.empty_map(0))))
                .subscribe()
        };
        let map = self.inner.backend.load(&key).await?;
        self.inner.publish(map);
        Ok(rx)
    }

    /// How many watchers (local streams) (`namespace`, `group`) has now.
    pub fn watcher_count(&self, namespace: &str, group: &str) -> usize {
        let key = GroupKey::new(namespace, group);
        self.inner
            .hub
            .lock()
            .get(&key)
            .map_or(0, |tx| tx.receiver_count())
    }

    /// Watch streams open now (on this directory).
    pub fn watchers(&self) -> usize {
        self.inner
            .hub
            .lock()
            .values()
            .map(|tx| tx.receiver_count())
            .sum()
    }

    /// Watches refused because `max_watchers` were open.
    pub fn refused_watchers(&self) -> u64 {
        self.inner
            .refused_watchers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Groups held, when the backend counts them here (the in-memory one).
    pub fn groups(&self) -> Option<usize> {
        self.inner.backend.group_count()
    }

    /// The timings this registry runs with.
    pub fn options(&self) -> RegistryOptions {
        self.inner.options
    }
}

impl Inner {
    /// Pushes `map` to the watchers of its group, unless they already hold a newer one.
    fn publish(&self, map: PeerMap) {
        let key = GroupKey::new(map.namespace.clone(), map.group.clone());
        let mut hub = self.hub.lock();
        let Some(tx) = hub.get(&key) else { return };
        if tx.receiver_count() == 0 {
            hub.remove(&key);
            return;
        }
        let map = Arc::new(map);
        tx.send_if_modified(|cur| {
            if map.version > cur.version {
                *cur = map;
                true
            } else {
                false
            }
        });
    }

    /// After a backend reconnect: pushes `map` if it differs from what watchers hold, even
    /// with a lower version. A lower version means the backend lost its state (a Redis
    /// restarted without persistence); watchers must then follow the backend rather than keep
    /// a map nobody can change any more. (A local change racing with this reload can be
    /// overwritten by it; the next change of the group repairs that.)
    fn publish_resync(&self, map: PeerMap) {
        let key = GroupKey::new(map.namespace.clone(), map.group.clone());
        let hub = self.hub.lock();
        let Some(tx) = hub.get(&key) else { return };
        tx.send_if_modified(|cur| {
            if **cur == map {
                return false;
            }
            if map.version < cur.version {
                warn!(group = %key, held = cur.version, backend = map.version,
                      "the backend's version went back (state lost?); following the backend");
            }
            *cur = Arc::new(map);
            true
        });
    }

    /// Reloads `key` from the backend if anyone here watches it.
    async fn reload(&self, key: &GroupKey, resync: bool) -> Result<(), DirectoryError> {
        if !self.hub.lock().contains_key(key) {
            return Ok(());
        }
        let map = self.backend.load(key).await?;
        if resync {
            self.publish_resync(map);
        } else {
            self.publish(map);
        }
        Ok(())
    }

    fn watched_groups(&self) -> Vec<GroupKey> {
        let mut hub = self.hub.lock();
        hub.retain(|_, tx| tx.receiver_count() > 0);
        hub.keys().cloned().collect()
    }
}

fn group_key(namespace: &str, group: &str) -> Result<GroupKey, DirectoryError> {
    check_name("namespace", namespace)?;
    check_name("group", group)?;
    Ok(GroupKey::new(namespace, group))
}

fn into_stream(rx: watch::Receiver<Arc<PeerMap>>) -> PeerMapStream {
    futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
        }
        let map = PeerMap::clone(&rx.borrow_and_update());
        Some((map, (rx, false)))
    })
    .boxed()
}

/// Ends lapsed leases every `sweep_interval`, and forgets channels nobody watches any more.
async fn sweep(inner: Weak<Inner>, stop: CancellationToken) {
    let Some(period) = inner.upgrade().map(|i| i.options.sweep_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        match inner.backend.expire_leases().await {
            Ok(changed) => {
                if failing {
                    info!("lease sweeper: backend reachable again");
                    failing = false;
                }
                for map in changed {
                    info!(namespace = %map.namespace, group = %map.group, version = map.version,
                          "lease lapsed: instances removed");
                    inner.publish(map);
                }
            }
            Err(e) => {
                if !failing {
                    warn!("lease sweeper: {e}");
                    failing = true;
                }
            }
        }
        n += 1;
        if n.is_multiple_of(20) {
            inner.watched_groups();
        }
    }
}

/// Applies the backend's notifications of changes made by other directories.
async fn follow(
    inner: Weak<Inner>,
    mut events: mpsc::UnboundedReceiver<BackendEvent>,
    stop: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = events.recv() => match e { Some(e) => e, None => return },
        };
        let Some(inner) = inner.upgrade() else { return };
        let (keys, resync) = match event {
            BackendEvent::Changed(key) => (vec![key], false),
            BackendEvent::Resync => (inner.watched_groups(), true),
        };
        for key in keys {
            if let Err(e) = inner.reload(&key, resync).await {
                warn!(group = %key, "cannot reload a group changed elsewhere: {e}");
            }
        }
    }
}

/// The in-process directory (standalone): the invoker calls the registry directly.
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

    async fn groups(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        Registry::groups_of(self, namespace).await
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
