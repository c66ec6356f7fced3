//! Live logs on the invoker: the activations running here whose lines someone may follow
//! ([`LiveTaps`]), answered when a controller asks (a [`LogFollowMessage`] on the
//! `logFollow` topic, which every invoker reads).
//!
//! Nothing is copied or sent while nobody follows: running an activation only files it under
//! its id as it starts ([`LiveTaps::start`]), then its container's [`LogCollector`] once it
//! has one ([`LiveTaps::attach`]), and removes it when the record is stored
//! ([`LiveTaps::end`]). A follow request for an activation filed here is answered at once
//! (an answer with no line says "it runs here", even while its container is being created)
//! and taps the collector ([`LogCollector::tap`]): the lines printed so far are sent to the
//! follower's topic, then a flusher task sends what is printed every
//! [`LiveTaps::interval`], and when the record is stored, the rest of the record's logs with
//! its status ([`LiveLogsMessage::ended`]). Lines are numbered from 0 in the order of the
//! record's `logs`: a follower that got lines `0..k` live prints the record's lines from `k`.
//! The log limit applies as in the record: past it, the live lines end with OpenWhisk's
//! truncation line. Activations sharing a container (kinds that run several at once) are not
//! filed: their lines are told apart only at the end, and arrive with the record.

use crate::container::{truncated_line, Container, LiveSink, LogCollector};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use whisk_bus::Bus;
use whisk_core::Activation;
use whisk_proto::{CompletionMessage, LiveLogsMessage, LogFollowMessage, Message};

/// Default period of live-log batches.
pub const LIVE_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);

/// The activations running on this invoker whose lines can be followed; cheap to share.
pub struct LiveTaps {
    bus: Arc<dyn Bus>,
    invoker_id: u32,
    interval: Duration,
    running: Mutex<HashMap<String, Arc<Tap>>>,
}

struct Tap {
    activation_id: String,
    namespace: String,
    state: Mutex<TapState>,
    wake: Notify,
}

#[derive(Default)]
struct TapState {
    /// The container's collector, once it has one.
    collector: Option<LogCollector>,
    /// The activation's log limit, bytes.
    limit_bytes: usize,
    /// The record is stored: no more followers.
    closed: bool,
    /// The lines to send (the truncation line last once the limit is reached).
    lines: Vec<String>,
    /// Lines of the collector seen (the next expected index).
    seen: usize,
    bytes: usize,
    truncated: bool,
    /// Followers: topic and the index of the first line not yet sent there (`None`: not
    /// answered yet).
    followers: Vec<(String, Option<usize>)>,
    /// Set once the record is stored: its status and logs.
    end: Option<(String, Vec<String>)>,
}

impl TapState {
    fn take(&mut self, index: usize, line: &str) {
        let limit_bytes = self.limit_bytes;
        if index != self.seen {
            return;
        }
        self.seen += 1;
        if self.truncated {
            return;
        }
        // The record's rule: a line that would pass the limit ends the logs.
        if self.bytes + line.len() > limit_bytes {
            self.truncated = true;
            self.lines.push(truncated_line(limit_bytes));
            return;
        }
        self.bytes += line.len();
        self.lines.push(line.to_string());
    }
}

impl LiveSink for Tap {
    fn line(&self, index: usize, line: &str) {
        self.state.lock().take(index, line);
    }
}

impl LiveTaps {
    /// Sends live lines on `bus` as invoker `invoker_id`, in batches every `interval`.
    pub fn new(bus: Arc<dyn Bus>, invoker_id: u32, interval: Duration) -> Self {
        Self {
            bus,
            invoker_id,
            interval: interval.max(Duration::from_millis(10)),
            running: Mutex::default(),
        }
    }

    /// The period of live-log batches.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Files activation `id` of `namespace`, starting, until [`LiveTaps::end`].
    pub fn start(&self, id: &str, namespace: &str) {
        let tap = Arc::new(Tap {
            activation_id: id.to_string(),
            namespace: namespace.to_string(),
            state: Mutex::default(),
            wake: Notify::new(),
        });
        self.running.lock().insert(id.to_string(), tap);
    }

    /// Activation `id` runs in `container` (logs cut at `limit_bytes`): its lines can be
    /// followed (a container without a collector: not live, its lines come with the record).
    pub fn attach(&self, id: &str, container: &dyn Container, limit_bytes: usize) {
        let Some(tap) = self.running.lock().get(id).cloned() else {
            return;
        };
        let Some(collector) = container.log_collector() else {
            return;
        };
        let followed = {
            let mut s = tap.state.lock();
            s.limit_bytes = limit_bytes;
            s.collector = Some(collector.clone());
            !s.followers.is_empty()
        };
        if followed {
            Self::tap(&tap, &collector);
        }
    }

    /// Taps `collector` for `tap`: under the collector's lock (lines are recorded under it
    /// too), no line is missed or repeated between the lines so far and the tap.
    fn tap(tap: &Arc<Tap>, collector: &LogCollector) {
        let sink: Arc<dyn LiveSink> = tap.clone();
        collector.tap(sink, |so_far| {
            let mut s = tap.state.lock();
            for (i, l) in so_far.iter().enumerate() {
                s.take(i, l);
            }
        });
    }

    /// Activations filed now (for tests).
    pub fn running(&self) -> usize {
        self.running.lock().len()
    }

    /// Activation `record` ended and its record is stored: its followers get the rest of its
    /// logs and its status; it is no longer filed.
    pub fn end(&self, record: &Activation) {
        let Some(tap) = self.running.lock().remove(record.activation_id.as_str()) else {
            return;
        };
        let mut s = tap.state.lock();
        s.closed = true;
        if s.followers.is_empty() {
            return;
        }
        let status = record.response.status_code.as_str().to_string();
        s.end = Some((status, record.logs.clone()));
        drop(s);
        tap.wake.notify_one();
    }

    /// Answers a follow request: nothing unless the activation runs here, in the request's
    /// namespace. `self` is shared with the flusher it may start.
    pub fn follow(self: &Arc<Self>, req: &LogFollowMessage) {
        let Some(tap) = self.running.lock().get(&req.activation_id).cloned() else {
            return;
        };
        if tap.namespace != req.namespace || req.reply_to.is_empty() {
            return;
        }
        let (first, collector) = {
            let mut s = tap.state.lock();
            if s.closed {
                return;
            }
            let first = s.followers.is_empty();
            match s.followers.iter_mut().find(|(t, _)| *t == req.reply_to) {
                // Asked again: its answer was lost or late; send everything again.
                Some(f) => f.1 = None,
                None => s.followers.push((req.reply_to.clone(), None)),
            }
            (first, s.collector.clone())
        };
        if first {
            if let Some(collector) = collector {
                Self::tap(&tap, &collector);
            }
            let me = self.clone();
            let tap = tap.clone();
            tokio::spawn(async move { me.flush(tap).await });
        } else {
            tap.wake.notify_one();
        }
    }

    /// Sends each follower what it has not had, every interval, until the end is sent.
    async fn flush(self: Arc<Self>, tap: Arc<Tap>) {
        loop {
            let mut sends = vec![];
            let ended = {
                let mut s = tap.state.lock();
                let s = &mut *s;
                let (lines, end) = match &s.end {
                    Some((status, logs)) => (logs, Some(status.clone())),
                    None => (&s.lines, None),
                };
                for (topic, next) in s.followers.iter_mut() {
                    let from = next.unwrap_or(0).min(lines.len());
                    if next.is_some() && from == lines.len() && end.is_none() {
                        continue;
                    }
                    sends.push((
                        topic.clone(),
                        LiveLogsMessage {
                            activation_id: tap.activation_id.clone(),
                            namespace: tap.namespace.clone(),
                            from: from as u64,
                            lines: lines[from..].to_vec(),
                            ended: end.is_some(),
                            status: end.clone().unwrap_or_default(),
                            invoker_id: self.invoker_id,
                        },
                    ));
                    *next = Some(lines.len());
                }
                end.is_some()
            };
            for (topic, msg) in sends {
                let completion = CompletionMessage {
                    live_logs: Some(msg),
                    ..Default::default()
                };
                if let Err(e) = self
                    .bus
                    .publish(&topic, Bytes::from(completion.encode_to_vec()))
                    .await
                {
                    tracing::debug!(error = %e, %topic, "publishing live log lines failed");
                }
            }
            if ended {
                return;
            }
            let _ = tokio::time::timeout(self.interval, tap.wake.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ContainerError;
    use async_trait::async_trait;
    use whisk_bus::InProcessBus;
    use whisk_core::{ActivationId, ActivationResponse};

    /// Only what live logs use of a container: its collector.
    struct Output(LogCollector);

    #[async_trait]
    impl Container for Output {
        fn id(&self) -> &str {
            "output"
        }
        fn ip(&self) -> std::net::IpAddr {
            std::net::Ipv4Addr::LOCALHOST.into()
        }
        fn addr(&self) -> std::net::SocketAddr {
            ([127, 0, 0, 1], 9).into()
        }
        fn is_alive(&self) -> bool {
            true
        }
        async fn suspend(&self) -> Result<(), ContainerError> {
            Ok(())
        }
        async fn resume(&self) -> Result<(), ContainerError> {
            Ok(())
        }
        async fn destroy(&self) {}
        async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
            self.0.collect(limit_bytes, wait).await
        }
        fn log_collector(&self) -> Option<LogCollector> {
            Some(self.0.clone())
        }
    }

    async fn next(consumer: &mut Box<dyn whisk_bus::Consumer>) -> LiveLogsMessage {
        let d = tokio::time::timeout(Duration::from_secs(5), consumer.recv())
            .await
            .expect("live lines")
            .unwrap();
        CompletionMessage::decode(d.payload.as_ref())
            .unwrap()
            .live_logs
            .expect("live lines, not a completion")
    }

    /// A follower gets the lines so far at once, then later ones, then the rest of the
    /// record with its status; another namespace's request gets nothing.
    #[tokio::test]
    async fn a_follower_gets_every_line_once_in_order_then_the_end() {
        let bus = Arc::new(InProcessBus::new());
        let mut inbox = bus.subscribe("completed7", "completed7").await.unwrap();
        let mut mallory = bus.subscribe("completed8", "completed8").await.unwrap();
        let taps = Arc::new(LiveTaps::new(bus.clone(), 3, Duration::from_millis(10)));
        let id = ActivationId::generate();
        let out = Output(LogCollector::new());
        taps.start(id.as_str(), "guest");
        let ask = |ns: &str, to: &str| LogFollowMessage {
            activation_id: id.to_string(),
            namespace: ns.into(),
            reply_to: to.into(),
        };
        // Asked while its container is being made: "it runs here", no line.
        taps.follow(&ask("guest", "completed7"));
        let m = next(&mut inbox).await;
        assert_eq!(
            (m.from, m.lines.len(), m.ended, m.invoker_id),
            (0, 0, false, 3)
        );
        out.0.push(0, "one");
        taps.attach(id.as_str(), &out, 1 << 20);
        out.0.push(1, "two");
        taps.follow(&ask("mallory", "completed8"));
        let mut lines = vec![];
        while lines.len() < 2 {
            let m = next(&mut inbox).await;
            assert_eq!(m.from as usize, lines.len());
            lines.extend(m.lines);
        }
        assert!(lines[0].ends_with(" stdout: one") && lines[1].ends_with(" stderr: two"));
        out.0.push(0, "three");
        out.0.close(0);
        out.0.close(1);
        let mut logs = out.logs(1 << 20, Duration::from_millis(10)).await;
        logs.push("after the collection".into());
        let record = Activation {
            namespace: "guest".into(),
            name: "a".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: id.clone(),
            start: 0,
            end: 0,
            duration: 0,
            response: ActivationResponse::application_error(serde_json::json!({"error": "x"})),
            logs: logs.clone(),
            annotations: vec![],
            publish: false,
            cause: None,
        };
        taps.end(&record);
        let mut rest = vec![];
        loop {
            let m = next(&mut inbox).await;
            assert_eq!(m.from as usize, 2 + rest.len());
            rest.extend(m.lines);
            if m.ended {
                assert_eq!(m.status, "application error");
                break;
            }
        }
        lines.extend(rest);
        assert_eq!(lines, logs);
        assert_eq!(taps.running(), 0);
        let stranger = tokio::time::timeout(Duration::from_millis(50), mallory.recv()).await;
        assert!(stranger.is_err(), "another namespace got lines");
    }

    /// What live logs add to an activation nobody follows (filing, attaching, ending),
    /// printed: `cargo test --release -p whisk-invoker --lib cost -- --nocapture`.
    #[tokio::test]
    async fn cost_of_an_activation_nobody_follows() {
        let taps = LiveTaps::new(Arc::new(InProcessBus::new()), 0, LIVE_INTERVAL_DEFAULT);
        let out = Output(LogCollector::new());
        let ids: Vec<ActivationId> = (0..20_000).map(|_| ActivationId::generate()).collect();
        let mut record = Activation {
            namespace: "guest".into(),
            name: "a".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: ids[0].clone(),
            start: 0,
            end: 0,
            duration: 0,
            response: ActivationResponse::success(serde_json::json!({})),
            logs: vec![],
            annotations: vec![],
            publish: false,
            cause: None,
        };
        let t0 = std::time::Instant::now();
        for id in &ids {
            taps.start(id.as_str(), "guest");
            taps.attach(id.as_str(), &out, 1 << 20);
            record.activation_id = id.clone();
            taps.end(&record);
        }
        let each = t0.elapsed() / ids.len() as u32;
        eprintln!("live logs, an activation nobody follows: {each:?} (start + attach + end)");
        assert_eq!(taps.running(), 0);
    }

    #[test]
    fn live_lines_stop_at_the_limit_with_the_records_words() {
        let mut s = TapState {
            limit_bytes: 100,
            ..TapState::default()
        };
        for i in 0..10 {
            s.take(i, &"x".repeat(40));
        }
        assert_eq!(s.lines.len(), 3);
        assert!(s.lines[2].contains("Logs were truncated"));
        // A line seen twice (or out of order) is not taken again.
        let mut s = TapState {
            limit_bytes: 100,
            ..TapState::default()
        };
        s.take(0, "a");
        s.take(0, "a");
        s.take(2, "c");
        assert_eq!(s.lines, vec!["a".to_string()]);
    }
}
