//! [`Firer`]: fires a registration's trigger the way OpenWhisk's providers do — `POST
//! /api/v1/namespaces/{ns}/triggers/{name}` on the controller (or gateway) with the owner's
//! key, read from the store at each fire (the registration holds only a reference to it) —
//! and classifies the answer as upstream: 2xx accepted; 408, 409, 429, 5xx and transport
//! failures worth retrying (2ⁿ × the base delay, up to [`FireSettings::tries`] more times);
//! any other 4xx disables the registration.

use crate::registration::Registration;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_store::Store;

/// How fires are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireSettings {
    /// Retries after the first attempt (upstream Kafka provider: 6).
    pub tries: u32,
    /// The unit of the backoff: retry n waits 2ⁿ × this (upstream: 1 s).
    pub backoff: Duration,
    /// Bound on one fire request.
    pub timeout: Duration,
}

impl Default for FireSettings {
    fn default() -> Self {
        Self {
            tries: 6,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a fire came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The controller accepted it (this status).
    Accepted(u16),
    /// It failed in a way worth retrying (the status, if an answer came) and the retries ran
    /// out, or the provider is stopping.
    Failed(Option<u16>, String),
    /// It failed for good: the registration is to be disabled with this status and message.
    Disable(u16, String),
}

/// Posts trigger fires (cheap to clone).
#[derive(Clone)]
pub struct Firer {
    client: reqwest::Client,
    api: reqwest::Url,
    store: Arc<dyn Store>,
    settings: FireSettings,
}

/// True for the 4xx statuses upstream retries rather than disables on.
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

impl Firer {
    /// Fires through the API at `api` (`http://host:port`), reading owners from `store`.
    pub fn new(api: &str, store: Arc<dyn Store>, settings: FireSettings) -> Result<Self, String> {
        let api = reqwest::Url::parse(api).map_err(|e| format!("the API URL {api:?}: {e}"))?;
        if api.cannot_be_a_base() {
            return Err(format!("the API URL {api} cannot be a base"));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            api,
            store,
            settings,
        })
    }

    /// The retry settings.
    pub fn settings(&self) -> FireSettings {
        self.settings
    }

    /// `{api}/api/v1/namespaces/{ns}/{collection}/{name}`, each segment escaped.
    fn url(&self, ns: &str, collection: &str, name: &str) -> reqwest::Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "namespaces", ns, collection, name]);
        }
        url
    }

    /// The owner's identity: `Err` with the outcome when there is none to fire with.
    async fn owner(&self, reg: &Registration) -> Result<whisk_core::Identity, Outcome> {
        match self.store.get_identity(&reg.owner.uuid).await {
            Ok(Some(i)) if i.namespace == reg.namespace => Ok(i),
            Ok(_) => Err(Outcome::Disable(
                401,
                format!(
                    "the key of {} that registered the feed no longer exists",
                    reg.owner.subject
                ),
            )),
            Err(e) => Err(Outcome::Failed(
                None,
                format!("reading the owner's identity: {e}"),
            )),
        }
    }

    /// Deletes `reg`'s trigger with the owner's key (and first the rules it has, with
    /// `rules`): what a once alarm with `deleteAfterFire` does after its fire.
    pub async fn delete_trigger(&self, reg: &Registration, rules: bool) -> Result<(), String> {
        let owner = self.owner(reg).await.map_err(|o| format!("{o:?}"))?;
        let auth = |r: reqwest::RequestBuilder| r.basic_auth(&owner.uuid, Some(&owner.key));
        let trigger = self.url(&reg.namespace, "triggers", &reg.trigger);
        if rules {
            let doc: Value = auth(self.client.get(trigger.clone()))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let names = doc
                .get("rules")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            for name in names {
                let (ns, rule) = name.split_once('/').unwrap_or((&reg.namespace, &name));
                auth(self.client.delete(self.url(ns, "rules", rule)))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        auth(self.client.delete(trigger))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// One attempt.
    pub async fn fire_once(&self, reg: &Registration, payload: &Value) -> Outcome {
        let identity = match self.owner(reg).await {
            Ok(i) => i,
            Err(outcome) => return outcome,
        };
        let url = self.url(&reg.namespace, "triggers", &reg.trigger);
        let sent = self
            .client
            .post(url)
            .basic_auth(&identity.uuid, Some(&identity.key))
            .json(payload)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(None, format!("posting the fire: {e}")),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Outcome::Accepted(status);
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("Received a {status} status code when firing the trigger"));
        if retryable(status) {
            Outcome::Failed(Some(status), error)
        } else {
            Outcome::Disable(status, format!("Trigger automatically disabled: {error}"))
        }
    }

    /// Fires, retrying failures worth retrying with 2ⁿ backoff; gives up early (as
    /// [`Outcome::Failed`]) when `stop` is cancelled.
    pub async fn fire(
        &self,
        reg: &Registration,
        payload: &Value,
        stop: &CancellationToken,
    ) -> Outcome {
        let mut attempt = 0;
        loop {
            let outcome = self.fire_once(reg, payload).await;
            let Outcome::Failed(status, message) = &outcome else {
                return outcome;
            };
            attempt += 1;
            if attempt > self.settings.tries {
                return outcome;
            }
            let wait = self.settings.backoff * 2u32.saturating_pow(attempt);
            tracing::info!(
                trigger = %reg.trigger_path(), ?status, %message, attempt, ?wait,
                "firing the trigger failed; retrying"
            );
            tokio::select! {
                _ = stop.cancelled() => return outcome,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
