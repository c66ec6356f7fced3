//! The invoker service: consumes `invoker<id>`, runs each activation in its own task, stores
//! the record, publishes the completion to the controller's topic, and pings `health`. Every
//! task it starts (consumer, activations, pings, the directory heartbeat, the pool's reaper)
//! is in one [`TaskTracker`] that [`Invoker::join`] drains once the shutdown token is
//! cancelled.
//!
//! Back-pressure: a delivered activation runs only once the [`Budget`] of the invoker's user
//! memory admits it; until then the consumer loop receives nothing more (it keeps committing
//! the offsets of activations that end, and stops at once on shutdown, the waiting message
//! left uncommitted for the next start).

use crate::budget::Budget;
use crate::config::InvokerConfig;
use crate::container::ContainerFactory;
use crate::peers::Peers;
use crate::pool::ContainerPool;
use crate::proxy::ProxyClient;
use crate::run::Runner;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whisk_bus::{Bus, BusError};
use whisk_core::now_ms;
use whisk_directory_api::PeerDirectory;
use whisk_proto::{ActivationMessage, CompletionMessage, InvokerStatus, Message, PingMessage};
use whisk_store::Store;

/// Why the invoker could not start.
#[derive(Debug, Error)]
pub enum InvokerError {
    /// The bus refused.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Leftover containers could not be removed.
    #[error(transparent)]
    Container(#[from] crate::container::ContainerError),
    /// The data folder could not be prepared.
    #[error("invoker data folder: {0}")]
    Io(#[from] std::io::Error),
}

/// A running invoker.
pub struct Invoker {
    cfg: InvokerConfig,
    pool: Arc<ContainerPool>,
    runner: Runner,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Messages on the topic that could not be decoded.
    pub malformed: AtomicU64,
    /// Activations handled.
    pub handled: AtomicU64,
    peers: Arc<Peers>,
    journal: Arc<crate::journal::Journal>,
    budget: Arc<Budget>,
    tasks: TaskTracker,
    _temp: (Option<tempfile::TempDir>, Option<tempfile::TempDir>),
}

impl Invoker {
    /// Starts consuming and pinging; stops when `shutdown` is cancelled (then
    /// [`Invoker::join`] resolves once the activations in flight have ended).
    pub async fn start(
        cfg: InvokerConfig,
        factory: Arc<dyn ContainerFactory>,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        directory: Arc<dyn PeerDirectory>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, InvokerError> {
        factory.cleanup().await?;
        let (data_dir, temp) = match &cfg.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("whisk-invoker-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // Containers' peer-map folders are rewritten on every change of their group: keep them
        // in memory (tmpfs) when the host has it — about 10x faster than a disk's metadata.
        let (containers, shm) = match &cfg.containers_dir {
            Some(d) => (d.clone(), None),
            None => match tempfile::Builder::new()
                .prefix("whisk-containers-")
                .tempdir_in("/dev/shm")
            {
                Ok(t) => (t.path().to_path_buf(), Some(t)),
                Err(_) => (data_dir.join("containers"), None),
            },
        };
        let _ = std::fs::remove_dir_all(&containers);
        let pool = ContainerPool::new(factory, &cfg, containers);
        let peer_key = crate::peers::PeerKey::load(cfg.peer_key_file.as_deref())?;
        let peers = Peers::with_key(directory, cfg.id, data_dir.join("addrMap"), peer_key);
        // Closed at once: `wait` resolves when the last task ends, and tasks may still be
        // spawned (each activation).
        let tasks = TaskTracker::new();
        tasks.close();
        track(
            &tasks,
            peers.start_heartbeat(
                Duration::from_millis(cfg.peer_lease_ms.max(30)),
                shutdown.clone(),
            ),
        );
        track(&tasks, pool.start(shutdown.clone()));
        let topic = whisk_proto::invoker_topic(cfg.id);
        bus.ensure_topic(&topic).await?;
        bus.ensure_topic(whisk_proto::HEALTH_TOPIC).await?;
        let journal = crate::journal::Journal::open(&data_dir, cfg.id, shutdown.clone())?;
        let journal = Arc::new(journal);
        journal.recover(store.as_ref()).await;
        bus.ensure_topic(whisk_proto::LOG_FOLLOW_TOPIC).await?;
        let follow_group = whisk_proto::log_follow_group(cfg.id);
        let (consumer, follows) = tokio::try_join!(
            bus.subscribe(&topic, &topic),
            bus.subscribe(whisk_proto::LOG_FOLLOW_TOPIC, &follow_group),
        )?;
        let mut consumer = journal.watch(consumer);
        let live = Arc::new(crate::live::LiveTaps::new(
            bus.clone(),
            cfg.id,
            cfg.live_logs_interval,
        ));
        let runner = Runner {
            pool: pool.clone(),
            client: ProxyClient::new(),
            api_host: cfg.api_host.clone(),
            peers: peers.clone(),
            actions: Arc::new(crate::actions::Actions::new(
                store.clone(),
                cfg.action_cache_mb.saturating_mul(1024 * 1024),
            )),
            live: live.clone(),
        };
        let inv = Arc::new(Self {
            budget: Budget::new(cfg.user_memory_mb),
            peers,
            journal,
            tasks,
            _temp: (temp, shm),
            cfg,
            pool,
            runner,
            store,
            bus,
            malformed: AtomicU64::new(0),
            handled: AtomicU64::new(0),
        });
        inv.ping().await;
        {
            let pinger = inv.clone();
            let shutdown = shutdown.clone();
            inv.tasks.spawn(async move {
                let mut tick = tokio::time::interval(pinger.cfg.ping_interval);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tick.tick() => pinger.ping().await,
                    }
                }
            });
        }
        inv.tasks
            .spawn(follow_requests(follows, live, shutdown.clone()));
        {
            let runs = inv.tasks.clone();
            let consumer_inv = inv.clone();
            inv.tasks.spawn(async move {
                let inv = consumer_inv;
                let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(i32, i64)>();
                let mut commits = crate::commits::CommitTracker::default();
                loop {
                    let delivery = tokio::select! {
                        _ = shutdown.cancelled() => break,
                        Some((partition, offset)) = done_rx.recv() => {
                            commit(&mut commits, consumer.as_mut(), partition, offset).await;
                            continue;
                        }
                        d = consumer.recv() => d,
                    };
                    let delivery = match delivery {
                        Ok(d) => d,
                        Err(BusError::Closed) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "receiving activations failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    commits.start(delivery.partition, delivery.offset);
                    let done = done_tx.clone();
                    let (partition, offset) = (delivery.partition, delivery.offset);
                    match ActivationMessage::decode(delivery.payload.as_ref()) {
                        Ok(msg) => {
                            // Back-pressure: nothing more is received until this one fits.
                            let admit = inv
                                .budget
                                .clone()
                                .admit(crate::budget::charge_of(&msg), msg.gang_size > 0);
                            tokio::pin!(admit);
                            let charge = loop {
                                tokio::select! {
                                    c = &mut admit => break Some(c),
                                    _ = shutdown.cancelled() => break None,
                                    Some((p, o)) = done_rx.recv() => {
                                        commit(&mut commits, consumer.as_mut(), p, o).await;
                                    }
                                }
                            };
                            let Some(charge) = charge else { break };
                            let inv = inv.clone();
                            runs.spawn(async move {
                                let stored = inv.handle(msg, partition, offset).await;
                                drop(charge);
                                if stored {
                                    let _ = done.send((partition, offset));
                                }
                            });
                        }
                        Err(e) => {
                            inv.malformed.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(error = %e, "skipping a malformed activation message");
                            let _ = done.send((partition, offset));
                        }
                    }
                }
                // Shutdown: the activations in flight end (each sends its offset when its
                // record is stored), then the idle containers go.
                drop(done_tx);
                while let Some((partition, offset)) = done_rx.recv().await {
                    commit(&mut commits, consumer.as_mut(), partition, offset).await;
                }
                inv.pool.shutdown().await;
            });
        }
        Ok(inv)
    }

    /// Resolves once every task of this invoker has ended: after the shutdown token given to
    /// [`Invoker::start`] is cancelled, the activations in flight have finished (their
    /// records stored, their offsets committed) and the idle containers are destroyed. Bound
    /// it with a timeout: an activation runs up to its action's time limit.
    pub async fn join(&self) {
        self.tasks.wait().await
    }

    /// Peer maps (for benchmarks and tests).
    pub fn peers(&self) -> &Arc<Peers> {
        &self.peers
    }

    /// The container pool (for status and tests).
    pub fn pool(&self) -> &Arc<ContainerPool> {
        &self.pool
    }

    /// The memory budget of the activations taken off the bus (for status and tests).
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    async fn ping(&self) {
        let ping = PingMessage {
            invoker_id: self.cfg.id,
            user_memory_mb: self.pool.capacity_mb(),
            free_memory_mb: self.pool.free_mb(),
            status: InvokerStatus::Healthy as i32,
            containers: self.pool.containers() as u32,
            sent_at_ms: now_ms(),
        };
        if let Err(e) = self
            .bus
            .publish(whisk_proto::HEALTH_TOPIC, Bytes::from(ping.encode_to_vec()))
            .await
        {
            tracing::warn!(error = %e, "health ping failed");
        }
    }

    /// Runs one activation (unless the journal has it started or finished already: at most
    /// once), then stores its record and sends the completion at the same time: the
    /// controller answers the client without waiting for the store. `true` once the record is
    /// stored (the store is retried until then or shutdown): only then may the offset be
    /// committed.
    async fn handle(&self, msg: ActivationMessage, partition: i32, offset: i64) -> bool {
        if !self
            .journal
            .admit(self.store.as_ref(), &msg, partition, offset)
            .await
        {
            return true;
        }
        let outcome = self.runner.run(&msg).await;
        self.handled.fetch_add(1, Ordering::Relaxed);
        let completion = CompletionMessage {
            transaction_id: msg.transaction_id.clone(),
            activation_id: msg.activation_id.clone(),
            invoker_id: self.cfg.id,
            activation: serde_json::to_vec(&outcome.activation).unwrap_or_default(),
            system_error: outcome.system_error,
            memory_mb: outcome.memory_mb,
            live_logs: None,
        };
        // Followers get the end once the record is stored (they may read it then).
        let put = tracing::Instrument::instrument(
            self.journal.store(self.store.as_ref(), &outcome.activation),
            tracing::trace_span!(parent: &outcome.span, "record write"),
        );
        let store = async {
            let stored = put.await;
            self.runner.live.end(&outcome.activation);
            stored
        };
        let reply = async {
            if msg.reply_to.is_empty() {
                return;
            }
            if let Err(e) = self
                .bus
                .publish(&msg.reply_to, Bytes::from(completion.encode_to_vec()))
                .await
            {
                tracing::warn!(error = %e, "publishing a completion failed");
            }
        };
        tokio::join!(store, reply).0
    }
}

/// Answers the live-log follow requests of `consumer` until shutdown or the bus closes.
async fn follow_requests(
    mut consumer: Box<dyn whisk_bus::Consumer>,
    live: Arc<crate::live::LiveTaps>,
    shutdown: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break,
            d = consumer.recv() => d,
        };
        match delivery {
            Ok(d) => {
                match whisk_proto::LogFollowMessage::decode(d.payload.as_ref()) {
                    Ok(req) => live.follow(&req),
                    Err(e) => tracing::debug!(error = %e, "skipping a malformed follow request"),
                }
                let _ = consumer.commit(&d).await;
            }
            Err(BusError::Closed) => break,
            Err(e) => {
                tracing::warn!(error = %e, "receiving follow requests failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Tracks a task spawned elsewhere (the directory heartbeat, the pool's reaper).
fn track(tasks: &TaskTracker, task: tokio::task::JoinHandle<()>) {
    tasks.spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "an invoker task failed");
        }
    });
}

/// Marks `offset` done and commits up to where every earlier offset is done too.
async fn commit(
    commits: &mut crate::commits::CommitTracker,
    consumer: &mut dyn whisk_bus::Consumer,
    partition: i32,
    offset: i64,
) {
    if let Some(upto) = commits.done(partition, offset) {
        let mark = whisk_bus::Delivery {
            offset: upto,
            partition,
            ..Default::default()
        };
        if let Err(e) = consumer.commit(&mark).await {
            tracing::warn!(error = %e, "commit failed");
        }
    }
}
