//! [`Feeds`]: the catalog's feed actions (`/whisk.system/alarms/*`,
//! `/whisk.system/messaging/kafkaFeed`) answered here instead of in a container: an invoke
//! runs the feed protocol's lifecycle event against the store ([`whisk_feeds::lifecycle`]),
//! is recorded as an ordinary activation of the feed action (so `wsk` and the npm client see
//! the result they expect), and a change is announced to the feed providers on the bus
//! ([`whisk_feeds::NOTIFY_TOPIC`]). The provider never takes a client's word: it reads the
//! registration this service wrote.

use bytes::Bytes;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio_util::task::TaskTracker;
use whisk_bus::Bus;
use whisk_core::entity::KeyValue;
use whisk_core::{
    now_ms, Action, Activation, ActivationId, ActivationResponse, FullyQualifiedName, Identity,
    WhiskError,
};
use whisk_feeds::{lifecycle, Feed, FeedError};
use whisk_store::Store;

/// The feed actions' service; cheap to clone.
#[derive(Clone)]
pub struct Feeds {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    tasks: TaskTracker,
}

impl Feeds {
    /// Registrations in `store`, announced on `bus` (publishes run in `tasks`).
    pub fn new(store: Arc<dyn Store>, bus: Arc<dyn Bus>, tasks: TaskTracker) -> Self {
        Self {
            inner: Arc::new(Inner { store, bus, tasks }),
        }
    }

    /// Runs `feed` (the action `action`, invoked as `fqn`) for `caller` with the merged
    /// parameters `content`; answers its activation record, stored. A refused event is an
    /// application error (`{"error": ...}`, as upstream's feed actions answer); a store that
    /// cannot be reached is a platform error (503).
    pub async fn invoke(
        &self,
        caller: &Identity,
        fqn: &FullyQualifiedName,
        action: &Action,
        feed: Feed,
        content: Map<String, Value>,
    ) -> Result<Activation, WhiskError> {
        let start = now_ms();
        let response = match lifecycle::run(&self.inner.store, caller, feed, &content).await {
            Ok(done) => {
                if let Some(key) = done.changed {
                    self.announce(key);
                }
                ActivationResponse::success(done.result)
            }
            Err(FeedError::Refused { status, message }) => {
                ActivationResponse::application_error(json!({
                    "error": message,
                    "statusCode": status,
                }))
            }
            Err(FeedError::Store(e)) => return Err(e.into()),
        };
        let end = now_ms();
        let path = fqn.to_string();
        let annotation = |key: &str, value: Value| KeyValue {
            key: key.to_string(),
            value,
        };
        let activation = Activation {
            namespace: caller.namespace.clone(),
            name: action.name.clone(),
            version: action.version.clone(),
            subject: caller.subject.clone(),
            activation_id: ActivationId::generate(),
            start,
            end,
            duration: end - start,
            response,
            logs: vec![],
            annotations: vec![
                annotation(
                    "path",
                    json!(format!("{}/{}", action.namespace, action.name)),
                ),
                annotation("waitTime", json!(0)),
                annotation("kind", json!(action.exec.kind)),
                annotation("timeout", json!(false)),
                annotation("limits", json!(action.limits)),
                annotation("feed", json!(path)),
            ],
            publish: false,
            cause: None,
        };
        self.inner.store.put_activation(&activation).await?;
        Ok(activation)
    }

    /// Tells the providers to look at registration `key` again (in the background; a lost
    /// announcement only delays the change until the providers' next listing).
    fn announce(&self, key: String) {
        let bus = self.inner.bus.clone();
        self.inner.tasks.spawn(async move {
            if let Err(e) = bus
                .publish(whisk_feeds::NOTIFY_TOPIC, Bytes::from(key.clone()))
                .await
            {
                tracing::warn!(error = %e, key, "announcing a feed registration change failed; providers see it at their next listing");
            }
        });
    }
}
