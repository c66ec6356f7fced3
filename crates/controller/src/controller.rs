//! [`Controller`]: one running controller — its [`Services`], built once at start, and the
//! tasks that feed them from the bus (completions, health pings, cache invalidations) or a
//! clock (expiring lost activations), every one in a [`TaskTracker`] that [`Controller::join`]
//! drains once the shutdown token is cancelled.

use crate::config::ControllerConfig;
use crate::services::{
    Activations, Entities, Identities, Invocations, Sequences, Services, Triggers, Web,
};
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
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
    services: Services,
    tasks: TaskTracker,
    malformed: Arc<AtomicU64>,
}

impl Controller {
    /// Subscribes to `completed<id>`, `health` (group `health<id>`) and `cacheInvalidation`
    /// (group `cacheInvalidation<id>`) and starts consuming; everything stops when `shutdown`
    /// is cancelled (then [`Controller::join`] resolves).
    pub async fn start(
        config: ControllerConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        shutdown: CancellationToken,
    ) -> Result<Self, ControllerError> {
        whisk_core::limits::set_concurrency_max(config.action_concurrency_max);
        let tasks = TaskTracker::new();
        tasks.close();
        let services = Services {
            entities: Entities::new(&config, store.clone(), bus.clone(), tasks.clone()),
            activations: Activations::new(store.clone()),
            invocations: Invocations::new(&config, store.clone(), bus.clone(), shutdown.clone()),
            web: Web::new(&config, store.clone()),
            feeds: crate::services::Feeds::new(store.clone(), bus.clone(), tasks.clone()),
            triggers: Triggers::new(&config, store.clone()),
            sequences: Sequences::new(&config, store.clone(), tasks.clone()),
            live: crate::services::Live::new(
                store.clone(),
                bus.clone(),
                &whisk_proto::completion_topic(config.id),
            ),
            identities: Identities::new(&config, store),
        };
        let reply_to = services.invocations.reply_to();
        bus.ensure_topic(reply_to).await?;
        bus.ensure_topic(whisk_proto::HEALTH_TOPIC).await?;
        bus.ensure_topic(whisk_proto::LOG_FOLLOW_TOPIC).await?;
        // The three groups join at once: a controller restarted after a crash waits for its
        // old membership to lapse once, not once per group.
        let health_group = format!("health{}", config.id);
        let (completions, health, invalidations) = tokio::try_join!(
            bus.subscribe(reply_to, reply_to),
            bus.subscribe(whisk_proto::HEALTH_TOPIC, &health_group),
            crate::cache::subscribe(bus.as_ref(), config.id),
        )?;
        let ctl = Controller {
            services,
            tasks,
            malformed: Arc::new(AtomicU64::new(0)),
        };

        let c = ctl.clone();
        ctl.spawn_consumer(completions, shutdown.clone(), move |payload| {
            match CompletionMessage::decode(payload.as_ref()) {
                // Live log lines of an activation followed here, not a completion.
                Ok(CompletionMessage {
                    live_logs: Some(lines),
                    ..
                }) => c.services.live.on_lines(lines),
                Ok(msg) => {
                    c.services.live.on_completion(&msg);
                    c.services.invocations.on_completion(msg)
                }
                Err(e) => c.count_malformed("completion", &e),
            }
        });
        let c = ctl.clone();
        ctl.spawn_consumer(
            health,
            shutdown.clone(),
            move |payload| match PingMessage::decode(payload.as_ref()) {
                Ok(ping) if c.services.invocations.on_ping(&ping) => {}
                Ok(ping) => c.count_malformed("ping", &format!("invoker id {}", ping.invoker_id)),
                Err(e) => c.count_malformed("ping", &e),
            },
        );
        let c = ctl.clone();
        ctl.spawn_consumer(invalidations, shutdown.clone(), move |payload| {
            if let Err(e) = c.services.entities.on_invalidation(&payload) {
                c.count_malformed("cache invalidation", &e);
            }
        });
        let invocations = ctl.services.invocations.clone();
        ctl.tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => invocations.expire_lost().await,
                }
            }
        });
        Ok(ctl)
    }

    /// The REST API of this controller.
    pub fn router(&self) -> axum::Router {
        crate::api::router(self.services.clone())
    }

    /// The services the API is made of.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Binds the unix socket `path` (its folder 0700, itself 0600) and answers `whisk admin`
    /// there until `shutdown`: for a standalone platform whose embedded store file it holds.
    /// Never on the REST API.
    pub fn serve_admin(
        &self,
        path: std::path::PathBuf,
        shutdown: CancellationToken,
    ) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static> {
        let listener = crate::admin::bind_private(&path)?;
        Ok(crate::api::admin::serve(
            listener,
            path,
            self.services.identities.clone(),
            shutdown,
        ))
    }

    /// True once `n` invokers are healthy; false when `timeout` passes first.
    pub async fn wait_for_invokers(&self, n: usize, timeout: Duration) -> bool {
        self.services
            .invocations
            .invokers()
            .wait_for(n, timeout)
            .await
    }

    /// Messages on the completion, health and cache-invalidation topics that could not be
    /// decoded.
    pub fn malformed_messages(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Activations placed by this controller that have not completed yet.
    pub fn activations_in_flight(&self) -> usize {
        self.services.invocations.in_flight()
    }

    /// Resolves once every task this controller spawned (bus consumers, the expiry clock,
    /// cache-invalidation publishes) has ended: after the shutdown token given to
    /// [`Controller::start`] is cancelled. Bound it with a timeout: a publish stuck on an
    /// unreachable broker ends only with the bus's own timeout.
    pub async fn join(&self) {
        self.tasks.wait().await
    }

    fn count_malformed(&self, what: &str, error: &dyn std::fmt::Display) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "skipping a malformed {what} message");
    }

    /// Feeds every message of `consumer` to `handle` until shutdown or the bus closes.
    fn spawn_consumer<F>(
        &self,
        mut consumer: Box<dyn Consumer>,
        shutdown: CancellationToken,
        handle: F,
    ) where
        F: Fn(Bytes) + Send + 'static,
    {
        self.tasks.spawn(async move {
            loop {
                let delivery = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    d = consumer.recv() => d,
                };
                match delivery {
                    Ok(d) => {
                        handle(d.payload.clone());
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{code, fqn, write};
    use std::time::Instant;
    use whisk_bus::InProcessBus;
    use whisk_store::{EmbeddedStore, EntityKind};

    async fn controllers(
        n: u32,
        config: ControllerConfig,
    ) -> (Arc<dyn Store>, Vec<Controller>, CancellationToken) {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().unwrap());
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let shutdown = CancellationToken::new();
        let mut out = vec![];
        for id in 0..n {
            let cfg = ControllerConfig {
                id,
                ..config.clone()
            };
            out.push(
                Controller::start(cfg, store.clone(), bus.clone(), shutdown.clone())
                    .await
                    .unwrap(),
            );
        }
        (store, out, shutdown)
    }

    /// Polls `f` until it is true, for at most 5 s.
    async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f().await {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn update_and_delete_on_one_controller_reach_the_others() {
        let (store, ctls, shutdown) = controllers(2, ControllerConfig::default()).await;
        let (a, b) = (&ctls[0].services.entities, &ctls[1].services.entities);
        write(store.as_ref(), "hello", "v1").await;
        assert_eq!(
            code(&b.cached_action(&fqn("hello")).await.unwrap().unwrap()),
            "v1"
        );

        // A write nobody announces: B keeps serving its copy (it is a cache).
        write(store.as_ref(), "hello", "v2").await;
        assert_eq!(
            code(&b.cached_action(&fqn("hello")).await.unwrap().unwrap()),
            "v1"
        );
        assert_eq!(b.cache_stats(), (1, 1));

        // The same write announced by A: B reads the new version.
        a.invalidate_action(&fqn("hello"));
        eventually("B saw A's update", async || {
            code(&b.cached_action(&fqn("hello")).await.unwrap().unwrap()) == "v2"
        })
        .await;

        // Delete on A: B answers "no such action".
        store
            .delete_entity(EntityKind::Action, "guest/hello", None)
            .await
            .unwrap();
        a.invalidate_action(&fqn("hello"));
        eventually("B saw A's delete", async || {
            b.cached_action(&fqn("hello")).await.unwrap().is_none()
        })
        .await;
        assert!(a.cached_action(&fqn("hello")).await.unwrap().is_none());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let config = ControllerConfig {
            action_cache_ttl: Duration::from_millis(50),
            ..ControllerConfig::default()
        };
        let (store, ctls, shutdown) = controllers(1, config).await;
        write(store.as_ref(), "t", "v1").await;
        let c = &ctls[0].services.entities;
        assert_eq!(
            code(&c.cached_action(&fqn("t")).await.unwrap().unwrap()),
            "v1"
        );
        write(store.as_ref(), "t", "v2").await;
        assert_eq!(
            code(&c.cached_action(&fqn("t")).await.unwrap().unwrap()),
            "v1"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            code(&c.cached_action(&fqn("t")).await.unwrap().unwrap()),
            "v2"
        );
        shutdown.cancel();
    }

    /// Every task ends after shutdown: the consumers, the expiry clock and the invalidation
    /// publishes, so `join` resolves; before shutdown it does not.
    #[tokio::test]
    async fn join_resolves_after_shutdown() {
        let (store, ctls, shutdown) = controllers(2, ControllerConfig::default()).await;
        write(store.as_ref(), "j", "v1").await;
        ctls[0].services.entities.invalidate_action(&fqn("j"));
        let early = tokio::time::timeout(Duration::from_millis(100), ctls[0].join()).await;
        assert!(early.is_err(), "join resolved before shutdown");
        shutdown.cancel();
        for c in &ctls {
            tokio::time::timeout(Duration::from_secs(5), c.join())
                .await
                .expect("every task ended");
        }
    }
}
