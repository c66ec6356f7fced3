//! [`DurableBus`]: the in-process bus of a standalone platform, with the messages of chosen
//! topics kept in an append-only log file until every consumer group has committed them, so
//! that a process killed and restarted on the same folder gets them again.
//!
//! Each durable topic has `<dir>/<topic>.log`: records of `[kind u8][len u32 LE][body]`, a
//! published message (`kind` 1: offset `i64` LE, then the payload) or a commit of a group
//! (`kind` 2: offset `i64` LE, then the group's name). Writes are plain `write`s, no fsync:
//! they survive a kill of the process (the kernel holds the data), not a power loss of the
//! host. A record torn by a kill mid-write ends the log when read back. On opening, and once
//! [`COMPACT_AT`] bytes were appended, the log is rewritten with only the commits and the
//! messages some group has not committed.
//!
//! A group that joins a durable topic gets every kept message past its committed offset
//! (the topic's offsets go on across restarts); other topics behave as [`InProcessBus`]'s.

use crate::{Bus, BusError, Consumer, Delivery, InProcessBus};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Appended bytes after which a topic's log is rewritten.
pub const COMPACT_AT: u64 = 8 << 20;

const PUBLISHED: u8 = 1;
const COMMITTED: u8 = 2;

type Channel = (
    async_channel::Sender<(i64, Bytes)>,
    async_channel::Receiver<(i64, Bytes)>,
);

/// Which topics are kept on disk.
pub type DurableTopics = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A bus in this process whose chosen topics survive a restart (see the module docs).
#[derive(Clone)]
pub struct DurableBus {
    dir: PathBuf,
    durable: DurableTopics,
    memory: InProcessBus,
    topics: Arc<Mutex<HashMap<String, Arc<Mutex<Topic>>>>>,
}

struct Topic {
    path: PathBuf,
    log: File,
    next: i64,
    /// Published, not committed by every group that joined.
    kept: BTreeMap<i64, Bytes>,
    /// Committed offset per group.
    committed: HashMap<String, i64>,
    groups: HashMap<String, Channel>,
    appended: u64,
    /// The log's length: a failed append (a full disk) is cut back to it, so that a torn record
    /// never hides the records appended after it.
    len: u64,
}

impl DurableBus {
    /// A bus keeping the topics `durable` accepts in `dir` (created if missing).
    pub fn open(
        dir: &Path,
        durable: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Result<Self, BusError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            durable: Arc::new(durable),
            memory: InProcessBus::new(),
            topics: Default::default(),
        })
    }

    /// The durable topic `name`, read from its log on first use.
    fn topic(&self, name: &str) -> Result<Arc<Mutex<Topic>>, BusError> {
        let mut topics = self.topics.lock();
        if let Some(t) = topics.get(name) {
            return Ok(t.clone());
        }
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || name.starts_with('.')
        {
            return Err(BusError::Config(format!("invalid topic name {name:?}")));
        }
        let t = Arc::new(Mutex::new(Topic::open(
            self.dir.join(format!("{name}.log")),
        )?));
        topics.insert(name.to_string(), t.clone());
        Ok(t)
    }
}

impl Topic {
    fn open(path: PathBuf) -> Result<Self, BusError> {
        let mut kept = BTreeMap::new();
        let mut committed: HashMap<String, i64> = HashMap::new();
        let mut last = 0;
        if let Ok(mut f) = File::open(&path) {
            let mut data = Vec::new();
            f.read_to_end(&mut data).map_err(|e| io(&path, e))?;
            let mut rest = &data[..];
            while rest.len() >= 5 {
                let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                let Some(body) = rest.get(5..5 + len).filter(|b| b.len() >= 8) else {
                    break;
                };
                let offset = i64::from_le_bytes(body[..8].try_into().unwrap_or_default());
                match rest[0] {
                    PUBLISHED => {
                        kept.insert(offset, Bytes::copy_from_slice(&body[8..]));
                        last = last.max(offset);
                    }
                    COMMITTED => {
                        let group = String::from_utf8_lossy(&body[8..]).into_owned();
                        let c = committed.entry(group).or_insert(offset);
                        *c = (*c).max(offset);
                        last = last.max(offset);
                    }
                    _ => break,
                }
                rest = &rest[5 + len..];
            }
        }
        if let Some(&low) = committed.values().min() {
            kept = kept.split_off(&(low + 1));
        }
        let log = rewrite(&path, &kept, &committed)?;
        let len = log.metadata().map_err(|e| io(&path, e))?.len();
        Ok(Topic {
            log,
            len,
            path,
            next: last + 1,
            kept,
            committed,
            groups: HashMap::new(),
            appended: 0,
        })
    }

    /// Forgets the messages every group has committed.
    fn drop_committed(&mut self) {
        if let Some(&low) = self.committed.values().min() {
            self.kept = self.kept.split_off(&(low + 1));
        }
    }

    fn append(&mut self, kind: u8, offset: i64, body: &[u8]) -> Result<(), BusError> {
        let len = u32::try_from(8 + body.len())
            .map_err(|_| BusError::Config("message over 4 GiB".into()))?;
        let mut rec = Vec::with_capacity(13 + body.len());
        rec.push(kind);
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&offset.to_le_bytes());
        rec.extend_from_slice(body);
        if let Err(e) = self.log.write_all(&rec) {
            // Part of the record may be on disk: cut it off, or it would end the log when read
            // back, taking every later record with it.
            if let Err(t) = self.log.set_len(self.len) {
                tracing::error!(error = %t, log = %self.path.display(), "cutting a torn bus record failed");
            }
            return Err(io(&self.path, e));
        }
        self.len += rec.len() as u64;
        self.appended += rec.len() as u64;
        Ok(())
    }

    fn compact(&mut self) -> Result<(), BusError> {
        self.log = rewrite(&self.path, &self.kept, &self.committed)?;
        self.len = self.log.metadata().map_err(|e| io(&self.path, e))?.len();
        self.appended = 0;
        Ok(())
    }
}

/// Writes the kept messages and the commits to a new log that replaces `path`; it, open for
/// appending.
fn rewrite(
    path: &Path,
    kept: &BTreeMap<i64, Bytes>,
    committed: &HashMap<String, i64>,
) -> Result<File, BusError> {
    let mut out = Vec::new();
    let mut record = |kind: u8, offset: i64, body: &[u8]| {
        out.push(kind);
        out.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(body);
    };
    for (group, offset) in committed {
        record(COMMITTED, *offset, group.as_bytes());
    }
    for (offset, payload) in kept {
        record(PUBLISHED, *offset, payload);
    }
    let tmp = path.with_extension("log.new");
    std::fs::write(&tmp, &out).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io(path, e))
}

fn io(path: &Path, e: std::io::Error) -> BusError {
    BusError::Unavailable(format!("bus log {}: {e}", path.display()))
}

#[async_trait]
impl Bus for DurableBus {
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        if (self.durable)(topic) {
            self.topic(topic)?;
            Ok(())
        } else {
            self.memory.ensure_topic(topic).await
        }
    }

    /// Headers of durable topics are not kept in the log (what the platform puts there, the
    /// trace context, its activation messages carry too).
    async fn publish_with_headers(
        &self,
        topic: &str,
        payload: Bytes,
        headers: crate::Headers,
    ) -> Result<(), BusError> {
        if !(self.durable)(topic) {
            return self
                .memory
                .publish_with_headers(topic, payload, headers)
                .await;
        }
        self.publish(topic, payload).await
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        if !(self.durable)(topic) {
            return self.memory.publish(topic, payload).await;
        }
        let t = self.topic(topic)?;
        let mut t = t.lock();
        let offset = t.next;
        t.append(PUBLISHED, offset, &payload)?;
        t.next += 1;
        t.kept.insert(offset, payload.clone());
        for (tx, _) in t.groups.values() {
            tx.try_send((offset, payload.clone()))
                .map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        if !(self.durable)(topic) {
            return self.memory.subscribe(topic, group).await;
        }
        let t = self.topic(topic)?;
        let rx = {
            let mut guard = t.lock();
            let t = &mut *guard;
            match t.groups.get(group) {
                Some((_, rx)) => rx.clone(),
                None => {
                    let (tx, rx) = async_channel::unbounded();
                    let from = t.committed.get(group).copied().unwrap_or(0);
                    for (offset, payload) in t.kept.range(from + 1..) {
                        tx.try_send((*offset, payload.clone()))
                            .map_err(|_| BusError::Closed)?;
                    }
                    t.committed.entry(group.to_string()).or_insert(from);
                    t.groups.insert(group.to_string(), (tx, rx.clone()));
                    rx
                }
            }
        };
        Ok(Box::new(DurableConsumer {
            rx,
            topic: t,
            group: group.to_string(),
        }))
    }
}

struct DurableConsumer {
    rx: async_channel::Receiver<(i64, Bytes)>,
    topic: Arc<Mutex<Topic>>,
    group: String,
}

#[async_trait]
impl Consumer for DurableConsumer {
    async fn recv(&mut self) -> Result<Delivery, BusError> {
        let (offset, payload) = self.rx.recv().await.map_err(|_| BusError::Closed)?;
        Ok(Delivery {
            payload,
            offset,
            partition: 0,
            headers: Vec::new(),
        })
    }

    async fn commit(&mut self, delivery: &Delivery) -> Result<(), BusError> {
        let mut t = self.topic.lock();
        let current = t.committed.get(&self.group).copied().unwrap_or(0);
        if delivery.offset <= current {
            return Ok(());
        }
        t.append(COMMITTED, delivery.offset, self.group.as_bytes())?;
        t.committed.insert(self.group.clone(), delivery.offset);
        t.drop_committed();
        if t.appended >= COMPACT_AT {
            t.compact()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoker_topics(t: &str) -> bool {
        t.starts_with("invoker")
    }

    async fn recv(c: &mut Box<dyn Consumer>) -> Delivery {
        tokio::time::timeout(std::time::Duration::from_secs(5), c.recv())
            .await
            .expect("a message")
            .unwrap()
    }

    #[tokio::test]
    async fn uncommitted_messages_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
            bus.ensure_topic("invoker0").await.unwrap();
            let mut c = bus.subscribe("invoker0", "invoker0").await.unwrap();
            for i in 1..=4u8 {
                bus.publish("invoker0", Bytes::from(vec![i])).await.unwrap();
            }
            let first = recv(&mut c).await;
            let second = recv(&mut c).await;
            assert_eq!((first.offset, second.offset), (1, 2));
            c.commit(&second).await.unwrap();
            // A topic that is not durable is not kept.
            bus.publish("health", Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
        let mut c = bus.subscribe("invoker0", "invoker0").await.unwrap();
        let third = recv(&mut c).await;
        assert_eq!((third.offset, &third.payload[..]), (3, &[3u8][..]));
        assert_eq!(recv(&mut c).await.payload[..], [4u8]);
        // Offsets go on after the restart.
        bus.publish("invoker0", Bytes::from_static(b"5"))
            .await
            .unwrap();
        let fifth = recv(&mut c).await;
        assert_eq!(fifth.offset, 5);
        c.commit(&fifth).await.unwrap();
        drop(c);
        drop(bus);
        let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
        let mut c = bus.subscribe("invoker0", "invoker0").await.unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), c.recv())
                .await
                .is_err(),
            "everything was committed"
        );
        let mut h = bus.subscribe("health", "h").await.unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), h.recv())
                .await
                .is_err(),
            "the health topic is not durable"
        );
    }

    #[tokio::test]
    async fn a_torn_last_record_is_dropped_and_compaction_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        {
            let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
            for i in 1..=3u8 {
                bus.publish("invoker1", Bytes::from(vec![i; 100]))
                    .await
                    .unwrap();
            }
        }
        // A kill in the middle of appending a fourth message.
        let log = dir.path().join("invoker1.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[PUBLISHED, 200, 0, 0, 0, 4, 0]).unwrap();
        drop(f);
        let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
        let mut c = bus.subscribe("invoker1", "g").await.unwrap();
        let mut got = vec![];
        for _ in 0..3 {
            got.push(recv(&mut c).await);
        }
        assert_eq!(
            got.iter().map(|d| d.offset).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        c.commit(&got[0]).await.unwrap();
        {
            let t = bus.topic("invoker1").unwrap();
            let mut t = t.lock();
            t.compact().unwrap();
        }
        drop(c);
        drop(bus);
        let size = std::fs::metadata(&log).unwrap().len();
        assert!(
            size < 2 * 113 + 20,
            "compacted log of two messages: {size} bytes"
        );
        let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
        let mut c = bus.subscribe("invoker1", "g").await.unwrap();
        assert_eq!(recv(&mut c).await.offset, 2);
        assert_eq!(recv(&mut c).await.offset, 3);
        assert!(bus.topic("../x").is_err());
    }

    /// Rough cost of a durable message (publish, receive, commit), printed (run with
    /// `--release --nocapture`); nothing is asserted about time.
    #[tokio::test]
    async fn rough_cost_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let bus = DurableBus::open(dir.path(), invoker_topics).unwrap();
        let mut c = bus.subscribe("invoker0", "invoker0").await.unwrap();
        let payload = Bytes::from(vec![7u8; 1024]);
        let n = 20_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            bus.publish("invoker0", payload.clone()).await.unwrap();
            let d = c.recv().await.unwrap();
            c.commit(&d).await.unwrap();
        }
        eprintln!(
            "durable bus: {:.1} µs per 1 KiB message (publish, receive, commit)",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
