//! The invoker's started journal: user code runs at most once, and every activation it started
//! ends with a record, across a crash and restart of the invoker.
//!
//! Before an activation's user code runs, a `started` line (its id, where it came from on the
//! bus, and what its record needs: namespace, action path and version, subject, cause, start
//! time) is appended to `<data>/invoker<N>.journal`; when it has ended, an `ended` line with
//! its record, written before the completion is sent (so a record reported to a client
//! survives a crash before the store has it); once the record is stored, a `finished` line.
//! All are plain `write`s without an fsync: they survive a kill of the process (the kernel
//! holds the data), not a power loss of the host (the store's commit, an fsync, follows within
//! milliseconds).
//!
//! - On start ([`Journal::open`], then [`Journal::recover`]), every activation the previous
//!   process started and did not finish gets its record stored: the journaled one if it had
//!   ended, else a whisk error ([`INTERRUPTED`]); it is marked finished and its user code is
//!   not run again.
//! - A delivery whose activation is started or finished in the journal is not run
//!   ([`Journal::start`] says `false`): the bus redelivers messages whose offsets were not
//!   committed, and their records exist (or are being written).
//! - A message accepted more than [`STALE_AFTER_MS`] ago is run only if its activation has no
//!   record yet ([`Journal::admit`]): the controller records activations whose completion did
//!   not come in time (their invoker offline, the active-ack timeout) as not completed, and
//!   that answer stands. Fresh messages (all of them but after a restart or a long queue) cost
//!   no store read.
//! - [`Journal::store`] stores a record, retrying until it is stored or the invoker shuts down
//!   (then the offset must not be committed: the message comes back after the restart).
//! - Finished entries are kept until the bus commit covers their offset ([`Journal::watch`]
//!   wraps the consumer to see commits); the file is rewritten with what is still open or
//!   uncommitted once [`COMPACT_AT`] bytes were appended.
//!
//! There is no at-least-once option: an action that must be retried is retried by its caller
//! (the interrupted record says so), as in OpenWhisk.

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_bus::{BusError, Consumer, Delivery};
use whisk_core::{now_ms, Activation, ActivationId, ActivationResponse, KeyValue};
use whisk_proto::ActivationMessage;
use whisk_store::Store;

/// The error of an activation whose invoker stopped while it ran.
pub const INTERRUPTED: &str =
    "The invoker stopped (crashed or was restarted) while the activation was running; it was not run again.";

/// Age (since the controller accepted it) past which a message's activation may have a record
/// already, so [`Journal::admit`] reads the store before running it.
pub const STALE_AFTER_MS: i64 = 2_000;

/// Appended bytes after which the file is rewritten with only what is still needed.
pub const COMPACT_AT: u64 = 1 << 20;

/// What a started activation's record needs, and where it came from on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Started {
    /// Activation id.
    pub id: String,
    /// Bus partition of its message.
    pub partition: i32,
    /// Bus offset of its message.
    pub offset: i64,
    /// When its user code was started, epoch ms.
    pub start: i64,
    /// Namespace of the record.
    pub namespace: String,
    /// `namespace[/package]/name`.
    pub action_path: String,
    /// Action version.
    pub action_version: String,
    /// The invoking subject.
    pub subject: String,
    /// Parent activation, empty if none.
    pub cause: String,
}

/// A journal line as read back.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    Started(Started),
    Ended(Box<Activation>),
    Finished {
        id: String,
        partition: i32,
        offset: i64,
    },
}

/// A journal line as written: [`Line`] borrowing its parts (the same JSON), so journaling
/// copies nothing (an ended line holds the whole record, logs included).
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum LineRef<'a> {
    Started(&'a Started),
    Ended(&'a Activation),
    Finished {
        id: &'a str,
        partition: i32,
        offset: i64,
    },
}

struct State {
    file: File,
    /// Started, not finished (this process's and, until recovered, the previous one's).
    open: HashMap<String, Started>,
    /// The records of open activations that have ended (journaled, not stored yet).
    ended: HashMap<String, Activation>,
    /// Finished, the commit of their offset not seen yet: id → (partition, offset).
    finished: HashMap<String, (i32, i64)>,
    /// Highest committed offset per partition seen by this process.
    committed: HashMap<i32, i64>,
    /// Bytes appended since the last rewrite.
    appended: u64,
    /// The file's length: a failed append (a full disk) is cut back to it, so that a torn line
    /// never runs into the next one.
    len: u64,
}

/// The started journal of one invoker (see the module docs).
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
    /// Left by the previous process: started, never finished; the record if it had ended.
    leftover: Mutex<Vec<(Started, Option<Activation>)>>,
    shutdown: CancellationToken,
}

impl Journal {
    /// Opens (or creates) the journal of invoker `id` in `dir`, reading what the previous
    /// process left; `shutdown` ends [`Journal::store`]'s retries.
    pub fn open(dir: &Path, id: u32, shutdown: CancellationToken) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("invoker{id}.journal"));
        let mut open = HashMap::new();
        let mut ended = HashMap::new();
        let mut finished = HashMap::new();
        if let Ok(f) = File::open(&path) {
            // A line torn by a kill mid-write does not parse and is skipped.
            for line in BufReader::new(f).split(b'\n') {
                match serde_json::from_slice::<Line>(&line?) {
                    Ok(Line::Started(s)) => {
                        open.insert(s.id.clone(), s);
                    }
                    Ok(Line::Ended(a)) => {
                        if open.contains_key(a.activation_id.as_str()) {
                            ended.insert(a.activation_id.as_str().to_string(), *a);
                        }
                    }
                    Ok(Line::Finished {
                        id,
                        partition,
                        offset,
                    }) => {
                        open.remove(&id);
                        ended.remove(&id);
                        finished.insert(id, (partition, offset));
                    }
                    Err(_) => {}
                }
            }
        }
        let leftover = open
            .values()
            .map(|s| (s.clone(), ended.get(&s.id).cloned()))
            .collect();
        let file = rewrite(&path, &open, &ended, &finished)?;
        let len = file.metadata()?.len();
        Ok(Self {
            path,
            state: Mutex::new(State {
                file,
                open,
                ended,
                finished,
                committed: HashMap::new(),
                appended: 0,
                len,
            }),
            leftover: Mutex::new(leftover),
            shutdown,
        })
    }

    /// The activations the previous process started and never finished, with the record of
    /// those that had ended (until [`Journal::recover`] has stored their records).
    pub fn leftover(&self) -> Vec<(Started, Option<Activation>)> {
        self.leftover.lock().clone()
    }

    /// Stores the record of every activation the previous process started and never
    /// finished (its journaled record if it had ended, else the [`INTERRUPTED`] one), and
    /// marks each finished; their number. Retries until stored or shut down.
    pub async fn recover(&self, store: &dyn Store) -> usize {
        let leftover = self.leftover();
        let (mut interrupted_n, mut ended_n) = (0, 0);
        for (s, record) in &leftover {
            let (record, n) = match record {
                Some(r) => (r.clone(), &mut ended_n),
                None => (interrupted(s), &mut interrupted_n),
            };
            if self.put(store, &record).await {
                *n += 1;
            }
        }
        tracing::info!(
            interrupted = interrupted_n,
            ended = ended_n,
            journal = %self.path.display(),
            "the activations the previous invoker left unfinished have their records"
        );
        self.leftover.lock().retain(|(s, _)| self.is_open(&s.id));
        interrupted_n + ended_n
    }

    /// [`Journal::start`], after checking that a stale message's activation has no record
    /// yet (see [`STALE_AFTER_MS`]): `false` when it must not run.
    pub async fn admit(
        &self,
        store: &dyn Store,
        msg: &ActivationMessage,
        partition: i32,
        offset: i64,
    ) -> bool {
        if msg.accepted_at_ms > 0 && now_ms() - msg.accepted_at_ms > STALE_AFTER_MS {
            if let Ok(id) = ActivationId::parse(&msg.activation_id) {
                match store.get_activation(&msg.namespace, &id).await {
                    Ok(Some(_)) => {
                        tracing::info!(activation = %id, "a stale activation has a record already (the controller gave up on it); not run");
                        return false;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, activation = %id, "reading the record of a stale activation failed; running it")
                    }
                }
            }
        }
        self.start(msg, partition, offset)
    }

    /// Marks the activation of `msg` (delivered at `partition`/`offset`) started before its
    /// user code runs: `false` when it must not run (started or finished already).
    pub fn start(&self, msg: &ActivationMessage, partition: i32, offset: i64) -> bool {
        let mut st = self.state.lock();
        if st.open.contains_key(&msg.activation_id) || st.finished.contains_key(&msg.activation_id)
        {
            tracing::info!(activation = %msg.activation_id, "redelivered activation not run again");
            return false;
        }
        let s = Started {
            id: msg.activation_id.clone(),
            partition,
            offset,
            start: now_ms(),
            namespace: msg.namespace.clone(),
            action_path: msg.action_path.clone(),
            action_version: msg.action_version.clone(),
            subject: msg.subject.clone(),
            cause: msg.cause.clone(),
        };
        st.append(&LineRef::Started(&s));
        st.open.insert(s.id.clone(), s);
        true
    }

    /// Marks `id` finished: its record is stored.
    pub fn finish(&self, id: &str) {
        let mut st = self.state.lock();
        let Some(s) = st.open.remove(id) else {
            return;
        };
        st.ended.remove(id);
        st.append(&LineRef::Finished {
            id: &s.id,
            partition: s.partition,
            offset: s.offset,
        });
        st.finished.insert(s.id, (s.partition, s.offset));
        if st.appended >= COMPACT_AT {
            self.compact(&mut st);
        }
    }

    /// The entry of `id` while it is started and not finished.
    pub fn open_entry(&self, id: &str) -> Option<Started> {
        self.state.lock().open.get(id).cloned()
    }

    /// True while `id` is started and not finished.
    pub fn is_open(&self, id: &str) -> bool {
        self.state.lock().open.contains_key(id)
    }

    /// The bus committed `partition` up to `offset`: finished entries at or before it are no
    /// longer needed.
    pub fn committed(&self, partition: i32, offset: i64) {
        let mut st = self.state.lock();
        let c = st.committed.entry(partition).or_insert(offset);
        *c = (*c).max(offset);
    }

    /// Journals `activation` as ended at once (call it before reporting the record), then
    /// the future stores it, retrying (backing off up to 5 s) until it is stored or the
    /// invoker shuts down, and marks it finished. `false` when it was not stored: its offset
    /// must not be committed (the journaled record is stored at the next start).
    pub fn store<'a>(
        &'a self,
        store: &'a dyn Store,
        activation: &'a Activation,
    ) -> impl std::future::Future<Output = bool> + Send + 'a {
        {
            let mut st = self.state.lock();
            let id = activation.activation_id.as_str();
            if st.open.contains_key(id) && !st.ended.contains_key(id) {
                st.append(&LineRef::Ended(activation));
                st.ended.insert(id.to_string(), activation.clone());
            }
        }
        self.put(store, activation)
    }

    async fn put(&self, store: &dyn Store, activation: &Activation) -> bool {
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0u64;
        loop {
            match store.put_activation(activation).await {
                Ok(()) => {
                    self.finish(activation.activation_id.as_str());
                    return true;
                }
                Err(e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, activation = %activation.activation_id, "storing the activation failed; retrying");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    tracing::error!(activation = %activation.activation_id, "shutting down before the activation record was stored; its message stays uncommitted");
                    return false;
                }
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Wraps `consumer` so that its commits reach [`Journal::committed`].
    pub fn watch(self: &std::sync::Arc<Self>, consumer: Box<dyn Consumer>) -> Box<dyn Consumer> {
        Box::new(Watched {
            inner: consumer,
            journal: self.clone(),
        })
    }

    /// Rewrites the file with the open entries and the finished ones not committed yet.
    fn compact(&self, st: &mut State) {
        let committed = std::mem::take(&mut st.committed);
        st.finished
            .retain(|_, (p, o)| committed.get(p).is_none_or(|c| *o > *c));
        st.committed = committed;
        match rewrite(&self.path, &st.open, &st.ended, &st.finished) {
            Ok(file) => {
                st.len = file.metadata().map(|m| m.len()).unwrap_or(0);
                st.file = file;
                st.appended = 0;
            }
            Err(e) => {
                tracing::warn!(error = %e, journal = %self.path.display(), "compacting the journal failed");
                st.appended = 0;
            }
        }
    }
}

impl State {
    fn append(&mut self, line: &LineRef<'_>) {
        let mut bytes = serde_json::to_vec(line).unwrap_or_default();
        bytes.push(b'\n');
        if let Err(e) = self.file.write_all(&bytes) {
            tracing::error!(error = %e, "appending to the invoker journal failed");
            // Part of the line may be on disk: cut it off, or the next line would run into it.
            if let Err(e) = self.file.set_len(self.len) {
                tracing::error!(error = %e, "cutting a torn journal line failed");
            }
            return;
        }
        self.len += bytes.len() as u64;
        self.appended += bytes.len() as u64;
    }
}

/// Writes `open` and `finished` to a new file that replaces `path`; it, open for appending.
fn rewrite(
    path: &Path,
    open: &HashMap<String, Started>,
    ended: &HashMap<String, Activation>,
    finished: &HashMap<String, (i32, i64)>,
) -> std::io::Result<File> {
    let tmp = path.with_extension("journal.new");
    let mut out = Vec::new();
    for s in open.values() {
        serde_json::to_writer(&mut out, &LineRef::Started(s)).map_err(std::io::Error::other)?;
        out.push(b'\n');
        if let Some(a) = ended.get(&s.id) {
            serde_json::to_writer(&mut out, &LineRef::Ended(a)).map_err(std::io::Error::other)?;
            out.push(b'\n');
        }
    }
    for (id, (partition, offset)) in finished {
        let line = LineRef::Finished {
            id,
            partition: *partition,
            offset: *offset,
        };
        serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    std::fs::write(&tmp, &out)?;
    std::fs::rename(&tmp, path)?;
    OpenOptions::new().append(true).open(path)
}

/// The whisk error record of an activation interrupted by the end of its invoker.
pub fn interrupted(s: &Started) -> Activation {
    let end = now_ms().max(s.start);
    let name = s.action_path.rsplit('/').next().unwrap_or_default();
    Activation {
        namespace: s.namespace.clone(),
        name: name.to_string(),
        version: s.action_version.clone(),
        subject: s.subject.clone(),
        activation_id: ActivationId::parse(&s.id).unwrap_or_else(|_| ActivationId::generate()),
        start: s.start,
        end,
        duration: end - s.start,
        response: ActivationResponse::whisk_error(INTERRUPTED),
        logs: vec![],
        annotations: vec![KeyValue {
            key: "path".into(),
            value: serde_json::json!(s.action_path),
        }],
        publish: false,
        cause: (!s.cause.is_empty()).then(|| s.cause.clone()),
    }
}

/// A consumer whose commits are reported to the journal.
struct Watched {
    inner: Box<dyn Consumer>,
    journal: std::sync::Arc<Journal>,
}

#[async_trait]
impl Consumer for Watched {
    async fn recv(&mut self) -> Result<Delivery, BusError> {
        self.inner.recv().await
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        self.inner.commit(delivery).await?;
        self.journal.committed(delivery.partition, delivery.offset);
        Ok(())
    }
}
