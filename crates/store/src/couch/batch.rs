//! Group commit of activation records: one task takes queued records and writes them with
//! `_bulk_docs`, at most `activation_writers` requests in flight. While all writers are busy,
//! new records queue and go together in the next request, so batches grow with load and a
//! lone caller pays one request. Each caller waits for its own record's outcome.
//!
//! A record whose id exists (a re-put) comes back from `_bulk_docs` as a conflict and is then
//! replaced through a read-modify-write.

use super::{status, store_error, Inner};
use crate::StoreError;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

/// Room in the queue before callers wait to enqueue.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<(), StoreError>>;

enum Msg {
    /// Write this record.
    Put(Value, Reply),
    /// Answer once every record queued before is written.
    Flush(oneshot::Sender<()>),
}

/// Handle to the batching task; the task ends when the handle is dropped, after writing what
/// was queued.
pub(super) struct Batcher {
    tx: mpsc::Sender<Msg>,
}

impl Batcher {
    /// Starts the task (on the current tokio runtime).
    pub(super) fn start(inner: Arc<Inner>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(inner, rx));
        Self { tx }
    }

    /// Writes `doc` in the next batch; returns when it is written.
    pub(super) async fn submit(&self, doc: Value) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Put(doc, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Waits until every record submitted before is written.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the activation writer stopped".into())
}

async fn run(inner: Arc<Inner>, mut rx: mpsc::Receiver<Msg>) {
    let writers = inner.cfg.writers;
    let permits = Arc::new(Semaphore::new(writers));
    let mut deferred: Option<Msg> = None;
    loop {
        // Wait for a free writer first: meanwhile records pile up for this batch.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let first = match deferred.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let mut batch = match first {
            Msg::Put(doc, reply) => vec![(doc, reply)],
            Msg::Flush(reply) => {
                drop(permit);
                if let Ok(all) = permits.acquire_many(writers as u32).await {
                    drop(all);
                }
                let _ = reply.send(());
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + inner.cfg.batch_window;
        while batch.len() < inner.cfg.batch_max {
            // What is queued, without touching the clock (a timer costs up to its 1 ms
            // resolution); then, within the window, what arrives.
            let next = match rx.try_recv() {
                Ok(m) => Some(m),
                Err(_) if tokio::time::Instant::now() >= deadline => None,
                Err(_) => tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .ok()
                    .flatten(),
            };
            match next {
                Some(Msg::Put(doc, reply)) => batch.push((doc, reply)),
                Some(flush) => {
                    deferred = Some(flush);
                    break;
                }
                None => break,
            }
        }
        tokio::spawn(write(Arc::clone(&inner), batch, permit));
    }
}

/// Writes one batch and answers each caller.
async fn write(inner: Arc<Inner>, batch: Vec<(Value, Reply)>, _permit: OwnedSemaphorePermit) {
    let (docs, replies): (Vec<Value>, Vec<Reply>) = batch.into_iter().unzip();
    let outcomes = write_docs(&inner, docs).await;
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// One outcome per document, in order.
async fn write_docs(inner: &Inner, docs: Vec<Value>) -> Vec<Result<(), StoreError>> {
    let db = &inner.activations;
    let mut sent = docs.clone();
    let mut results = db.bulk_docs(&mut sent).await;
    if results.is_err() {
        // A missing database shows as an undecodable answer: recreate the schema (which fails
        // fast if the server is down) and try once more.
        if inner.ensure_schema().await.is_ok() {
            sent.clone_from(&docs);
            results = db.bulk_docs(&mut sent).await;
        }
    }
    let results = match results {
        Ok(r) => r,
        Err(e) => {
            let e = store_error(e);
            return docs.iter().map(|_| Err(same(&e))).collect();
        }
    };
    let mut outcomes = Vec::with_capacity(docs.len());
    for (doc, result) in docs.into_iter().zip(results) {
        outcomes.push(match result {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(409) => inner.upsert(db, doc).await,
            Err(e) => Err(store_error(e)),
        });
    }
    outcomes
}

/// A copy of `e` for each caller of a failed batch.
fn same(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
    }
}
