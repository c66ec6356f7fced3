//! [`Actions`]: the invoker's action cache. An activation message names its action (path and
//! store revision) instead of carrying the document; the invoker reads the document from the
//! store through this cache, as OpenWhisk's invoker does.
//!
//! - **Keyed by path and revision**: one entry per action path, holding the parsed
//!   [`Action`] of one revision in an [`Arc`]. A message naming that revision is a hit: no
//!   store read, no JSON parse, no copy of the code. A message naming another revision (the
//!   action was updated) is a miss that reads the store and replaces the entry.
//! - **What runs is what the store holds**: the store keeps only the latest revision of an
//!   action (OpenWhisk fetches the message's revision; we cannot). When the action was updated
//!   between accept and run, the stored revision runs and [`Fetched::revision`] says which; the
//!   entry then answers later messages naming the older revision too (a controller that has
//!   not heard of the update yet), so they do not read the store each time.
//! - **Bounded by bytes**: each entry weighs its code (plus its image, parameters,
//!   annotations and a fixed overhead); past [`Actions::max_bytes`] the least recently used
//!   entries go. An action heavier than the whole bound runs but is not kept.
//! - **One fetch per miss**: concurrent misses of one path and revision wait for a single store
//!   read (a cold burst of one big action reads and parses it once).
//! - **Failures are answers**: a deleted action is [`FetchError::NotFound`], an unreadable
//!   document [`FetchError::Corrupt`], a store that keeps failing (after [`FETCH_ATTEMPTS`]
//!   tries) [`FetchError::Store`]; the runner turns each into a whisk error record that says
//!   why. Failures are not cached: the next message reads again.

use lru::LruCache;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use whisk_core::Action;
use whisk_store::{EntityKind, Store, StoreError};

/// Default bound of the cache: 256 MiB of code (five actions at the 48 MB limit, thousands of
/// typical ones).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Store reads tried before a miss gives up ([`FetchError::Store`]); 100 ms, then 200 ms apart.
pub const FETCH_ATTEMPTS: u32 = 3;

/// Weight of an entry beyond its code and parameters (the document's other fields, the map).
const ENTRY_OVERHEAD: u64 = 1024;

/// An action as the cache gives it.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The parsed document, shared with the cache.
    pub action: Arc<Action>,
    /// Its store revision (may differ from the message's: see the module doc).
    pub revision: String,
}

/// Why an action could not be had; its text is the whisk error of the activation's record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The store has no such action: it was deleted after the activation was accepted.
    #[error("The action {0} no longer exists: it was deleted after the activation was accepted.")]
    NotFound(String),
    /// The stored document is no action.
    #[error("The stored document of the action {0} is unreadable: {1}.")]
    Corrupt(String, String),
    /// The store failed every attempt.
    #[error("The action {0} could not be read from the store: {1}.")]
    Store(String, String),
}

impl FetchError {
    /// The platform failed (not the user's deletion).
    pub fn is_system(&self) -> bool {
        !matches!(self, FetchError::NotFound(_))
    }
}

/// Counters of the cache (for status and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries kept.
    pub entries: usize,
    /// Their weight, bytes.
    pub bytes: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that were not.
    pub misses: u64,
    /// Store reads done for misses (concurrent misses of one key share one).
    pub fetches: u64,
}

type Flight = Arc<OnceCell<Result<Fetched, FetchError>>>;

struct Entry {
    fetched: Fetched,
    /// Older revisions that messages named and the store answered with this one (a controller
    /// whose cache has not heard of the update yet): they hit too, rather than reading the
    /// store on every activation until that controller catches up. At most [`MAX_SUPERSEDED`].
    superseded: Vec<String>,
    bytes: u64,
}

/// Older revisions remembered per entry.
const MAX_SUPERSEDED: usize = 4;

struct State {
    /// Path → the one revision kept; unbounded by count, bounded by `bytes` below.
    lru: LruCache<String, Entry>,
    bytes: u64,
    /// Misses being fetched, by (path, revision).
    flights: HashMap<(String, String), Flight>,
}

/// The action cache over a store; share it in an [`Arc`].
pub struct Actions {
    store: Arc<dyn Store>,
    max_bytes: u64,
    state: Mutex<State>,
    hits: AtomicU64,
    misses: AtomicU64,
    fetches: AtomicU64,
}

impl Actions {
    /// A cache reading `store`, keeping at most `max_bytes` (0 keeps nothing).
    pub fn new(store: Arc<dyn Store>, max_bytes: u64) -> Self {
        Self {
            store,
            max_bytes,
            state: Mutex::new(State {
                lru: LruCache::unbounded(),
                bytes: 0,
                flights: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// The store it reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The bound, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let st = self.state.lock();
        CacheStats {
            entries: st.lru.len(),
            bytes: st.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
        }
    }

    /// The action at `path` (`ns/name` or `ns/pkg/name`, the store key) of `revision`: from the
    /// cache when it holds that revision, else read from the store (what the store holds, even
    /// another revision; an empty `revision` always reads).
    pub async fn get(&self, path: &str, revision: &str) -> Result<Fetched, FetchError> {
        let key = (path.to_string(), revision.to_string());
        let flight = {
            let mut st = self.state.lock();
            if !revision.is_empty() {
                if let Some(e) = st.lru.get(path) {
                    if e.fetched.revision == revision || e.superseded.iter().any(|r| r == revision)
                    {
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        return Ok(e.fetched.clone());
                    }
                }
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
            st.flights.entry(key.clone()).or_default().clone()
        };
        let result = flight
            .get_or_init(|| self.fetch(path, revision))
            .await
            .clone();
        // The first waiter back files the result and ends the flight.
        let mut st = self.state.lock();
        if st
            .flights
            .get(&key)
            .is_some_and(|f| Arc::ptr_eq(f, &flight))
        {
            st.flights.remove(&key);
            if let Ok(f) = &result {
                self.keep(&mut st, path, revision, f.clone());
            }
        }
        result
    }

    /// Puts `fetched` in the cache as `path`'s revision (fetched for a message that named
    /// `asked`), evicting down to the bound.
    fn keep(&self, st: &mut State, path: &str, asked: &str, fetched: Fetched) {
        let bytes = weight(&fetched.action);
        let mut superseded = vec![];
        if let Some(old) = st.lru.pop(path) {
            st.bytes -= old.bytes;
            if old.fetched.revision == fetched.revision {
                superseded = old.superseded;
            }
        }
        if !asked.is_empty() && asked != fetched.revision && superseded.len() < MAX_SUPERSEDED {
            superseded.push(asked.to_string());
        }
        if bytes > self.max_bytes {
            return;
        }
        st.lru.put(
            path.to_string(),
            Entry {
                fetched,
                superseded,
                bytes,
            },
        );
        st.bytes += bytes;
        while st.bytes > self.max_bytes {
            match st.lru.pop_lru() {
                Some((_, e)) => st.bytes -= e.bytes,
                None => break,
            }
        }
    }

    /// Reads `path` from the store, retrying store failures.
    async fn fetch(&self, path: &str, revision: &str) -> Result<Fetched, FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match whisk_store::get_typed::<Action, _>(self.store.as_ref(), EntityKind::Action, path)
                .await
            {
                Ok(Some(r)) => {
                    if !revision.is_empty() && r.rev != revision {
                        tracing::info!(
                            action = path,
                            accepted = revision,
                            stored = %r.rev,
                            "the action was updated after the activation was accepted; running the stored revision"
                        );
                    }
                    return Ok(Fetched {
                        action: Arc::new(r.doc),
                        revision: r.rev,
                    });
                }
                Ok(None) => return Err(FetchError::NotFound(path.to_string())),
                Err(StoreError::Corrupt(e)) => {
                    return Err(FetchError::Corrupt(path.to_string(), e))
                }
                Err(e) if attempt >= FETCH_ATTEMPTS => {
                    return Err(FetchError::Store(path.to_string(), e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(action = path, error = %e, attempt, "reading an action failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << (attempt - 1))).await;
                }
            }
        }
    }
}

/// What an entry counts against the bound: its code, image, parameters and annotations, and a
/// fixed overhead.
fn weight(a: &Action) -> u64 {
    let exec = &a.exec;
    let text = exec.code.as_ref().map_or(0, String::len)
        + exec.image.as_ref().map_or(0, String::len)
        + exec.main.as_ref().map_or(0, String::len);
    let kv = |kvs: &[whisk_core::entity::KeyValue]| {
        kvs.iter()
            .map(|p| p.key.len() + p.value.to_string().len())
            .sum::<usize>()
    };
    let components = exec
        .components
        .as_ref()
        .map_or(0, |c| c.iter().map(String::len).sum());
    (text + components + kv(&a.parameters) + kv(&a.annotations)) as u64 + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests;
