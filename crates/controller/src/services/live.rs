//! [`Live`]: live logs on the controller — the bounded buffer of the lines of activations
//! someone follows here, fed by the invokers over the bus, and the followers reading it.
//!
//! The controller never calls an invoker: a follower's controller publishes a
//! [`LogFollowMessage`] on the `logFollow` topic, which every invoker reads; the one running
//! the activation answers on this controller's completion topic with
//! [`LiveLogsMessage`]s (inside a `CompletionMessage`): the lines so far at once (none says
//! "it runs here"), then new ones in batches, then the rest of the record's logs and its
//! status when the record is stored. The request is sent again every second until answered
//! (the invoker may not have taken the activation off the bus yet). So any controller can
//! follow any activation, whichever controller placed it: lines come from the invoker, not
//! from the placing controller. On the placing controller, the completion ends the buffer too.
//!
//! Nothing is kept for activations nobody follows here: the completion consumer looks
//! entries up only while there are some ([`Live::on_completion`]). Each buffer holds at most
//! [`MAX_BYTES`] of lines (older lines go first; a follower that fell behind them is told how
//! many it missed), and at most [`MAX_FOLLOWED`] activations are followed at once.
//!
//! A follower that never gets an end (its invoker died) ends when the record appears in the
//! store (the placing controller writes one for lost activations): the store is read every
//! [`STORE_CHECK`] while following.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use whisk_bus::Bus;
use whisk_core::{Activation, ActivationId, WhiskError};
use whisk_proto::{CompletionMessage, LiveLogsMessage, LogFollowMessage, Message};
use whisk_store::Store;

/// Most bytes of lines kept per followed activation.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most activations followed at once on one controller.
pub const MAX_FOLLOWED: usize = 1024;
/// How long a follow of an activation this controller does not know waits for an invoker's
/// answer or the record before answering 404.
pub const UNKNOWN_WAIT: Duration = Duration::from_secs(3);
/// How often an unanswered follow request is sent again.
const ASK_AGAIN: Duration = Duration::from_secs(1);
/// How often a follower reads the store for a record whose end never came.
pub const STORE_CHECK: Duration = Duration::from_secs(3);

/// What a follower is told, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// One log line, as in the record.
    Line(String),
    /// This many lines were dropped from the buffer before the follower read them.
    Skipped(u64),
    /// The activation ended with this status; nothing follows.
    End {
        /// The activation.
        activation_id: String,
        /// The record's status (`success`, `application error`, ...).
        status: String,
    },
}

/// How a follow starts.
pub enum Following {
    /// The activation had ended: its record (the stored lines, then the end).
    Ended(Box<Activation>),
    /// It runs (or is about to): its events as they come.
    Live(mpsc::Receiver<LiveEvent>),
}

/// The live buffers of this controller; cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    reply_to: String,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// `entries.len()`, read without the lock on every completion.
    followed: AtomicUsize,
}

struct Entry {
    state: Mutex<EntryState>,
    notify: Notify,
}

#[derive(Default)]
struct EntryState {
    /// An invoker answered (the activation runs there).
    answered: bool,
    /// Kept lines; `lines[0]` is line number `base`.
    lines: VecDeque<String>,
    base: u64,
    bytes: usize,
    /// The record's status once ended.
    end: Option<String>,
    followers: usize,
}

impl EntryState {
    /// Adds lines numbered from `from` (lines already held are skipped; a gap is jumped).
    fn add(&mut self, from: u64, lines: impl IntoIterator<Item = String>) {
        if self.end.is_some() {
            return;
        }
        for (i, line) in lines.into_iter().enumerate() {
            let n = from + i as u64;
            let next = self.base + self.lines.len() as u64;
            if n < next {
                continue;
            }
            if n > next {
                self.lines.clear();
                self.bytes = 0;
                self.base = n;
            }
            self.bytes += line.len();
            self.lines.push_back(line);
            while self.bytes > MAX_BYTES && self.lines.len() > 1 {
                if let Some(old) = self.lines.pop_front() {
                    self.bytes -= old.len();
                    self.base += 1;
                }
            }
        }
    }

    /// The events after line `next` (advancing it).
    fn since(&self, next: &mut u64, out: &mut Vec<LiveEvent>) {
        if *next < self.base {
            out.push(LiveEvent::Skipped(self.base - *next));
            *next = self.base;
        }
        let skip = (*next - self.base) as usize;
        for line in self.lines.iter().skip(skip) {
            out.push(LiveEvent::Line(line.clone()));
        }
        *next = self.base + self.lines.len() as u64;
    }
}

impl Live {
    /// Buffers of a controller whose completion topic is `reply_to`.
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, reply_to: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                reply_to: reply_to.to_string(),
                entries: Mutex::default(),
                followed: AtomicUsize::new(0),
            }),
        }
    }

    /// Activations followed here now.
    pub fn followed(&self) -> usize {
        self.inner.followed.load(Ordering::Relaxed)
    }

    /// Lines from an invoker.
    pub fn on_lines(&self, msg: LiveLogsMessage) {
        let Some(entry) = self.inner.entries.lock().get(&msg.activation_id).cloned() else {
            return;
        };
        {
            let mut s = entry.state.lock();
            s.answered = true;
            s.add(msg.from, msg.lines);
            if msg.ended {
                s.end = Some(msg.status);
            }
        }
        entry.notify.notify_waiters();
    }

    /// A completion on this controller's topic: ends the activation's buffer, if followed.
    /// Costs one atomic load while nothing is followed.
    pub fn on_completion(&self, msg: &CompletionMessage) {
        if self.followed() == 0 {
            return;
        }
        let Some(entry) = self.inner.entries.lock().get(&msg.activation_id).cloned() else {
            return;
        };
        let Ok(record) = serde_json::from_slice::<Activation>(&msg.activation) else {
            return;
        };
        self.end_with(&entry, record);
    }

    fn end_with(&self, entry: &Entry, record: Activation) {
        {
            let mut s = entry.state.lock();
            s.add(0, record.logs);
            if s.end.is_none() {
                s.end = Some(record.response.status_code.as_str().to_string());
            }
        }
        entry.notify.notify_waiters();
    }

    /// Follows activation `id` of `namespace`. `placed_here`: this controller placed it and
    /// has not seen it end (then it is known at once); otherwise an activation with no
    /// record is known once an invoker answers, and 404 after [`UNKNOWN_WAIT`] without.
    pub async fn follow(
        &self,
        namespace: &str,
        id: &ActivationId,
        placed_here: bool,
    ) -> Result<Following, WhiskError> {
        if let Some(record) = self.inner.store.get_activation(namespace, id).await? {
            return Ok(Following::Ended(Box::new(record)));
        }
        let entry = self.join(id.as_str())?;
        let guard = Joined {
            live: self.clone(),
            id: id.to_string(),
        };
        self.ask(namespace, id.as_str()).await;
        if !placed_here {
            let deadline = Instant::now() + UNKNOWN_WAIT;
            let mut asked = Instant::now();
            let mut checked = Instant::now();
            loop {
                let notified = entry.notify.notified();
                if entry.state.lock().answered {
                    break;
                }
                if checked.elapsed() >= Duration::from_millis(500) {
                    checked = Instant::now();
                    if let Some(record) = self.inner.store.get_activation(namespace, id).await? {
                        return Ok(Following::Ended(Box::new(record)));
                    }
                }
                if Instant::now() >= deadline {
                    return Err(WhiskError::not_found());
                }
                if asked.elapsed() >= ASK_AGAIN {
                    asked = Instant::now();
                    self.ask(namespace, id.as_str()).await;
                }
                let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
            }
        }
        let (tx, rx) = mpsc::channel(64);
        let me = self.clone();
        let (ns, id) = (namespace.to_string(), id.clone());
        tokio::spawn(async move { me.feed(guard, entry, ns, id, tx).await });
        Ok(Following::Live(rx))
    }

    /// Hands `entry`'s events to `tx` until the end or the follower leaves.
    async fn feed(
        self,
        _guard: Joined,
        entry: Arc<Entry>,
        namespace: String,
        id: ActivationId,
        tx: mpsc::Sender<LiveEvent>,
    ) {
        let mut next = 0u64;
        let mut asked = Instant::now();
        let mut checked = Instant::now();
        loop {
            let notified = entry.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut events = vec![];
            let (end, answered) = {
                let s = entry.state.lock();
                s.since(&mut next, &mut events);
                (s.end.clone(), s.answered)
            };
            for e in events {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if let Some(status) = end {
                let _ = tx
                    .send(LiveEvent::End {
                        activation_id: id.to_string(),
                        status,
                    })
                    .await;
                return;
            }
            if !answered && asked.elapsed() >= ASK_AGAIN {
                asked = Instant::now();
                self.ask(&namespace, id.as_str()).await;
            }
            if checked.elapsed() >= STORE_CHECK {
                checked = Instant::now();
                if let Ok(Some(record)) = self.inner.store.get_activation(&namespace, &id).await {
                    self.end_with(&entry, record);
                    continue;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tx.closed() => return,
            }
        }
    }

    /// Registers a follower of `id` (503 past [`MAX_FOLLOWED`]).
    fn join(&self, id: &str) -> Result<Arc<Entry>, WhiskError> {
        let mut entries = self.inner.entries.lock();
        if !entries.contains_key(id) && entries.len() >= MAX_FOLLOWED {
            return Err(WhiskError::unavailable(format!(
                "Too many activations followed on this controller (at most {MAX_FOLLOWED}); try again later."
            )));
        }
        let entry = entries
            .entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Entry {
                    state: Mutex::default(),
                    notify: Notify::new(),
                })
            })
            .clone();
        entry.state.lock().followers += 1;
        self.inner.followed.store(entries.len(), Ordering::Relaxed);
        Ok(entry)
    }

    fn leave(&self, id: &str) {
        let mut entries = self.inner.entries.lock();
        let gone = match entries.get(id) {
            Some(e) => {
                let mut s = e.state.lock();
                s.followers = s.followers.saturating_sub(1);
                s.followers == 0
            }
            None => false,
        };
        if gone {
            entries.remove(id);
        }
        self.inner.followed.store(entries.len(), Ordering::Relaxed);
    }

    /// Asks the invokers for `id`'s lines.
    async fn ask(&self, namespace: &str, id: &str) {
        let req = LogFollowMessage {
            activation_id: id.to_string(),
            namespace: namespace.to_string(),
            reply_to: self.inner.reply_to.clone(),
        };
        if let Err(e) = self
            .inner
            .bus
            .publish(
                whisk_proto::LOG_FOLLOW_TOPIC,
                bytes::Bytes::from(req.encode_to_vec()),
            )
            .await
        {
            tracing::warn!(error = %e, activation = id, "publishing a follow request failed");
        }
    }
}

/// A follower's registration, given back when dropped.
struct Joined {
    live: Live,
    id: String,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.live.leave(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(r: std::ops::Range<u32>) -> Vec<String> {
        r.map(|i| format!("line {i}")).collect()
    }

    #[test]
    fn lines_are_numbered_deduplicated_and_bounded() {
        let mut s = EntryState::default();
        s.add(0, lines(0..3));
        s.add(1, lines(1..5));
        let (mut next, mut out) = (0, vec![]);
        s.since(&mut next, &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(out[4], LiveEvent::Line("line 4".into()));
        // Past the bound the oldest lines go; a follower behind them is told.
        let big = "x".repeat(MAX_BYTES / 2 + 1);
        s.add(5, vec![big.clone(), big.clone(), big]);
        let (mut next, mut out) = (0, vec![]);
        s.since(&mut next, &mut out);
        assert_eq!(out[0], LiveEvent::Skipped(7));
        assert_eq!(out.len(), 2);
        assert_eq!(next, 8);
    }
}
