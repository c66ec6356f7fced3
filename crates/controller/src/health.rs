//! What this controller knows of the invokers: state from their `health` pings (offline after a
//! silence), and the memory its own in-flight activations take on each. Scheduling reads and
//! reserves under one lock, using the pure choice of [`crate::balancer`].
//!
//! Overload: when no healthy invoker has room, [`Invokers::place`] waits for room (an activation
//! completing, an invoker coming up) at most `overload_wait`, with at most `overload_queue`
//! activations waiting at once; past either it refuses (the caller answers 503 "System is
//! overloaded, try again later."), and [`Invokers::overloaded`] counts the refusals.

use crate::balancer::{self, Slot};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use whisk_proto::{InvokerStatus, PingMessage};

/// Invoker ids above this are rejected as malformed pings.
const MAX_INVOKERS: u32 = 4096;

#[derive(Debug, Clone)]
struct InvokerState {
    status: InvokerStatus,
    last_seen: Instant,
    user_memory_mb: u64,
    free_memory_mb: u64,
    containers: u32,
    reserved_mb: u64,
}

/// One invoker as `GET /invokers/details` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokerDetail {
    /// `invoker<N>/<N>`, the key of `GET /invokers`.
    pub name: String,
    /// The invoker id.
    pub id: u32,
    /// `up`, `unhealthy` or `down`, as in `GET /invokers`.
    pub state: &'static str,
    /// Memory budget of its action containers, MB (from its last ping).
    #[serde(rename = "userMemoryMB")]
    pub user_memory_mb: u64,
    /// Memory not taken by its containers, MB (from its last ping).
    #[serde(rename = "freeMemoryMB")]
    pub free_memory_mb: u64,
    /// Memory this controller reserved there for activations in flight, MB.
    #[serde(rename = "reservedMB")]
    pub reserved_mb: u64,
    /// Containers alive there (from its last ping).
    pub containers: u32,
    /// Milliseconds since its last ping; `None` when it never pinged this controller.
    pub last_ping_ms_ago: Option<u64>,
}

/// The invokers, indexed by id (ids never pinged are offline).
pub struct Invokers {
    offline_after: Duration,
    states: Mutex<Vec<Option<InvokerState>>>,
    changed: watch::Sender<u64>,
    /// Signalled when room may have appeared (memory released, a ping).
    freed: Notify,
    overload_wait: Duration,
    overload_queue: usize,
    waiting: AtomicUsize,
    overloaded: AtomicU64,
}

impl Invokers {
    /// No invoker known yet.
    pub fn new(offline_after: Duration) -> Self {
        Self {
            offline_after,
            states: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
            freed: Notify::new(),
            overload_wait: Duration::ZERO,
            overload_queue: 0,
            waiting: AtomicUsize::new(0),
            overloaded: AtomicU64::new(0),
        }
    }

    /// When every healthy invoker is full, [`Invokers::place`] waits up to `wait` for room,
    /// with at most `queue` activations waiting at once (zero of either: refuse at once).
    pub fn with_overload_queue(mut self, wait: Duration, queue: usize) -> Self {
        self.overload_wait = wait;
        self.overload_queue = queue;
        self
    }

    /// Activations refused because no healthy invoker had room (or none was healthy).
    pub fn overloaded(&self) -> u64 {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Activations waiting for room now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Records a ping; `false` when it is malformed.
    pub fn on_ping(&self, ping: &PingMessage) -> bool {
        if ping.invoker_id >= MAX_INVOKERS {
            return false;
        }
        let status = InvokerStatus::try_from(ping.status).unwrap_or(InvokerStatus::Unspecified);
        let id = ping.invoker_id as usize;
        {
            let mut states = self.states.lock();
            if states.len() <= id {
                states.resize(id + 1, None);
            }
            let reserved_mb = states[id].as_ref().map_or(0, |s| s.reserved_mb);
            states[id] = Some(InvokerState {
                status,
                last_seen: Instant::now(),
                user_memory_mb: ping.user_memory_mb,
                free_memory_mb: ping.free_memory_mb,
                containers: ping.containers,
                reserved_mb,
            });
        }
        self.changed.send_modify(|n| *n += 1);
        self.freed.notify_waiters();
        true
    }

    fn is_healthy(&self, s: &InvokerState) -> bool {
        s.status == InvokerStatus::Healthy && s.last_seen.elapsed() <= self.offline_after
    }

    /// True when invoker `id` pinged before but has been silent longer than the offline
    /// threshold.
    pub fn is_offline(&self, id: u32) -> bool {
        match self.states.lock().get(id as usize) {
            Some(Some(s)) => s.last_seen.elapsed() > self.offline_after,
            _ => false,
        }
    }

    /// How many invokers are healthy now.
    pub fn healthy_count(&self) -> usize {
        self.states
            .lock()
            .iter()
            .flatten()
            .filter(|s| self.is_healthy(s))
            .count()
    }

    fn state_word(&self, s: Option<&InvokerState>) -> &'static str {
        match s {
            Some(s) if self.is_healthy(s) => "up",
            Some(s) if s.last_seen.elapsed() <= self.offline_after => "unhealthy",
            _ => "down",
        }
    }

    /// `(id, "up" | "unhealthy" | "down")` of every invoker known.
    pub fn states(&self) -> Vec<(usize, &'static str)> {
        let states = self.states.lock();
        (0..states.len())
            .map(|i| (i, self.state_word(states[i].as_ref())))
            .collect()
    }

    /// State and memory of every invoker known.
    pub fn details(&self) -> Vec<InvokerDetail> {
        let states = self.states.lock();
        (0..states.len())
            .map(|i| {
                let s = states[i].as_ref();
                InvokerDetail {
                    name: format!("invoker{i}/{i}"),
                    id: i as u32,
                    state: self.state_word(s),
                    user_memory_mb: s.map_or(0, |s| s.user_memory_mb),
                    free_memory_mb: s.map_or(0, |s| s.free_memory_mb),
                    reserved_mb: s.map_or(0, |s| s.reserved_mb),
                    containers: s.map_or(0, |s| s.containers),
                    last_ping_ms_ago: s.map(|s| s.last_seen.elapsed().as_millis() as u64),
                }
            })
            .collect()
    }

    /// Waits until at least `n` invokers are healthy, at most `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.healthy_count() >= n {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.healthy_count() >= n,
            }
        }
    }

    fn slots(&self, states: &[Option<InvokerState>]) -> Vec<Slot> {
        states
            .iter()
            .map(|s| match s {
                Some(s) => Slot {
                    healthy: self.is_healthy(s),
                    free_mb: s.user_memory_mb.saturating_sub(s.reserved_mb),
                },
                None => Slot {
                    healthy: false,
                    free_mb: 0,
                },
            })
            .collect()
    }

    /// Chooses an invoker with room for an activation, by `how` (`Home`: OpenWhisk's sharding
    /// rule; `Spread`: the emptiest invoker), and reserves `memory_mb` on it; `None` when every
    /// healthy invoker is full or none is healthy. A `gang` member goes to a random healthy
    /// invoker when all are full (its gang was admitted as a whole).
    pub fn schedule(
        &self,
        hash: u64,
        memory_mb: u64,
        blackbox: bool,
        blackbox_fraction: f64,
        gang: bool,
        how: balancer::Placement,
    ) -> Option<u32> {
        let mut states = self.states.lock();
        let range = balancer::eligible(states.len(), blackbox, blackbox_fraction);
        let slots = self.slots(&states[range.clone()]);
        let pick = match how {
            balancer::Placement::Home => balancer::choose(&slots, hash, memory_mb),
            balancer::Placement::Spread => balancer::spread(&slots, hash, memory_mb),
        };
        let pick = pick.or_else(|| {
            gang.then(|| {
                balancer::overflow(&slots, |n| {
                    use rand::Rng;
                    rand::rng().random_range(0..n)
                })
            })
            .flatten()
        })?;
        let id = range.start + pick;
        if let Some(s) = states[id].as_mut() {
            s.reserved_mb += memory_mb;
        }
        Some(id as u32)
    }

    /// [`Invokers::schedule`], waiting for room when every healthy invoker is full (see the
    /// module's documentation); `None` (counted in [`Invokers::overloaded`]) when there is
    /// still none, or no invoker is healthy.
    pub async fn place(
        &self,
        hash: u64,
        memory_mb: u64,
        blackbox: bool,
        blackbox_fraction: f64,
        gang: bool,
        how: balancer::Placement,
    ) -> Option<u32> {
        let schedule = || self.schedule(hash, memory_mb, blackbox, blackbox_fraction, gang, how);
        if let Some(id) = schedule() {
            return Some(id);
        }
        let refuse = || {
            self.overloaded.fetch_add(1, Ordering::Relaxed);
            None
        };
        if self.overload_wait.is_zero() || self.healthy_count() == 0 {
            return refuse();
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        if before >= self.overload_queue {
            return refuse();
        }
        let deadline = tokio::time::Instant::now() + self.overload_wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(id) = schedule() {
                return Some(id);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return schedule().or_else(refuse);
            }
        }
    }

    /// How many activations of `memory_mb` the healthy invokers have room for at once, each
    /// on one invoker (a gang is admitted when all its members fit).
    pub fn room_for(&self, memory_mb: u64) -> u64 {
        let states = self.states.lock();
        balancer::room(&self.slots(&states), memory_mb)
    }

    /// Gives back memory reserved by [`Invokers::schedule`].
    pub fn release(&self, invoker: u32, memory_mb: u64) {
        if let Some(Some(s)) = self.states.lock().get_mut(invoker as usize) {
            s.reserved_mb = s.reserved_mb.saturating_sub(memory_mb);
        }
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: balancer::Placement = balancer::Placement::Home;

    fn ping(id: u32, status: InvokerStatus) -> PingMessage {
        PingMessage {
            invoker_id: id,
            user_memory_mb: 512,
            free_memory_mb: 512,
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn schedules_on_healthy_invokers_with_memory() {
        let inv = Invokers::new(Duration::from_secs(10));
        assert_eq!(inv.schedule(0, 256, false, 1.0, false, HOME), None);
        assert!(inv.on_ping(&ping(1, InvokerStatus::Healthy)));
        assert!(!inv.on_ping(&ping(MAX_INVOKERS, InvokerStatus::Healthy)));
        assert_eq!(inv.states(), vec![(0, "down"), (1, "up")]);
        let d = inv.details();
        assert_eq!((d[0].state, d[0].last_ping_ms_ago), ("down", None));
        assert_eq!(
            (d[1].name.as_str(), d[1].state, d[1].free_memory_mb),
            ("invoker1/1", "up", 512)
        );
        assert_eq!(inv.room_for(256), 2);
        assert_eq!(inv.schedule(0, 256, false, 1.0, false, HOME), Some(1));
        assert_eq!(inv.schedule(0, 256, false, 1.0, false, HOME), Some(1));
        // full: refused, but a gang member still goes to the only healthy one
        assert_eq!(inv.schedule(0, 256, false, 1.0, false, HOME), None);
        assert_eq!(inv.room_for(256), 0);
        assert_eq!(inv.schedule(0, 256, false, 1.0, true, HOME), Some(1));
        inv.release(1, 768);
        inv.on_ping(&ping(1, InvokerStatus::Unhealthy));
        assert_eq!(inv.schedule(0, 256, false, 1.0, true, HOME), None);
        assert_eq!(inv.healthy_count(), 0);
    }

    #[tokio::test]
    async fn place_waits_for_room_within_its_bounds() {
        let inv = std::sync::Arc::new(
            Invokers::new(Duration::from_secs(10))
                .with_overload_queue(Duration::from_millis(300), 1),
        );
        inv.on_ping(&ping(0, InvokerStatus::Healthy));
        assert_eq!(inv.place(0, 512, false, 1.0, false, HOME).await, Some(0));
        // Full: the first waits and gets the room released meanwhile; a second waiter is
        // beyond the queue and refused at once.
        let waiter = {
            let inv = inv.clone();
            tokio::spawn(async move { inv.place(0, 256, false, 1.0, false, HOME).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(inv.waiting(), 1);
        assert_eq!(inv.place(0, 256, false, 1.0, false, HOME).await, None);
        assert_eq!(inv.overloaded(), 1);
        inv.release(0, 512);
        assert_eq!(waiter.await.unwrap(), Some(0));
        // Full again: refused once the wait is over.
        inv.schedule(0, 256, false, 1.0, false, HOME).unwrap();
        let t0 = std::time::Instant::now();
        assert_eq!(inv.place(0, 256, false, 1.0, false, HOME).await, None);
        assert!(t0.elapsed() >= Duration::from_millis(250));
        assert_eq!((inv.overloaded(), inv.waiting()), (2, 0));
    }

    #[test]
    fn goes_offline_without_pings() {
        let inv = Invokers::new(Duration::ZERO);
        inv.on_ping(&ping(0, InvokerStatus::Healthy));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(inv.healthy_count(), 0);
        assert_eq!(inv.states(), vec![(0, "down")]);
    }
}
