//! The single writer thread of [`super::EmbeddedStore`]: every write of the store goes through
//! it, and the writes queued while it commits share the next transaction (group commit). Every
//! transaction of a store on disk is committed with `Durability::Immediate`, so a write is
//! durable (on disk, past a process kill or a power loss) before its caller gets the answer;
//! under load one fsync serves a whole batch. A temporary store commits with `Eventual` (no
//! fsync): it is deleted when dropped, so nothing of it could outlive a crash anyway.
//!
//! A storage I/O failure (a full disk) fails its batch, and redb then refuses every later
//! transaction until the database is reopened; so after one the writer reopens the file (once
//! the readers of the old handle are done) and the store serves again as soon as the disk has
//! room, without a restart.

use super::{inverted, tables, Db, StoredActivationKey};
use crate::StoreError;
use redb::{Database, Durability, ReadableTable, Table};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// At most this many queued writes share one transaction.
const MAX_BATCH: usize = 512;

/// What a write answers: the new revision for entity puts, `None` for the rest.
pub(super) type Reply = Result<Option<String>, StoreError>;

/// One write.
pub(super) enum Write {
    /// Insert or replace an activation record.
    Activation {
        /// Activation id.
        id: String,
        /// Namespace of the record.
        namespace: String,
        /// Start, epoch ms.
        start: i64,
        /// The record as JSON.
        json: Vec<u8>,
    },
    /// Create or update an entity, checking the revision.
    PutEntity {
        /// `"<kind>\0<key>"`.
        key: String,
        /// The document as JSON.
        json: Vec<u8>,
        /// Expected revision; `None` to create.
        rev: Option<String>,
    },
    /// Delete an entity, checking the revision if given.
    DeleteEntity {
        /// `"<kind>\0<key>"`.
        key: String,
        /// Expected revision.
        rev: Option<String>,
    },
    /// Create or replace an identity.
    Identity {
        /// The key's uuid.
        uuid: String,
        /// The identity as JSON.
        json: Vec<u8>,
    },
    /// Delete an identity.
    DeleteIdentity {
        /// The key's uuid.
        uuid: String,
    },
    /// Wait for every write queued before it (each is durable already).
    Flush,
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Reply>,
}

/// Handle to the writer thread; dropping it lets the queued writes commit and joins the thread.
pub(super) struct Writer {
    tx: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread; it owns a handle to `db` until the `Writer` is dropped.
    /// `durability` is `Immediate` for a store on disk; a temporary store (deleted when dropped:
    /// nothing of it outlives a crash) commits with `Eventual` and skips the fsyncs.
    pub(super) fn start(db: Arc<Db>, durability: Durability) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("whisk-store-writer".into())
            .spawn(move || run(&db, &rx, durability))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `write` and waits until it is committed durably.
    pub(super) async fn submit(&self, write: Write) -> Reply {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the store writer has stopped".into());
        self.tx
            .as_ref()
            .ok_or_else(gone)?
            .send(Request { write, reply })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel makes the thread commit what is queued and exit.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

/// The thread's loop: take what is queued (up to [`MAX_BATCH`]), commit it, answer.
fn run(db: &Db, rx: &Receiver<Request>, durability: Durability) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        commit_batch(db, batch, durability);
    }
}

/// Applies a batch in one durable transaction, then answers every request; after a storage I/O
/// failure, reopens the database for the next batch.
fn commit_batch(db: &Db, batch: Vec<Request>, durability: Durability) {
    if batch.iter().all(|r| matches!(r.write, Write::Flush)) {
        for r in batch {
            let _ = r.reply.send(Ok(None));
        }
        return;
    }
    let result = match db.get() {
        Ok(database) => apply_all(&database, &batch, durability),
        // Closed by a reopen that could not finish: try again now.
        Err(e) => match db.reopen() {
            Ok(database) => apply_all(&database, &batch, durability),
            Err(_) => Err(Failed {
                message: e.to_string(),
                io: false,
            }),
        },
    };
    match result {
        Ok(answers) => {
            for (r, a) in batch.into_iter().zip(answers) {
                let _ = r.reply.send(a);
            }
        }
        Err(failed) => {
            tracing::warn!(error = %failed.message, "store write failed");
            for r in batch {
                let _ = r
                    .reply
                    .send(Err(StoreError::Unavailable(failed.message.clone())));
            }
            if failed.io {
                match db.reopen() {
                    Ok(_) => tracing::info!("the store was reopened after an I/O failure"),
                    Err(e) => {
                        tracing::warn!(error = %e, "reopening the store failed; trying again at the next write")
                    }
                }
            }
        }
    }
}

/// Why a batch failed: the message, and whether it was a storage I/O failure (after which
/// redb wants the database reopened).
struct Failed {
    message: String,
    io: bool,
}

fn apply_all(
    db: &Database,
    batch: &[Request],
    durability: Durability,
) -> Result<Vec<Reply>, Failed> {
    let mut txn = db.begin_write().map_err(failure)?;
    txn.set_durability(durability);
    let mut answers = Vec::with_capacity(batch.len());
    {
        let mut t = Tables {
            entities: txn.open_table(tables::ENTITIES).map_err(failure)?,
            activations: txn.open_table(tables::ACTIVATIONS).map_err(failure)?,
            index: txn.open_table(tables::ACTIVATIONS_BY_NS).map_err(failure)?,
            identities: txn.open_table(tables::IDENTITIES).map_err(failure)?,
        };
        for r in batch {
            answers.push(t.apply(&r.write)?);
        }
    }
    txn.commit().map_err(failure)?;
    Ok(answers)
}

struct Tables<'t> {
    entities: Table<'t, &'static str, (&'static str, &'static [u8])>,
    activations: Table<'t, &'static str, &'static [u8]>,
    index: Table<'t, (&'static str, u64, &'static str), ()>,
    identities: Table<'t, &'static str, &'static [u8]>,
}

impl Tables<'_> {
    /// Applies one write; `Err` only for storage failures (which abort the whole batch).
    fn apply(&mut self, write: &Write) -> Result<Reply, Failed> {
        match write {
            Write::Activation {
                id,
                namespace,
                start,
                json,
            } => {
                // A re-put of the same id replaces the record: drop its old index entry.
                let old = self
                    .activations
                    .get(id.as_str())
                    .map_err(failure)?
                    .map(|g| g.value().to_vec());
                if let Some(old) =
                    old.and_then(|o| serde_json::from_slice::<StoredActivationKey>(&o).ok())
                {
                    self.index
                        .remove((old.namespace.as_str(), inverted(old.start), id.as_str()))
                        .map_err(failure)?;
                }
                self.activations
                    .insert(id.as_str(), json.as_slice())
                    .map_err(failure)?;
                self.index
                    .insert((namespace.as_str(), inverted(*start), id.as_str()), ())
                    .map_err(failure)?;
                Ok(Ok(None))
            }
            Write::PutEntity { key, json, rev } => {
                let current = self
                    .entities
                    .get(key.as_str())
                    .map_err(failure)?
                    .map(|g| g.value().0.to_string());
                let n = match (current.as_deref(), rev.as_deref()) {
                    (None, None) => 0,
                    (Some(cur), Some(given)) if cur == given => rev_number(cur),
                    _ => return Ok(Err(StoreError::Conflict)),
                };
                let new_rev = format!("{}-{}", n.saturating_add(1), uuid::Uuid::new_v4().simple());
                self.entities
                    .insert(key.as_str(), (new_rev.as_str(), json.as_slice()))
                    .map_err(failure)?;
                Ok(Ok(Some(new_rev)))
            }
            Write::DeleteEntity { key, rev } => {
                let current = self
                    .entities
                    .get(key.as_str())
                    .map_err(failure)?
                    .map(|g| g.value().0.to_string());
                match (current, rev) {
                    (None, _) => Ok(Err(StoreError::NotFound)),
                    (Some(cur), Some(given)) if &cur != given => Ok(Err(StoreError::Conflict)),
                    _ => {
                        self.entities.remove(key.as_str()).map_err(failure)?;
                        Ok(Ok(None))
                    }
                }
            }
            Write::Identity { uuid, json } => {
                self.identities
                    .insert(uuid.as_str(), json.as_slice())
                    .map_err(failure)?;
                Ok(Ok(None))
            }
            Write::DeleteIdentity { uuid } => {
                match self.identities.remove(uuid.as_str()).map_err(failure)? {
                    Some(_) => Ok(Ok(None)),
                    None => Ok(Err(StoreError::NotFound)),
                }
            }
            Write::Flush => Ok(Ok(None)),
        }
    }
}

/// A storage failure, as the message every request of the failed batch gets.
fn failure(e: impl Into<redb::Error>) -> Failed {
    let e = e.into();
    Failed {
        io: matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo),
        message: e.to_string(),
    }
}

/// The `n` of a `"<n>-<hex>"` revision (0 when unreadable).
fn rev_number(rev: &str) -> u64 {
    rev.split_once('-')
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::rev_number;

    #[test]
    fn revision_numbers() {
        assert_eq!(rev_number("3-abc"), 3);
        assert_eq!(rev_number("junk"), 0);
        assert_eq!(rev_number("-x"), 0);
    }
}
