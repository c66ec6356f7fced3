//! The container seam: [`ContainerFactory`] creates containers, a [`Container`] is one running
//! action proxy (a process or a Docker container) reachable over HTTP. Also the collection of
//! an activation's log lines up to the runtime's sentinel, shared by every factory, and the
//! tap live logs use to see those lines as they are printed ([`LiveSink`]; nothing is copied
//! while nobody follows).

use async_trait::async_trait;
use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Notify;

/// The line the runtime writes to stdout and stderr after each activation.
pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// The variable that gives a container its proxy's secret (the runtime's `SECRET_ENV`):
/// `/init` and `/run` answer 403 to a caller without `Authorization: Bearer <secret>`.
pub const SECRET_ENV: &str = "WHISK_PROXY_SECRET";

/// The log line (timestamped, on stderr) of an action killed for exceeding `memory_mb`.
pub fn out_of_memory_line(memory_mb: u64) -> String {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    format!(
        "{ts} stderr: The action exceeded its memory limit of {memory_mb} MB and was killed (out of memory)."
    )
}

/// A failure to create or control a container.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// The container could not be created or started.
    #[error("container could not be started: {0}")]
    Start(String),
    /// The runtime (proxy, image, daemon) is not available.
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
    /// The container is gone.
    #[error("container is gone: {0}")]
    Gone(String),
    /// The runtime refuses what was asked, e.g. an image not on its allowed list.
    #[error("{0}")]
    Refused(String),
}

/// What to create.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// A readable name (prefix `whisk_`).
    pub name: String,
    /// Runtime family (`python`, `nodejs`, `native`: a family of `whisk_core::kinds::KINDS`),
    /// which says the launcher and the default image.
    pub family: String,
    /// Docker image, for factories that use images.
    pub image: Option<String>,
    /// Memory limit, MB.
    pub memory_mb: u64,
    /// Environment of the container.
    pub env: Vec<(String, String)>,
    /// A host folder given to the container (the peer map folder).
    pub peers_dir: Option<PathBuf>,
}

/// Creates containers.
#[async_trait]
pub trait ContainerFactory: Send + Sync + 'static {
    /// Creates and starts a container whose proxy answers on [`Container::addr`].
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>, ContainerError>;
    /// Creates a container for `namespace` straight away (the Docker runtime puts it on that
    /// namespace's network); by default the same as [`ContainerFactory::create`].
    async fn create_in(
        &self,
        spec: ContainerSpec,
        namespace: &str,
    ) -> Result<Arc<dyn Container>, ContainerError> {
        let _ = namespace;
        self.create(spec).await
    }
    /// Removes containers a previous run of this invoker left behind.
    async fn cleanup(&self) -> Result<(), ContainerError>;
}

/// One running action proxy.
#[async_trait]
pub trait Container: Send + Sync {
    /// Unique id.
    fn id(&self) -> &str;
    /// The address peers use to reach this instance.
    fn ip(&self) -> IpAddr;
    /// Where the invoker reaches `/init` and `/run`.
    fn addr(&self) -> SocketAddr;
    /// False once the container has exited.
    fn is_alive(&self) -> bool;
    /// Gives a prewarmed container (a stem, created without a namespace) to `namespace`
    /// before its `/init`: the Docker runtime moves it onto that namespace's network. By
    /// default nothing to do.
    async fn assign(&self, namespace: &str) -> Result<(), ContainerError> {
        let _ = namespace;
        Ok(())
    }
    /// Freezes the container (pause).
    async fn suspend(&self) -> Result<(), ContainerError>;
    /// Thaws the container.
    async fn resume(&self) -> Result<(), ContainerError>;
    /// Stops and removes the container.
    async fn destroy(&self);
    /// The log lines of the activation that just ended: everything printed since the last
    /// collection, up to the sentinel on both streams (waiting at most `wait` for it).
    async fn logs(&self, limit_bytes: usize, wait: Duration) -> Vec<String>;
    /// True once the kernel has killed a process of this container for exceeding its memory
    /// limit (Docker: its `oom` event or `State.OOMKilled`; process: its cgroup's `oom_kill`
    /// count). The invoker asks after a failed activation, to answer OpenWhisk's "The action
    /// exhausted its memory and was aborted." By default never.
    async fn oom_killed(&self) -> bool {
        false
    }
    /// The collector of this container's output, for live logs ([`LogCollector::tap`]). By
    /// default none (no live lines: they arrive with the record).
    fn log_collector(&self) -> Option<LogCollector> {
        None
    }
}

/// Where a tapped [`LogCollector`] hands each line as it is recorded (live logs).
pub trait LiveSink: Send + Sync {
    /// Line `index` (counted from the start of the collection: the position it will have in
    /// the record's logs before truncation), formatted as in the record.
    fn line(&self, index: usize, line: &str);
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    bytes: usize,
    dropped: bool,
    /// Sentinels seen on stdout and stderr.
    marks: [u64; 2],
    /// Sentinels consumed by collections.
    collected: u64,
    closed: [bool; 2],
    /// The live tap of the current collection, if someone follows it.
    live: Option<Arc<dyn LiveSink>>,
}

/// Accumulates a container's stdout/stderr lines between sentinels.
#[derive(Clone, Default)]
pub struct LogCollector {
    state: Arc<Mutex<LogState>>,
    notify: Arc<Notify>,
}

/// Most bytes kept between two collections, whatever an action prints.
const HARD_CAP_BYTES: usize = 16 * 1024 * 1024;

impl LogCollector {
    /// A new, empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one line from `stream` (0 = stdout, 1 = stderr).
    pub fn push(&self, stream: usize, line: &str) {
        let mut s = self.state.lock();
        if line == SENTINEL {
            s.marks[stream] += 1;
            drop(s);
            self.notify.notify_waiters();
            return;
        }
        if s.bytes + line.len() > HARD_CAP_BYTES {
            s.dropped = true;
            return;
        }
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let name = if stream == 0 { "stdout" } else { "stderr" };
        s.bytes += line.len();
        let line = format!("{ts} {name}: {line}");
        if let Some(live) = &s.live {
            live.line(s.lines.len(), &line);
        }
        s.lines.push(line);
    }

    /// Hands every line recorded from now until the next collection to `sink`, after
    /// `so_far` has seen the lines recorded until now (indices from 0), both under the
    /// collector's lock: no line is missed or repeated.
    pub fn tap(&self, sink: Arc<dyn LiveSink>, so_far: impl FnOnce(&[String])) {
        let mut s = self.state.lock();
        so_far(&s.lines);
        s.live = Some(sink);
    }

    /// Marks `stream` as closed (the container exited).
    pub fn close(&self, stream: usize) {
        self.state.lock().closed[stream] = true;
        self.notify.notify_waiters();
    }

    /// Waits for the next sentinel on both streams (or their end, or `wait`), then takes the
    /// lines, truncated to `limit_bytes` with OpenWhisk's notice.
    pub async fn collect(&self, limit_bytes: usize, wait: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            {
                let s = self.state.lock();
                let target = s.collected + 1;
                let done = (0..2).all(|i| s.marks[i] >= target || s.closed[i]);
                if done {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        let mut s = self.state.lock();
        s.collected += 1;
        // Skip sentinels of activations whose logs were never collected.
        let min_mark = s.marks[0].min(s.marks[1]);
        if s.collected < min_mark {
            s.collected = min_mark;
        }
        s.live = None;
        let lines = std::mem::take(&mut s.lines);
        let dropped = std::mem::take(&mut s.dropped);
        s.bytes = 0;
        drop(s);
        truncate_logs(lines, limit_bytes, dropped)
    }
}

/// The line that ends logs cut at `limit_bytes` (OpenWhisk's words).
pub fn truncated_line(limit_bytes: usize) -> String {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    format!(
        "{ts} stderr: Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."
    )
}

fn truncate_logs(lines: Vec<String>, limit_bytes: usize, dropped: bool) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len());
    let mut total = 0usize;
    let mut truncated = dropped;
    for l in lines {
        if total + l.len() > limit_bytes {
            truncated = true;
            break;
        }
        total += l.len();
        out.push(l);
    }
    if truncated {
        out.push(truncated_line(limit_bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collects_up_to_both_sentinels() {
        let c = LogCollector::new();
        c.push(0, "hello");
        c.push(1, "oops");
        c.push(0, SENTINEL);
        let c2 = c.clone();
        let h = tokio::spawn(async move { c2.collect(1 << 20, Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.push(1, SENTINEL);
        let lines = h.await.unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(" stdout: hello"), "{lines:?}");
        assert!(lines[1].ends_with(" stderr: oops"));
        c.push(0, "next");
        c.push(0, SENTINEL);
        c.push(1, SENTINEL);
        assert_eq!(c.collect(1 << 20, Duration::from_secs(1)).await.len(), 1);
    }

    #[tokio::test]
    async fn truncates_to_the_limit() {
        let c = LogCollector::new();
        for _ in 0..100 {
            c.push(0, &"x".repeat(100));
        }
        c.close(0);
        c.close(1);
        let lines = c.collect(1000, Duration::from_millis(10)).await;
        assert!(lines.len() < 12);
        assert!(lines.last().unwrap().contains("Logs were truncated"));
    }
}
