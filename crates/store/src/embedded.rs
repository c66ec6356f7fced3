//! [`EmbeddedStore`]: the [`Store`] in one redb database file, for `standalone` and tests.
//!
//! Tables:
//! - `entities`: `"<kind>\0<ns/[pkg/]name>"` → `(rev, json)`; revisions are CouchDB-like
//!   `"<n>-<32 hex>"` with `n` counting writes.
//! - `activations`: activation id → record JSON; `activations_by_ns`:
//!   `(namespace, u64::MAX - start, id)` → `()`, so newest-first listing is a range scan.
//! - `identities`: key uuid → [`Identity`] JSON.
//!
//! Writes: one writer thread (submodule `writer`) applies every write; writes queued while it
//! commits share the next transaction (group commit), so callers never block a tokio worker on
//! redb's write lock or on an fsync. Point reads run inline (microseconds); scans (listing, counting)
//! run in `spawn_blocking`.
//!
//! Durability: every write is committed with `Durability::Immediate`, so it is durable (past a
//! process kill or a power loss) when the call returns; writes queued while the writer commits
//! share the next commit, so under load one fsync serves a batch (an activation record costs its
//! invoker about one fsync of latency, not of throughput). A [`EmbeddedStore::temporary`] store
//! skips the fsyncs (`Eventual`): it is deleted when dropped. [`Store::flush`] waits for the writes
//! queued before it. Dropping the store commits what is queued and joins the writer thread.
//! After a storage I/O failure (a full disk) the writer reopens the file, so the store serves
//! again once the disk has room (see the `writer` module).

mod health;
mod writer;

pub use health::EmbeddedHealth;

use crate::{ActivationQuery, EntityKind, Revisioned, Store, StoreError};
use async_trait::async_trait;
use parking_lot::RwLock;
use redb::{Database, ReadTransaction, ReadableTable};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_core::{Activation, ActivationId, Identity};
use writer::{Write, Writer};

mod tables {
    use redb::TableDefinition;

    pub(super) const ENTITIES: TableDefinition<&str, (&str, &[u8])> =
        TableDefinition::new("entities");
    pub(super) const ACTIVATIONS: TableDefinition<&str, &[u8]> =
        TableDefinition::new("activations");
    pub(super) const ACTIVATIONS_BY_NS: TableDefinition<(&str, u64, &str), ()> =
        TableDefinition::new("activations_by_ns");
    pub(super) const IDENTITIES: TableDefinition<&str, &[u8]> = TableDefinition::new("identities");
}

/// The open database, replaced when the writer reopens the file after an I/O failure.
struct Db {
    path: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
}

impl Db {
    /// The open database; `Unavailable` while a reopen has not finished.
    fn get(&self) -> Result<Arc<Database>, StoreError> {
        self.current.read().clone().ok_or_else(|| {
            StoreError::Unavailable("the database is being reopened after an I/O failure".into())
        })
    }

    /// Closes the database and opens the file again (redb refuses every transaction after an
    /// I/O failure until then). The file stays locked until the last read transaction of the
    /// old handle ends, so this waits for that up to a second — without the lock: readers
    /// meanwhile get `Unavailable` at once instead of blocking. `Err` leaves it closed, for the
    /// next write to try again. Only the writer thread calls it.
    fn reopen(&self) -> Result<Arc<Database>, StoreError> {
        drop(self.current.write().take());
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match Database::create(&self.path) {
                Ok(db) => {
                    let db = Arc::new(db);
                    *self.current.write() = Some(db.clone());
                    return Ok(db);
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    return Err(unavailable(
                        format!("cannot reopen {}", self.path.display()),
                        e,
                    ))
                }
            }
        }
    }
}

/// A [`Store`] in a redb database file (see the module docs for the durability model).
pub struct EmbeddedStore {
    // Dropped first: joins the writer thread after a final durable commit.
    writer: Writer,
    db: Arc<Db>,
    // Removed last, after the database is closed.
    _temp_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates, with its parent directories) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_in(path, None)
    }

    /// A store in a fresh temporary file, removed on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let dir = tempfile::Builder::new()
            .prefix("whisk-store-")
            .tempdir()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot create a temporary directory: {e}"))
            })?;
        let path = dir.path().join("whisk.redb");
        Self::open_in(&path, Some(dir))
    }

    fn open_in(path: &Path, temp_dir: Option<tempfile::TempDir>) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let db = Database::create(path)
            .map_err(|e| unavailable(format!("cannot open {}", path.display()), e))?;
        // Create the tables so that read transactions always find them.
        let txn = db.begin_write().map_err(redb_error)?;
        {
            txn.open_table(tables::ENTITIES).map_err(redb_error)?;
            txn.open_table(tables::ACTIVATIONS).map_err(redb_error)?;
            txn.open_table(tables::ACTIVATIONS_BY_NS)
                .map_err(redb_error)?;
            txn.open_table(tables::IDENTITIES).map_err(redb_error)?;
        }
        txn.commit().map_err(redb_error)?;
        let db = Arc::new(Db {
            path: path.to_path_buf(),
            current: RwLock::new(Some(Arc::new(db))),
        });
        let durability = match temp_dir {
            Some(_) => redb::Durability::Eventual,
            None => redb::Durability::Immediate,
        };
        let writer = Writer::start(Arc::clone(&db), durability)?;
        Ok(Self {
            writer,
            db,
            _temp_dir: temp_dir,
        })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.get()?.begin_read().map_err(redb_error)
    }

    /// Runs a scan off the async workers.
    async fn scan<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(ReadTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let txn = self.read()?;
        tokio::task::spawn_blocking(move || f(txn))
            .await
            .map_err(|e| StoreError::Unavailable(format!("store scan failed: {e}")))?
    }
}

/// The part of a stored activation the writer needs to re-index it.
#[derive(Deserialize)]
struct StoredActivationKey {
    namespace: String,
    start: i64,
}

/// The index's time component: larger for older records, so that ascending is newest first.
fn inverted(start: i64) -> u64 {
    u64::MAX - start.max(0) as u64
}

fn entity_key(kind: EntityKind, key: &str) -> String {
    format!("{}\0{key}", kind.as_str())
}

fn redb_error(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(e.into().to_string())
}

fn unavailable(context: String, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(format!("{context}: {}", e.into()))
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// Activation records of `namespace` in the index range `query.upto..=query.since`, newest
/// first, passed to `visit` until it returns false. Records are decoded only when `decode_all`
/// is set or a name filter needs them; otherwise `visit` gets `None`.
fn scan_activations(
    txn: &ReadTransaction,
    namespace: &str,
    query: &ActivationQuery,
    decode_all: bool,
    mut visit: impl FnMut(Option<Activation>) -> bool,
) -> Result<(), StoreError> {
    let lo = query.upto.map_or(0, inverted);
    let hi = query.since.map_or(u64::MAX, inverted);
    if lo > hi {
        return Ok(());
    }
    let index = txn
        .open_table(tables::ACTIVATIONS_BY_NS)
        .map_err(redb_error)?;
    let records = txn.open_table(tables::ACTIVATIONS).map_err(redb_error)?;
    let must_decode = decode_all || query.name.is_some();
    for entry in index.range((namespace, lo, "")..).map_err(redb_error)? {
        let (key, _) = entry.map_err(redb_error)?;
        let (ns, inv, id) = key.value();
        if ns != namespace || inv > hi {
            break;
        }
        let activation = if must_decode {
            let Some(bytes) = records.get(id).map_err(redb_error)? else {
                continue;
            };
            let a: Activation = decode("activation", bytes.value())?;
            if !query.matches(&a) {
                continue;
            }
            Some(a)
        } else {
            None
        };
        if !visit(activation) {
            break;
        }
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get_entity(
        &self,
        kind: EntityKind,
        key: &str,
    ) -> Result<Option<Revisioned<Value>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::ENTITIES).map_err(redb_error)?;
        let Some(guard) = table
            .get(entity_key(kind, key).as_str())
            .map_err(redb_error)?
        else {
            return Ok(None);
        };
        let (rev, json) = guard.value();
        Ok(Some(Revisioned {
            rev: rev.to_string(),
            doc: decode("entity", json)?,
        }))
    }

    async fn put_entity(
        &self,
        kind: EntityKind,
        key: &str,
        doc: &Value,
        rev: Option<&str>,
    ) -> Result<String, StoreError> {
        let write = Write::PutEntity {
            key: entity_key(kind, key),
            json: encode(doc)?,
            rev: rev.map(str::to_string),
        };
        self.writer
            .submit(write)
            .await?
            .ok_or_else(|| StoreError::Unavailable("the store writer returned no revision".into()))
    }

    async fn delete_entity(
        &self,
        kind: EntityKind,
        key: &str,
        rev: Option<&str>,
    ) -> Result<(), StoreError> {
        self.writer
            .submit(Write::DeleteEntity {
                key: entity_key(kind, key),
                rev: rev.map(str::to_string),
            })
            .await?;
        Ok(())
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        let (from, to) = namespace_range(kind, namespace);
        self.scan(move |txn| {
            let table = txn.open_table(tables::ENTITIES).map_err(redb_error)?;
            let mut docs = Vec::new();
            for entry in table
                .range(from.as_str()..to.as_str())
                .map_err(redb_error)?
            {
                let (key, value) = entry.map_err(redb_error)?;
                let doc: Value = decode("entity", value.value().1)?;
                docs.push((key.value().to_string(), doc));
            }
            let updated = |d: &Value| d.get("updated").and_then(Value::as_i64).unwrap_or(0);
            let name = |d: &Value| {
                d.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            docs.sort_by(|(ka, a), (kb, b)| {
                updated(b)
                    .cmp(&updated(a))
                    .then_with(|| name(a).cmp(&name(b)))
                    .then_with(|| ka.cmp(kb))
            });
            Ok(docs
                .into_iter()
                .skip(skip)
                .take(limit)
                .map(|(_, d)| d)
                .collect())
        })
        .await
    }

    async fn count_entities(&self, kind: EntityKind, namespace: &str) -> Result<usize, StoreError> {
        let (from, to) = namespace_range(kind, namespace);
        self.scan(move |txn| {
            let table = txn.open_table(tables::ENTITIES).map_err(redb_error)?;
            let mut n = 0;
            for entry in table
                .range(from.as_str()..to.as_str())
                .map_err(redb_error)?
            {
                entry.map_err(redb_error)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn put_activation(&self, activation: &Activation) -> Result<(), StoreError> {
        let write = Write::Activation {
            id: activation.activation_id.as_str().to_string(),
            namespace: activation.namespace.clone(),
            start: activation.start,
            json: encode(activation)?,
        };
        self.writer.submit(write).await?;
        Ok(())
    }

    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::ACTIVATIONS).map_err(redb_error)?;
        let Some(guard) = table.get(id.as_str()).map_err(redb_error)? else {
            return Ok(None);
        };
        let a: Activation = decode("activation", guard.value())?;
        Ok((a.namespace == namespace).then_some(a))
    }

    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let (namespace, query) = (namespace.to_string(), query.clone());
        self.scan(move |txn| {
            let mut skipped = 0;
            let mut out = Vec::new();
            scan_activations(&txn, &namespace, &query, true, |a| {
                if skipped < query.skip {
                    skipped += 1;
                } else if let Some(a) = a {
                    out.push(a);
                }
                out.len() < query.limit
            })?;
            Ok(out)
        })
        .await
    }

    async fn count_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<usize, StoreError> {
        let (namespace, query) = (namespace.to_string(), query.clone());
        self.scan(move |txn| {
            let mut n = 0;
            scan_activations(&txn, &namespace, &query, false, |_| {
                n += 1;
                true
            })?;
            Ok(n)
        })
        .await
    }

    async fn get_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::IDENTITIES).map_err(redb_error)?;
        let guard = table.get(uuid).map_err(redb_error)?;
        guard.map(|g| decode("identity", g.value())).transpose()
    }

    async fn put_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.writer
            .submit(Write::Identity {
                uuid: identity.uuid.clone(),
                json: encode(identity)?,
            })
            .await?;
        Ok(())
    }

    async fn identities_of_namespace(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        let namespace = namespace.to_string();
        self.scan_identities(move |i| i.namespace == namespace)
            .await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<(), StoreError> {
        self.writer
            .submit(Write::DeleteIdentity {
                uuid: uuid.to_string(),
            })
            .await?;
        Ok(())
    }

    async fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.scan_identities(|_| true).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.writer.submit(Write::Flush).await?;
        Ok(())
    }
}

impl EmbeddedStore {
    /// The identities that `keep` accepts, read off the loop.
    async fn scan_identities(
        &self,
        keep: impl Fn(&Identity) -> bool + Send + 'static,
    ) -> Result<Vec<Identity>, StoreError> {
        self.scan(move |txn| {
            let table = txn.open_table(tables::IDENTITIES).map_err(redb_error)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(redb_error)? {
                let (_, value) = entry.map_err(redb_error)?;
                let identity: Identity = decode("identity", value.value())?;
                if keep(&identity) {
                    out.push(identity);
                }
            }
            Ok(out)
        })
        .await
    }
}

/// The key range of `kind` entities whose first path segment is `namespace`:
/// `"<kind>\0<namespace>/"` up to (excluded) `"<kind>\0<namespace>0"` (`'0'` follows `'/'`).
fn namespace_range(kind: EntityKind, namespace: &str) -> (String, String) {
    (
        entity_key(kind, &format!("{namespace}/")),
        entity_key(kind, &format!("{namespace}0")),
    )
}

#[cfg(test)]
mod tests;
