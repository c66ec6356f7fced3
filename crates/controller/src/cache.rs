//! The controller's entity caches: the action documents that every invoke reads (and the
//! package and binding documents an invoke of a packaged action reads), kept in memory so that
//! a warm invoke does not wait for the store. [`EntityCache`] is the cache, [`ActionCache`] and
//! [`PackageCache`] its two uses; both hear every invalidation (their keys, `ns/name` and
//! `ns/pkg/name`, may meet: that only forgets a copy more).
//!
//! - **Bounded**: at most `action_cache_size` entries; the oldest entry goes first when full.
//!   Size 0 turns the cache off (every read goes to the store).
//! - **TTL**: an entry is trusted for `action_cache_ttl` at most, a safety net for an
//!   invalidation that never arrived (a bus outage, a publish that failed).
//! - **Invalidated on update and delete**, in this controller at once and in every other
//!   controller through the bus, as OpenWhisk does: the writer publishes
//!   `{"key": {"mainId": "<ns>/<name>"}, "instanceId": "<sender>"}` to topic
//!   [`INVALIDATION_TOPIC`]; each controller reads that topic in a consumer group of its own
//!   (`cacheInvalidation<id>`) so that every controller sees every invalidation, and skips its
//!   own messages. A new group starts at the beginning of the topic and a restarted controller
//!   at its last commit: replaying old invalidations only forgets copies, which is harmless,
//!   whereas a group started at the latest offset misses what is published until the broker
//!   resolves that offset (seconds on tansu 0.6.0, measured: a second controller kept a deleted
//!   action for its whole TTL).
//! - **No stale refill**: a read that started before an invalidation does not put what it read
//!   into the cache (a generation counter, bumped by every invalidation, is compared under the
//!   lock), so a slow read racing an update cannot bring the old document back.
//!
//! This module is the cache and its messages; invalidating it after a write, publishing that
//! to the other controllers and applying what they publish are [`crate::services::Entities`]'s.
//!
//! Only invokes read through the cache; `GET` of an action and the read-modify-write of `PUT`
//! go to the store, so what a client reads back and the revision an update checks are always
//! the stored ones.

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_bus::{Bus, BusError, Consumer};
use whisk_core::{Action, FullyQualifiedName, Package};
use whisk_store::{ActionStore, Revisioned, Store, StoreError};

/// The topic of cache invalidations (OpenWhisk's name).
pub const INVALIDATION_TOPIC: &str = "cacheInvalidation";

/// The consumer group of controller `id` on [`INVALIDATION_TOPIC`].
pub fn invalidation_group(id: u32) -> String {
    format!("{INVALIDATION_TOPIC}{id}")
}

/// OpenWhisk's `CacheInvalidationMessage`.
#[derive(Debug, Serialize, Deserialize)]
struct InvalidationMessage {
    key: CacheKey,
    #[serde(rename = "instanceId")]
    instance_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheKey {
    #[serde(rename = "mainId")]
    main_id: String,
}

/// A message on [`INVALIDATION_TOPIC`] that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("undecodable cache invalidation: {0}")]
pub struct MalformedInvalidation(#[from] serde_json::Error);

struct Entry<T> {
    doc: Arc<Revisioned<T>>,
    stored_at: Instant,
    seq: u64,
}

struct State<T> {
    map: HashMap<String, Entry<T>>,
    /// Keys in insertion order with the `seq` they were inserted with (stale pairs, whose key
    /// was removed or re-inserted since, are skipped when evicting).
    order: VecDeque<(String, u64)>,
    next_seq: u64,
    /// Bumped by every invalidation.
    generation: u64,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            generation: 0,
        }
    }
}

/// Documents by key (`ns/name`, `ns/pkg/name`) — see the module docs.
pub struct EntityCache<T> {
    capacity: usize,
    ttl: Duration,
    /// Names this controller's own messages (unique per process).
    instance: String,
    state: Mutex<State<T>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Action documents by fully qualified name.
pub type ActionCache = EntityCache<Action>;

/// Package and binding documents by `ns/name`.
pub type PackageCache = EntityCache<Package>;

impl ActionCache {
    /// The action `fqn`, from the cache when it holds a fresh copy, else from `store` (and
    /// then cached). `None` when it does not exist (absence is not cached).
    pub async fn get(
        &self,
        store: &dyn Store,
        fqn: &FullyQualifiedName,
    ) -> Result<Option<Arc<Revisioned<Action>>>, StoreError> {
        self.get_with(fqn.to_string(), || store.get_action(fqn))
            .await
    }
}

impl<T> EntityCache<T> {
    /// An empty cache of at most `capacity` entries, each trusted for `ttl`; `instance` marks
    /// this controller's invalidation messages.
    pub fn new(capacity: usize, ttl: Duration, instance: impl Into<String>) -> Self {
        Self {
            capacity,
            ttl,
            instance: instance.into(),
            state: Mutex::new(State::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The document `key`, from the cache when it holds a fresh copy, else from `load` (and
    /// then cached). `None` when it does not exist (absence is not cached).
    pub async fn get_with<F, Fut, E>(
        &self,
        key: String,
        load: F,
    ) -> Result<Option<Arc<Revisioned<T>>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Revisioned<T>>, E>>,
    {
        let generation = {
            let state = self.state.lock();
            if let Some(e) = state.map.get(&key) {
                if e.stored_at.elapsed() < self.ttl {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(e.doc.clone()));
                }
            }
            state.generation
        };
        self.misses.fetch_add(1, Ordering::Relaxed);
        let Some(found) = load().await? else {
            return Ok(None);
        };
        let found = Arc::new(found);
        self.insert(key, found.clone(), generation);
        Ok(Some(found))
    }

    /// Caches `doc` unless an invalidation happened since `generation` was read.
    fn insert(&self, key: String, doc: Arc<Revisioned<T>>, generation: u64) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.lock();
        if state.generation != generation {
            return;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.push_back((key.clone(), seq));
        state.map.insert(
            key,
            Entry {
                doc,
                stored_at: Instant::now(),
                seq,
            },
        );
        while state.map.len() > self.capacity {
            let Some((old, old_seq)) = state.order.pop_front() else {
                break;
            };
            if state.map.get(&old).is_some_and(|e| e.seq == old_seq) {
                state.map.remove(&old);
            }
        }
        // Stale pairs pile up when the same keys are refilled; drop them now and then.
        if state.order.len() > 2 * self.capacity.max(16) {
            let State { map, order, .. } = &mut *state;
            order.retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    /// Forgets `key` (`ns/name` or `ns/pkg/name`) in this controller.
    pub fn invalidate(&self, key: &str) {
        let mut state = self.state.lock();
        state.generation += 1;
        state.map.remove(key);
    }

    /// The message that tells the other controllers to forget `key`.
    pub fn invalidation_message(&self, key: &str) -> Bytes {
        let msg = InvalidationMessage {
            key: CacheKey {
                main_id: key.to_string(),
            },
            instance_id: self.instance.clone(),
        };
        Bytes::from(serde_json::to_vec(&msg).unwrap_or_default())
    }

    /// Applies an invalidation received from the bus (this controller's own are skipped).
    pub fn on_message(&self, payload: &[u8]) -> Result<(), MalformedInvalidation> {
        let msg: InvalidationMessage = serde_json::from_slice(payload)?;
        tracing::debug!(key = %msg.key.main_id, from = %msg.instance_id, "cache invalidation");
        if msg.instance_id != self.instance {
            self.invalidate(&msg.key.main_id);
        }
        Ok(())
    }

    /// Entries held now (fresh or not yet evicted).
    pub fn len(&self) -> usize {
        self.state.lock().map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(hits, misses)` so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Joins this controller's own group on [`INVALIDATION_TOPIC`] (creating the topic).
pub async fn subscribe(bus: &dyn Bus, controller_id: u32) -> Result<Box<dyn Consumer>, BusError> {
    bus.ensure_topic(INVALIDATION_TOPIC).await?;
    bus.subscribe(INVALIDATION_TOPIC, &invalidation_group(controller_id))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fqn, write};
    use serde_json::json;
    use whisk_store::EmbeddedStore;

    #[tokio::test]
    async fn size_is_bounded_and_zero_disables() {
        let store = EmbeddedStore::temporary().unwrap();
        for i in 0..5 {
            write(&store, &format!("a{i}"), "x").await;
        }
        let cache = ActionCache::new(3, Duration::from_secs(60), "c");
        for round in 0..3 {
            for i in 0..5 {
                cache.get(&store, &fqn(&format!("a{i}"))).await.unwrap();
                assert!(cache.len() <= 3, "round {round}");
            }
        }
        assert!(cache.state.lock().order.len() <= 2 * 16 + 1);
        // The newest stayed.
        assert!(cache.state.lock().map.contains_key("guest/a4"));

        let off = ActionCache::new(0, Duration::from_secs(60), "c");
        off.get(&store, &fqn("a0")).await.unwrap();
        assert!(off.is_empty());
    }

    #[tokio::test]
    async fn a_read_racing_an_invalidation_is_not_cached() {
        let store = EmbeddedStore::temporary().unwrap();
        write(&store, "r", "v1").await;
        let cache = ActionCache::new(10, Duration::from_secs(60), "c");
        let generation = cache.state.lock().generation;
        let old = Arc::new(store.get_action(&fqn("r")).await.unwrap().unwrap());
        cache.invalidate("guest/r"); // an update landed while the read was under way
        cache.insert("guest/r".into(), old, generation);
        assert!(cache.is_empty());
    }

    #[test]
    fn own_and_foreign_messages() {
        let a = ActionCache::new(10, Duration::from_secs(60), "controller0-a");
        let b = ActionCache::new(10, Duration::from_secs(60), "controller1-b");
        let msg = a.invalidation_message("guest/x");
        let v: serde_json::Value = serde_json::from_slice(&msg).unwrap();
        assert_eq!(
            v,
            json!({"key": {"mainId": "guest/x"}, "instanceId": "controller0-a"})
        );
        let g = b.state.lock().generation;
        b.on_message(&msg).unwrap();
        assert_eq!(b.state.lock().generation, g + 1);
        let g = a.state.lock().generation;
        a.on_message(&msg).unwrap();
        assert_eq!(a.state.lock().generation, g, "own message skipped");
        assert!(b.on_message(b"not json").is_err());
    }
}
