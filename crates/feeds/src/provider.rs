//! [`Provider`]: the feed-provider role. It learns of registrations from the store (a full
//! listing every [`ProviderConfig::resync`], and at once for a key announced on the bus's
//! [`NOTIFY_TOPIC`](crate::NOTIFY_TOPIC)), and runs one task per registration it holds.
//!
//! One holder per registration: a [`Lease`] in the registration document, claimed and renewed
//! by writes with the document's revision (compare-and-swap), so of several providers exactly
//! one wins a claim; a holder that stops renewing (crash, partition) loses it after
//! [`ProviderConfig::lease_ttl`] and the next provider to look takes over. An alarm's fire is
//! itself such a write (the scheduled time as `fired.last`), so even a holder that lost its
//! lease without noticing cannot fire a time another already fired; a Kafka consumer group per
//! registration keeps two consumers from sharing a partition during a handover. A clean stop
//! releases the leases, so a restarted or other provider resumes at once; next fire times are
//! recomputed from the schedule (missed times are not replayed).

use crate::alarm;
use crate::fire::{FireSettings, Firer, Outcome};
use crate::registration::{self, Lease, Registration};
use crate::{catalog::PROVIDERS, kafka, Feed, FeedError, NOTIFY_TOPIC};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whisk_bus::{Bus, BusError};
use whisk_core::now_ms;
use whisk_store::{Store, StoreError};

/// Settings of a provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// This provider's id in leases (unique per running provider).
    pub id: String,
    /// The API fires are posted to: a controller or the gateway (`http://host:port`).
    pub api_url: String,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
    /// How often the whole store is listed (expired leases, missed announcements).
    pub resync: Duration,
    /// Retries of fires.
    pub fire: FireSettings,
    /// The providers run (catalog packages): `alarms`, `messaging`.
    pub providers: Vec<String>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            id: format!("feeds-{:08x}", rand::random::<u32>()),
            api_url: "http://127.0.0.1:3233".into(),
            lease_ttl: Duration::from_secs(15),
            resync: Duration::from_secs(5),
            fire: FireSettings::default(),
            providers: PROVIDERS.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// The `feeds.*` settings of a process running the provider role (milliseconds as numbers,
/// so that a TOML file or `WHISK_FEEDS__*` variables can set them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsSettings {
    /// `id`: this provider's id in leases (default: random per start).
    pub id: Option<String>,
    /// `api_url`: where fires are posted (default: the local controller's API, else
    /// `http://127.0.0.1:3233`).
    pub api_url: Option<String>,
    /// `lease_ttl_ms`: default 15000.
    pub lease_ttl_ms: u64,
    /// `resync_ms`: how often the store is listed; default 5000.
    pub resync_ms: u64,
    /// `fire_tries`: retries of a failing fire; default 6.
    pub fire_tries: u32,
    /// `fire_backoff_ms`: retry n waits 2ⁿ × this; default 1000.
    pub fire_backoff_ms: u64,
}

impl Default for FeedsSettings {
    fn default() -> Self {
        Self {
            id: None,
            api_url: None,
            lease_ttl_ms: 15_000,
            resync_ms: 5_000,
            fire_tries: 6,
            fire_backoff_ms: 1_000,
        }
    }
}

impl FeedsSettings {
    /// The provider's configuration; `local_api` is a controller in the same process.
    pub fn provider_config(&self, local_api: Option<String>) -> ProviderConfig {
        let d = ProviderConfig::default();
        ProviderConfig {
            id: self.id.clone().unwrap_or(d.id),
            api_url: self.api_url.clone().or(local_api).unwrap_or(d.api_url),
            lease_ttl: Duration::from_millis(self.lease_ttl_ms),
            resync: Duration::from_millis(self.resync_ms),
            fire: FireSettings {
                tries: self.fire_tries,
                backoff: Duration::from_millis(self.fire_backoff_ms),
                ..d.fire
            },
            providers: d.providers,
        }
    }
}

/// Why a provider could not start.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// A setting is unusable.
    #[error("feed provider settings: {0}")]
    Config(String),
    /// The bus refused the notification topic or its subscription.
    #[error("feed provider: {0}")]
    Bus(#[from] BusError),
}

/// A running provider (cheap to clone).
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ProviderConfig,
    store: Arc<dyn Store>,
    firer: Firer,
    tasks: TaskTracker,
    running: Mutex<HashMap<String, Handle>>,
    shutdown: CancellationToken,
}

struct Handle {
    poke: Arc<Notify>,
}

/// A registration this provider holds, at a revision.
pub(crate) struct Held {
    pub(crate) rev: String,
    pub(crate) reg: Registration,
}

impl Provider {
    /// Starts listening (on `bus`, when given) and looking (every `resync`) for
    /// registrations; runs until `shutdown` is cancelled, then releases its leases
    /// ([`Provider::join`] resolves when all is done).
    pub async fn start(
        cfg: ProviderConfig,
        store: Arc<dyn Store>,
        bus: Option<Arc<dyn Bus>>,
        shutdown: CancellationToken,
    ) -> Result<Provider, ProviderError> {
        if cfg.lease_ttl < Duration::from_millis(300) || cfg.resync.is_zero() {
            return Err(ProviderError::Config(
                "lease_ttl must be at least 300 ms and resync positive".into(),
            ));
        }
        let firer =
            Firer::new(&cfg.api_url, store.clone(), cfg.fire).map_err(ProviderError::Config)?;
        let tasks = TaskTracker::new();
        tasks.close();
        let p = Provider {
            inner: Arc::new(Inner {
                cfg,
                store,
                firer,
                tasks,
                running: Mutex::new(HashMap::new()),
                shutdown: shutdown.clone(),
            }),
        };
        if let Some(bus) = bus {
            bus.ensure_topic(NOTIFY_TOPIC).await?;
            let group = format!("{NOTIFY_TOPIC}-{}", p.inner.cfg.id);
            let mut consumer = bus.subscribe(NOTIFY_TOPIC, &group).await?;
            let me = p.clone();
            p.inner.tasks.spawn(async move {
                loop {
                    let d = tokio::select! {
                        _ = me.inner.shutdown.cancelled() => break,
                        d = consumer.recv() => d,
                    };
                    match d {
                        Ok(d) => {
                            if let Ok(key) = std::str::from_utf8(&d.payload) {
                                me.look_at(key).await;
                            }
                            if let Err(e) = consumer.commit(&d).await {
                                tracing::debug!(error = %e, "committing a feed announcement failed");
                            }
                        }
                        Err(BusError::Closed) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "receiving feed announcements failed; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
        }
        let me = p.clone();
        p.inner.tasks.spawn(async move {
            let mut tick = tokio::time::interval(me.inner.cfg.resync);
            // A slow listing delays the next one instead of queueing a burst of them.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = me.inner.shutdown.cancelled() => break,
                    _ = tick.tick() => me.resync().await,
                }
            }
        });
        tracing::info!(id = %p.inner.cfg.id, api = %p.inner.cfg.api_url, "feed provider up");
        Ok(p)
    }

    /// This provider's id.
    pub fn id(&self) -> &str {
        &self.inner.cfg.id
    }

    /// The registrations this provider runs now (their keys, sorted).
    pub fn held(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.inner.running.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Resolves once every task has ended (after the shutdown token was cancelled).
    pub async fn join(&self) {
        self.inner.tasks.wait().await
    }

    /// Lists every registration of the providers run and looks at each.
    async fn resync(&self) {
        for provider in &self.inner.cfg.providers {
            match registration::list(self.inner.store.as_ref(), provider).await {
                Ok(regs) => {
                    for reg in regs {
                        self.consider(&reg, false);
                    }
                }
                Err(e) => tracing::warn!(error = %e, provider, "listing feed registrations failed"),
            }
        }
    }

    /// Looks at registration `key` now (an announcement).
    async fn look_at(&self, key: &str) {
        if !self.inner.cfg.providers.iter().any(|p| {
            key.strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('/'))
        }) {
            return;
        }
        match registration::read(self.inner.store.as_ref(), key).await {
            Ok(Some(r)) => self.consider(&r.doc, true),
            Ok(None) => self.poke(key),
            Err(e) => tracing::warn!(error = %e, key, "reading a feed registration failed"),
        }
    }

    fn poke(&self, key: &str) {
        if let Some(h) = self.inner.running.lock().get(key) {
            h.poke.notify_one();
        }
    }

    /// Starts a task for `reg` when it may be ours; otherwise, for an announcement
    /// (`announced`), pokes the running one so that it re-reads the registration at once. A
    /// resync does not poke: a running task re-reads at its next renewal anyway, and pokes at
    /// every resync would keep a slow store busy with renewals (and delay fires).
    fn consider(&self, reg: &Registration, announced: bool) {
        let key = reg.key();
        let mut running = self.inner.running.lock();
        if let Some(h) = running.get(&key) {
            if announced {
                h.poke.notify_one();
            }
            return;
        }
        if !reg.status.active || reg.held_by_other(self.id(), now_ms()) {
            return;
        }
        let Some(feed) = Feed::named(&reg.provider, &reg.feed) else {
            return;
        };
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let poke = Arc::new(Notify::new());
        running.insert(key.clone(), Handle { poke: poke.clone() });
        let me = self.clone();
        self.inner.tasks.spawn(async move {
            let result = match feed {
                Feed::Kafka => kafka::consumer::run(&me, &key, &poke).await,
                _ => me.run_alarm(feed, &key, &poke).await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, key, "a feed registration's task failed");
            }
            me.inner.running.lock().remove(&key);
            if let Err(e) = me.release(&key).await {
                tracing::debug!(error = %e, key, "releasing a feed lease failed");
            }
        });
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub(crate) fn firer(&self) -> &Firer {
        &self.inner.firer
    }

    pub(crate) fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    pub(crate) fn lease_ttl(&self) -> Duration {
        self.inner.cfg.lease_ttl
    }

    /// Claims or renews the lease on `key`: `None` when the registration is gone, inactive
    /// or another provider's.
    pub(crate) async fn claim(&self, key: &str) -> Result<Option<Held>, FeedError> {
        let store = self.inner.store.as_ref();
        loop {
            let Some(mut r) = registration::read(store, key).await? else {
                return Ok(None);
            };
            let now = now_ms();
            if !r.doc.status.active || r.doc.held_by_other(self.id(), now) {
                return Ok(None);
            }
            r.doc.lease = Some(Lease {
                holder: self.id().to_string(),
                until: now + self.inner.cfg.lease_ttl.as_millis() as i64,
            });
            match registration::write(store, &r.doc, Some(&r.rev)).await {
                Ok(rev) => return Ok(Some(Held { rev, reg: r.doc })),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Gives up the lease on `key` if this provider holds it.
    async fn release(&self, key: &str) -> Result<(), FeedError> {
        let me = self.id().to_string();
        registration::modify(&self.inner.store, key, |reg| {
            if reg.lease.as_ref().is_some_and(|l| l.holder == me) {
                reg.lease = None;
                return Ok(true);
            }
            Ok(false)
        })
        .await?;
        Ok(())
    }

    /// When the lease of `held` is to be renewed.
    pub(crate) fn renew_at(&self, held: &Held) -> i64 {
        let until = held.reg.lease.as_ref().map_or(0, |l| l.until);
        until - (self.inner.cfg.lease_ttl.as_millis() as i64) * 2 / 3
    }

    /// Disables registration `key` (kind `AUTO`) with `status` and `message`.
    pub(crate) async fn disable(&self, key: &str, status: Option<u16>, message: &str) {
        tracing::info!(key, ?status, message, "disabling a feed registration");
        let r = registration::modify(&self.inner.store, key, |reg| {
            if !reg.status.active {
                return Ok(false);
            }
            reg.disable("AUTO", status, message);
            Ok(true)
        })
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, key, "disabling a feed registration failed");
        }
    }

    /// Runs an alarms registration while this provider holds it.
    ///
    /// Every time that falls due while this provider holds the registration is fired, late if
    /// a renewal or a slow store held the task up (by at most one lease), and never a time
    /// before the task took over or before the schedule last changed: a handover or restart
    /// does not replay missed times.
    async fn run_alarm(&self, feed: Feed, key: &str, poke: &Notify) -> Result<(), FeedError> {
        let Some(mut held) = self.claim(key).await? else {
            return Ok(());
        };
        // Times after `from` are this task's to fire.
        let mut from = now_ms();
        let catch_up = self.inner.cfg.lease_ttl.as_millis() as i64;
        loop {
            let now = now_ms();
            let after = from
                .max(now - catch_up)
                .max(held.reg.fired.last.unwrap_or(0));
            let Some(next) = alarm::next_fire(feed, &held.reg.config, after) else {
                let message = match feed {
                    Feed::Once => "the fire once date has expired",
                    _ => "the stop date has expired",
                };
                self.disable(
                    key,
                    None,
                    &format!("Automatically disabled after receiving error on trigger initialization: {message}"),
                )
                .await;
                return Ok(());
            };
            let wake = next.min(self.renew_at(&held));
            let sleep = Duration::from_millis((wake - now).max(0) as u64);
            let fire_now = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return Ok(()),
                _ = poke.notified() => false,
                _ = tokio::time::sleep(sleep) => wake == next,
            };
            if !fire_now {
                match self.claim(key).await? {
                    Some(h) => {
                        if h.reg.config != held.reg.config {
                            from = now_ms();
                        }
                        held = h
                    }
                    None => return Ok(()),
                }
                continue;
            }
            match self.claim_fire(feed, key, held, next).await? {
                Some((h, fire)) => {
                    held = h;
                    if fire {
                        self.spawn_fire(feed, key, &held.reg);
                    }
                }
                None => return Ok(()),
            }
        }
    }

    /// Claims scheduled time `at` of `key` with a write at the held revision, which also
    /// renews the lease and applies what the fire ends (a once alarm, the last time before
    /// the stop date, `maxTriggers`). Answers the new hold and whether to fire; `None` when
    /// the registration is no longer this provider's.
    async fn claim_fire(
        &self,
        feed: Feed,
        key: &str,
        mut held: Held,
        at: i64,
    ) -> Result<Option<(Held, bool)>, FeedError> {
        loop {
            if held.reg.fired.last.is_some_and(|l| l >= at) {
                return Ok(Some((held, false)));
            }
            let mut reg = held.reg.clone();
            let now = now_ms();
            reg.fired.last = Some(at);
            reg.fired.count += 1;
            reg.lease = Some(Lease {
                holder: self.id().to_string(),
                until: now + self.inner.cfg.lease_ttl.as_millis() as i64,
            });
            let max = reg
                .config
                .get("maxTriggers")
                .and_then(|v| v.as_i64())
                .unwrap_or(-1);
            match feed {
                Feed::Once => reg.disable("AUTO", None, "Automatically disabled after firing once"),
                _ if max > 0 && reg.fired.count >= max as u64 => reg.disable(
                    "AUTO",
                    None,
                    "Automatically disabled after reaching max triggers",
                ),
                _ if reg.config.contains_key("stopDate")
                    && alarm::next_fire(feed, &reg.config, at).is_none() =>
                {
                    let what = if feed == Feed::Interval {
                        "interval"
                    } else {
                        "cron"
                    };
                    reg.disable(
                        "AUTO",
                        None,
                        format!(
                            "Automatically disabled after firing last scheduled {what} trigger"
                        ),
                    )
                }
                _ => {}
            }
            match registration::write(self.inner.store.as_ref(), &reg, Some(&held.rev)).await {
                Ok(rev) => return Ok(Some((Held { rev, reg }, true))),
                Err(StoreError::Conflict) => match self.claim(key).await? {
                    Some(h) => held = h,
                    None => return Ok(None),
                },
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Fires `reg`'s trigger with its payload in the background; disables it on a refusal,
    /// and after a once alarm with `deleteAfterFire` deletes the registration, the trigger
    /// and (`rules`) its rules.
    fn spawn_fire(&self, feed: Feed, key: &str, reg: &Registration) {
        let me = self.clone();
        let key = key.to_string();
        let reg = reg.clone();
        self.inner.tasks.spawn(async move {
            let payload = reg.config.get("payload").cloned().unwrap_or_else(|| serde_json::json!({}));
            let outcome = me.inner.firer.fire(&reg, &payload, &me.inner.shutdown).await;
            match &outcome {
                Outcome::Accepted(status) => {
                    tracing::debug!(trigger = %reg.trigger_path(), status, "alarm fired")
                }
                Outcome::Failed(status, message) => tracing::warn!(
                    trigger = %reg.trigger_path(), ?status, %message, "an alarm's fire failed"
                ),
                Outcome::Disable(status, message) => me.disable(&key, Some(*status), message).await,
            }
            let after = reg.config.get("deleteAfterFire").and_then(|v| v.as_str()).unwrap_or("false");
            if feed == Feed::Once && after != "false" {
                if let Err(e) = me.inner.firer.delete_trigger(&reg, after == "rules").await {
                    tracing::warn!(error = %e, trigger = %reg.trigger_path(), "deleting a fired once trigger failed");
                }
                if let Err(e) = me.inner.store.delete_entity(whisk_store::EntityKind::Feed, &key, None).await {
                    tracing::warn!(error = %e, key, "deleting a fired once registration failed");
                }
            }
        });
    }
}
