//! The container pool of one invoker: warm containers per (namespace, action, version),
//! prewarmed stems per kind, a memory budget shared by all of them, eviction of idle
//! containers when memory is short or after the idle timeout, and optional pause of idle
//! containers after a grace period.
//!
//! Intra-container concurrency (OpenWhisk's `limits.concurrency`): a request with a
//! concurrency above 1 may share a busy container of its action that has a free slot (up to
//! that many activations at once). The first activation of a shared container initializes it;
//! the others wait for that ([`ContainerPool::initialized`]) before their `/run`. The container
//! goes back to the idle set when its last activation ends, or is destroyed then if one of
//! them found it broken (no new activation joins it meanwhile).
//!
//! Why one file of this length: the pool's state (warm, stems, busy, memory) is one lock's worth
//! of invariants; splitting its acquire/release paths would spread them apart.

use crate::config::{InvokerConfig, StemCell};
use crate::container::{Container, ContainerError, ContainerFactory, ContainerSpec};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a warm container can be reused for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WarmKey {
    /// Invoking namespace.
    pub namespace: String,
    /// Fully qualified action name.
    pub action: String,
    /// Action version.
    pub version: String,
}

/// What kind of container an activation needs.
#[derive(Debug, Clone)]
pub struct Request {
    /// Reuse key.
    pub key: WarmKey,
    /// Launcher family.
    pub family: String,
    /// Image (Docker factories).
    pub image: Option<String>,
    /// Memory, MB.
    pub memory_mb: u64,
    /// Activations one container may run at once (1: a container per activation).
    pub concurrency: usize,
}

/// Pause state of one container, shared by the pool and its pause timer.
struct PauseState {
    in_use: AtomicBool,
    paused: tokio::sync::Mutex<bool>,
}

/// A container owned by the pool.
#[derive(Clone)]
pub struct Entry {
    /// The container.
    pub container: Arc<dyn Container>,
    /// Its memory, MB.
    pub memory_mb: u64,
    /// Launcher family.
    pub family: String,
    /// Its peer-map folder (given to the container as `WHISK_PEERS_DIR`).
    pub peers_dir: std::path::PathBuf,
    /// The secret its proxy wants on `/init` and `/run` (only this invoker knows it).
    pub secret: String,
    /// `None` while it is an uninitialised stem.
    pub key: Option<WarmKey>,
    last_used: Instant,
    pause: Arc<PauseState>,
}

/// A container handed out for one activation.
pub struct Lease {
    /// The container and its bookkeeping.
    pub entry: Entry,
    /// True when `/init` must still be called.
    pub needs_init: bool,
    /// The init gate of a shared (concurrent) container.
    shared: Option<Arc<Gate>>,
}

impl Lease {
    /// Whether other activations may run in this container at the same time.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }
}

/// Whether a shared container's `/init` is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Pending,
    Ready,
    Failed,
}

type Gate = tokio::sync::watch::Sender<Init>;

/// A container running activations of one action concurrently.
struct Shared {
    /// The pool's copy (leases hold clones).
    entry: Entry,
    active: usize,
    max: usize,
    gate: Arc<Gate>,
    /// Broken: no new activation joins; destroyed when the last one ends.
    closed: bool,
}

/// What `acquire` found under the lock.
enum Pick {
    /// A slot in a shared container.
    Join(Entry, Arc<Gate>),
    /// An idle container: warm (false) or a stem (true: needs `/init`).
    Idle(Entry, bool),
    /// Room for a new container (memory reserved).
    New,
    /// Everything busy.
    Wait,
}

#[derive(Default)]
struct State {
    idle: Vec<Entry>,
    shared: Vec<Shared>,
    used_mb: u64,
    busy_mb: u64,
    creating_stems: usize,
    containers: usize,
}

/// The pool.
pub struct ContainerPool {
    factory: Arc<dyn ContainerFactory>,
    capacity_mb: u64,
    stems: Vec<StemCell>,
    pause_grace: Option<Duration>,
    idle_timeout: Duration,
    name_prefix: String,
    peers_root: std::path::PathBuf,
    counter: AtomicU64,
    state: Mutex<State>,
    freed: Notify,
}

impl ContainerPool {
    /// A pool over `factory` with the invoker's settings.
    /// Each container gets its own peer-map folder under `peers_root`.
    pub fn new(
        factory: Arc<dyn ContainerFactory>,
        cfg: &InvokerConfig,
        peers_root: std::path::PathBuf,
    ) -> Arc<Self> {
        Arc::new(Self {
            factory,
            capacity_mb: cfg.user_memory_mb,
            stems: cfg.stem_cells.clone(),
            pause_grace: cfg.pause_grace,
            idle_timeout: cfg.idle_timeout,
            name_prefix: format!("whisk_{}", cfg.id),
            peers_root,
            counter: AtomicU64::new(0),
            state: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// Memory not taken by busy containers, MB (idle ones can be evicted).
    pub fn free_mb(&self) -> u64 {
        self.capacity_mb.saturating_sub(self.state.lock().busy_mb)
    }

    /// The memory budget, MB.
    pub fn capacity_mb(&self) -> u64 {
        self.capacity_mb
    }

    /// Containers alive.
    pub fn containers(&self) -> usize {
        self.state.lock().containers
    }

    /// Counts and memory (MB) of the pool's containers now: `(busy, idle warm, prewarmed
    /// stems)`, each `(count, MB)` (what `/metrics` shows as OpenWhisk's containerPool gauges).
    pub fn stats(&self) -> [(usize, u64); 3] {
        let s = self.state.lock();
        let (mut idle, mut stems) = ((0, 0), (0, 0));
        for e in &s.idle {
            let slot = if e.key.is_some() {
                &mut idle
            } else {
                &mut stems
            };
            slot.0 += 1;
            slot.1 += e.memory_mb;
        }
        let busy = s.containers.saturating_sub(idle.0 + stems.0);
        [(busy, s.busy_mb), idle, stems]
    }

    /// Gives `spec` its peer map folder and a fresh secret for its proxy (returned too).
    fn prepare(&self, mut spec: ContainerSpec) -> (ContainerSpec, String) {
        let dir = self.peers_root.join(&spec.name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot create a peer map folder");
        }
        spec.peers_dir = Some(dir);
        let secret: String = rand::random::<[u8; 24]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        spec.env
            .push((crate::container::SECRET_ENV.to_string(), secret.clone()));
        (spec, secret)
    }

    fn name(&self, what: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let what: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        format!("{}_{n}_{what}", self.name_prefix)
    }

    /// Starts the stem refill and idle reaper tasks; the reaper's handle is returned (it ends
    /// once `shutdown` is cancelled).
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        self.refill_stems();
        let pool = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1).min(pool.idle_timeout));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => pool.reap_idle().await,
                }
            }
        })
    }

    /// Creates missing stems in the background.
    fn refill_stems(self: &Arc<Self>) {
        for stem in &self.stems {
            let family = match whisk_core::kinds::lookup(&stem.kind) {
                Some(k) => k.family.to_string(),
                None => {
                    tracing::warn!(kind = %stem.kind, "unknown kind in stem cell configuration");
                    continue;
                }
            };
            let missing = {
                let mut s = self.state.lock();
                let have = s
                    .idle
                    .iter()
                    .filter(|e| e.key.is_none() && e.family == family && e.memory_mb == stem.memory)
                    .count();
                let want = stem.count.saturating_sub(have + s.creating_stems);
                let room =
                    (self.capacity_mb.saturating_sub(s.used_mb) / stem.memory.max(1)) as usize;
                let n = want.min(room);
                s.creating_stems += n;
                s.used_mb += n as u64 * stem.memory;
                n
            };
            for _ in 0..missing {
                let pool = self.clone();
                let family = family.clone();
                let memory = stem.memory;
                tokio::spawn(async move {
                    let spec = ContainerSpec {
                        name: pool.name(&format!("prewarm_{family}")),
                        family: family.clone(),
                        image: None,
                        memory_mb: memory,
                        env: vec![],
                        peers_dir: None,
                    };
                    let (spec, secret) = pool.prepare(spec);
                    let peers_dir = spec.peers_dir.clone().unwrap_or_default();
                    let created = pool.factory.create(spec).await;
                    let mut s = pool.state.lock();
                    s.creating_stems -= 1;
                    match created {
                        Ok(container) => {
                            s.containers += 1;
                            s.idle.push(Entry {
                                peers_dir,
                                secret,
                                container,
                                memory_mb: memory,
                                family,
                                key: None,
                                last_used: Instant::now(),
                                pause: new_pause(),
                            });
                        }
                        Err(e) => {
                            s.used_mb -= memory;
                            tracing::warn!(error = %e, "prewarming a container failed");
                        }
                    }
                    drop(s);
                    pool.freed.notify_waiters();
                });
            }
        }
    }

    /// A container for `req`: warm if one is idle, else a stem, else a new one (evicting idle
    /// containers when memory is short, waiting when every container is busy).
    pub async fn acquire(
        self: &Arc<Self>,
        req: &Request,
        env: Vec<(String, String)>,
    ) -> Result<Lease, ContainerError> {
        if req.memory_mb > self.capacity_mb {
            return Err(ContainerError::Start(format!(
                "the action needs {} MB but the invoker has {} MB in all",
                req.memory_mb, self.capacity_mb
            )));
        }
        loop {
            let notified = self.freed.notified();
            let mut evicted = Vec::new();
            let picked = {
                let mut s = self.state.lock();
                let joinable = s.shared.iter_mut().find(|sh| {
                    req.concurrency > 1
                        && !sh.closed
                        && sh.active < sh.max
                        && sh.entry.key.as_ref() == Some(&req.key)
                        && sh.entry.container.is_alive()
                });
                if let Some(sh) = joinable {
                    sh.active += 1;
                    Pick::Join(sh.entry.clone(), sh.gate.clone())
                } else {
                    let warm = s
                        .idle
                        .iter()
                        .rposition(|e| e.key.as_ref() == Some(&req.key) && e.container.is_alive());
                    let stem = || {
                        s.idle.iter().position(|e| {
                            e.key.is_none()
                                && e.family == req.family
                                && e.memory_mb == req.memory_mb
                                && req.image.is_none()
                                && e.container.is_alive()
                        })
                    };
                    if let Some(i) = warm {
                        let e = s.idle.swap_remove(i);
                        s.busy_mb += e.memory_mb;
                        Pick::Idle(e, false)
                    } else if let Some(i) = stem() {
                        let e = s.idle.swap_remove(i);
                        s.busy_mb += e.memory_mb;
                        Pick::Idle(e, true)
                    } else {
                        // Evict least recently used idle containers until the new one fits.
                        s.idle.sort_by_key(|e| std::cmp::Reverse(e.last_used));
                        while s.used_mb + req.memory_mb > self.capacity_mb {
                            match s.idle.pop() {
                                Some(e) => {
                                    s.used_mb -= e.memory_mb;
                                    s.containers -= 1;
                                    evicted.push(e);
                                }
                                None => break,
                            }
                        }
                        if s.used_mb + req.memory_mb <= self.capacity_mb {
                            s.used_mb += req.memory_mb;
                            s.busy_mb += req.memory_mb;
                            Pick::New
                        } else {
                            Pick::Wait
                        }
                    }
                }
            };
            for e in evicted {
                tokio::spawn(destroy_entry(e));
            }
            match picked {
                Pick::Join(entry, gate) => {
                    let mut init = gate.subscribe();
                    let state = init
                        .wait_for(|i| *i != Init::Pending)
                        .await
                        .map(|i| *i)
                        .unwrap_or(Init::Failed);
                    let lease = Lease {
                        entry,
                        needs_init: false,
                        shared: Some(gate),
                    };
                    if state == Init::Ready {
                        return Ok(lease);
                    }
                    // Its first activation could not initialize it: leave, try elsewhere.
                    self.finish(lease, req.key.clone(), false);
                    continue;
                }
                Pick::Idle(entry, needs_init) => {
                    if needs_init {
                        self.refill_stems();
                    }
                    entry.pause.in_use.store(true, Ordering::SeqCst);
                    let mut paused = entry.pause.paused.lock().await;
                    if *paused {
                        if let Err(e) = entry.container.resume().await {
                            drop(paused);
                            self.discard(entry);
                            tracing::warn!(error = %e, "resuming a paused container failed");
                            continue;
                        }
                        *paused = false;
                    }
                    drop(paused);
                    if entry.key.is_none() {
                        // A stem: it joins the namespace (its network, in Docker) first.
                        if let Err(e) = entry.container.assign(&req.key.namespace).await {
                            self.discard(entry);
                            tracing::warn!(error = %e, "assigning a stem to a namespace failed");
                            continue;
                        }
                    }
                    return Ok(self.lease(entry, needs_init, req));
                }
                Pick::New => {
                    let spec = ContainerSpec {
                        name: self.name(&req.key.action),
                        family: req.family.clone(),
                        image: req.image.clone(),
                        memory_mb: req.memory_mb,
                        env,
                        peers_dir: None,
                    };
                    let (spec, secret) = self.prepare(spec);
                    let peers_dir = spec.peers_dir.clone().unwrap_or_default();
                    return match self.factory.create_in(spec, &req.key.namespace).await {
                        Ok(container) => {
                            self.state.lock().containers += 1;
                            let entry = Entry {
                                peers_dir,
                                secret,
                                container,
                                memory_mb: req.memory_mb,
                                family: req.family.clone(),
                                key: None,
                                last_used: Instant::now(),
                                pause: new_pause(),
                            };
                            entry.pause.in_use.store(true, Ordering::SeqCst);
                            Ok(self.lease(entry, true, req))
                        }
                        Err(e) => {
                            let mut s = self.state.lock();
                            s.used_mb -= req.memory_mb;
                            s.busy_mb -= req.memory_mb;
                            drop(s);
                            self.freed.notify_waiters();
                            Err(e)
                        }
                    };
                }
                Pick::Wait => notified.await,
            }
        }
    }

    /// The lease of a container taken for `req`: shared with later activations of the same
    /// action when its concurrency allows.
    fn lease(&self, mut entry: Entry, needs_init: bool, req: &Request) -> Lease {
        if req.concurrency <= 1 {
            return Lease {
                entry,
                needs_init,
                shared: None,
            };
        }
        entry.key = Some(req.key.clone());
        let state = if needs_init {
            Init::Pending
        } else {
            Init::Ready
        };
        let gate = Arc::new(tokio::sync::watch::Sender::new(state));
        self.state.lock().shared.push(Shared {
            entry: entry.clone(),
            active: 1,
            max: req.concurrency,
            gate: gate.clone(),
            closed: false,
        });
        // Activations of the same action waiting for room may join it now.
        self.freed.notify_waiters();
        Lease {
            entry,
            needs_init,
            shared: Some(gate),
        }
    }

    /// Tells the activations waiting to share `lease`'s container whether its `/init` worked.
    pub fn initialized(&self, lease: &Lease, ok: bool) {
        if let Some(gate) = &lease.shared {
            gate.send_replace(if ok { Init::Ready } else { Init::Failed });
        }
    }

    /// Ends an activation's lease: its container goes back to the idle set when `reusable`
    /// (a shared one when its last activation ends), or is destroyed.
    pub fn finish(self: &Arc<Self>, lease: Lease, key: WarmKey, reusable: bool) {
        let Some(gate) = lease.shared else {
            if reusable {
                self.release(lease.entry, key, true);
            } else {
                self.discard(lease.entry);
            }
            return;
        };
        let last = {
            let mut s = self.state.lock();
            let Some(i) = s.shared.iter().position(|sh| Arc::ptr_eq(&sh.gate, &gate)) else {
                return;
            };
            let sh = &mut s.shared[i];
            sh.active -= 1;
            if !reusable || !sh.entry.container.is_alive() {
                sh.closed = true;
                if *gate.borrow() == Init::Pending {
                    gate.send_replace(Init::Failed);
                }
            }
            (sh.active == 0).then(|| s.shared.swap_remove(i))
        };
        match last {
            Some(sh) => self.release(sh.entry, key, !sh.closed),
            // A slot is free: an activation waiting for room may join.
            None => self.freed.notify_waiters(),
        }
    }

    /// Returns a container after an activation: back to the idle set when `reusable`,
    /// destroyed otherwise.
    pub fn release(self: &Arc<Self>, mut entry: Entry, key: WarmKey, reusable: bool) {
        if !reusable || !entry.container.is_alive() {
            self.discard(entry);
            return;
        }
        entry.key = Some(key);
        entry.last_used = Instant::now();
        entry.pause.in_use.store(false, Ordering::SeqCst);
        if let Some(grace) = self.pause_grace {
            let pause = entry.pause.clone();
            let container = entry.container.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let mut paused = pause.paused.lock().await;
                if !pause.in_use.load(Ordering::SeqCst)
                    && !*paused
                    && container.suspend().await.is_ok()
                {
                    *paused = true;
                }
            });
        }
        let mut s = self.state.lock();
        s.busy_mb -= entry.memory_mb;
        s.idle.push(entry);
        drop(s);
        self.freed.notify_waiters();
    }

    /// Destroys a leased container and frees its memory.
    pub fn discard(self: &Arc<Self>, entry: Entry) {
        {
            let mut s = self.state.lock();
            s.busy_mb -= entry.memory_mb;
            s.used_mb -= entry.memory_mb;
            s.containers -= 1;
        }
        self.freed.notify_waiters();
        let stem_lost = entry.key.is_none();
        tokio::spawn(destroy_entry(entry));
        if stem_lost {
            self.refill_stems();
        }
    }

    async fn reap_idle(self: &Arc<Self>) {
        let now = Instant::now();
        let victims: Vec<Entry> = {
            let mut s = self.state.lock();
            let (dead, keep): (Vec<Entry>, Vec<Entry>) =
                std::mem::take(&mut s.idle).into_iter().partition(|e| {
                    !e.container.is_alive()
                        || (e.key.is_some() && now.duration_since(e.last_used) > self.idle_timeout)
                });
            s.idle = keep;
            for e in &dead {
                s.used_mb -= e.memory_mb;
                s.containers -= 1;
            }
            dead
        };
        if victims.is_empty() {
            return;
        }
        let stems_died = victims.iter().any(|e| e.key.is_none());
        for e in victims {
            destroy_entry(e).await;
        }
        self.freed.notify_waiters();
        if stems_died {
            self.refill_stems();
        }
    }

    /// Destroys every idle container (shutdown).
    pub async fn shutdown(&self) {
        let idle = std::mem::take(&mut self.state.lock().idle);
        for e in idle {
            destroy_entry(e).await;
        }
    }
}

/// Destroys a container and removes its peer-map folder.
async fn destroy_entry(e: Entry) {
    e.container.destroy().await;
    let _ = tokio::fs::remove_dir_all(&e.peers_dir).await;
}

fn new_pause() -> Arc<PauseState> {
    Arc::new(PauseState {
        in_use: AtomicBool::new(false),
        paused: tokio::sync::Mutex::new(false),
    })
}
