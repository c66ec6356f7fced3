//! [`Controller`]: the shared state of one controller (store, bus, identity cache, throttles,
//! invokers, activations in flight) and the background tasks that consume completions and
//! health pings and expire lost activations.

use crate::auth::IdentityCache;
use crate::cache::ActionCache;
use crate::config::ControllerConfig;
use crate::health::Invokers;
use crate::invoke::Pending;
use crate::throttle::Throttles;
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, BusError, Consumer};
use whisk_proto::{CompletionMessage, Message, PingMessage};
use whisk_store::Store;

/// Why a controller could not start.
#[derive(Debug, Error)]
pub enum ControllerError {
    /// The message bus refused to create a topic or a subscription.
    #[error("message bus: {0}")]
    Bus(#[from] BusError),
}

/// A running controller; cheap to clone.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

struct Inner {
    config: ControllerConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    identities: Arc<IdentityCache>,
    actions: ActionCache,
    throttles: Throttles,
    invokers: Invokers,
    pending: Pending,
    reply_to: String,
    shutdown: CancellationToken,
    malformed: AtomicU64,
}

impl Controller {
    /// Subscribes to `completed<id>`, `health` (group `health<id>`) and `cacheInvalidation`
    /// (group `cacheInvalidation<id>`) and starts consuming;
    /// everything stops when `shutdown` is cancelled.
    pub async fn start(
        config: ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        shutdown: CancellationToken,
    ) -> Result<Self, ControllerError> {
        let reply_to = whisk_proto::completion_topic(config.id);
        bus.ensure_topic(&reply_to).await?;
        bus.ensure_topic(whisk_proto::HEALTH_TOPIC).await?;
        let completions = bus.subscribe(&reply_to, &reply_to).await?;
        let health = bus
            .subscribe(whisk_proto::HEALTH_TOPIC, &format!("health{}", config.id))
            .await?;
        let invalidations = crate::cache::subscribe(bus.as_ref(), config.id).await?;
        let ctl = Controller {
            inner: Arc::new(Inner {
                identities: Arc::new(IdentityCache::new(config.identity_cache_ttl)),
                actions: ActionCache::new(
                    config.action_cache_size,
                    config.action_cache_ttl,
                    format!("controller{}-{:016x}", config.id, rand::random::<u64>()),
                ),
                invokers: Invokers::new(config.invoker_offline_after),
                throttles: Throttles::default(),
                pending: Pending::default(),
                reply_to,
                shutdown: shutdown.clone(),
                malformed: AtomicU64::new(0),
                config,
                store,
                bus,
            }),
        };
        let c = ctl.clone();
        spawn_consumer(completions, shutdown.clone(), move |payload| {
            let c = c.clone();
            async move {
                match CompletionMessage::decode(payload.as_ref()) {
                    Ok(msg) => c.complete(msg),
                    Err(e) => c.count_malformed("completion", &e),
                }
            }
        });
        let c = ctl.clone();
        spawn_consumer(health, shutdown.clone(), move |payload| {
            let c = c.clone();
            async move {
                match PingMessage::decode(payload.as_ref()) {
                    Ok(ping) if c.invokers().on_ping(&ping) => {}
                    Ok(ping) => {
                        c.count_malformed("ping", &format!("invoker id {}", ping.invoker_id))
                    }
                    Err(e) => c.count_malformed("ping", &e),
                }
            }
        });
        let c = ctl.clone();
        spawn_consumer(invalidations, shutdown.clone(), move |payload| {
            let c = c.clone();
            async move {
                if let Err(e) = c.actions().on_message(&payload) {
                    c.count_malformed("cache invalidation", &e);
                }
            }
        });
        let c = ctl.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => c.expire_lost().await,
                }
            }
        });
        Ok(ctl)
    }

    /// The REST API of this controller.
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.clone())
    }

    /// Binds the unix socket `path` (its folder 0700, itself 0600) and answers `whisk admin`
    /// there until `shutdown`: for a standalone platform whose embedded store file it holds.
    /// Never on the REST API.
    pub fn serve_admin(
        &self,
        path: std::path::PathBuf,
        shutdown: CancellationToken,
    ) -> std::io::Result<impl std::future::Future<Output = std::io::Result<()>> + Send + 'static>
    {
        let listener = crate::admin::bind_private(&path)?;
        Ok(crate::admin::serve_socket(
            listener,
            path,
            self.inner.store.clone(),
            self.inner.identities.clone(),
            shutdown,
        ))
    }

    /// True once `n` invokers are healthy; false when `timeout` passes first.
    pub async fn wait_for_invokers(&self, n: usize, timeout: Duration) -> bool {
        self.inner.invokers.wait_for(n, timeout).await
    }

    /// Messages on the completion, health and cache-invalidation topics that could not be
    /// decoded.
    pub fn malformed_messages(&self) -> u64 {
        self.inner.malformed.load(Ordering::Relaxed)
    }

    /// Activations placed by this controller that have not completed yet.
    pub fn activations_in_flight(&self) -> usize {
        self.inner.pending.len()
    }

    pub(crate) fn config(&self) -> &ControllerConfig {
        &self.inner.config
    }
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
    pub(crate) fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }
    pub(crate) fn identities(&self) -> &IdentityCache {
        &self.inner.identities
    }
    pub(crate) fn actions(&self) -> &ActionCache {
        &self.inner.actions
    }
    pub(crate) fn throttles(&self) -> &Throttles {
        &self.inner.throttles
    }
    pub(crate) fn invokers(&self) -> &Invokers {
        &self.inner.invokers
    }
    pub(crate) fn pending(&self) -> &Pending {
        &self.inner.pending
    }
    pub(crate) fn reply_to(&self) -> &str {
        &self.inner.reply_to
    }
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    fn count_malformed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.inner.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "skipping a malformed {what} message");
    }
}

/// Feeds every message of `consumer` to `handle` until shutdown or the bus closes.
fn spawn_consumer<F, Fut>(mut consumer: Box<dyn Consumer>, shutdown: CancellationToken, handle: F)
where
    F: Fn(Bytes) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = consumer.recv() => d,
            };
            match delivery {
                Ok(d) => {
                    handle(d.payload.clone()).await;
                    if let Err(e) = consumer.commit(&d).await {
                        tracing::warn!(error = %e, "commit failed");
                    }
                }
                Err(BusError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "receiving from the bus failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
}
