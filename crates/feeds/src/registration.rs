//! [`Registration`]: the store document (kind [`EntityKind::Feed`]) that says a trigger is fed
//! by a provider — which feed, its validated configuration, whose identity fires it, whether it
//! is active (and why not), which provider holds it ([`Lease`]) and what it fired last — and
//! the typed reads and compare-and-swap writes of it.
//!
//! Keys are `<provider>/<namespace>/<trigger>` (`alarms/guest/everySecond`), so one provider's
//! registrations are one listing of the store (its "namespace" is the provider's name). The
//! owner is kept as a reference to the identity (its key's uuid), never as the key itself: the
//! provider reads the identity when it fires, so a revoked key stops the feed.

use crate::FeedError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use whisk_core::now_ms;
use whisk_store::{EntityKind, Revisioned, Store, StoreError};

/// The registration of one trigger with one feed (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The provider's name (the catalog package): `alarms` or `messaging`.
    pub provider: String,
    /// The feed action's name in that package: `alarm`, `once`, `interval`, `kafkaFeed`.
    pub feed: String,
    /// The trigger's namespace.
    pub namespace: String,
    /// The trigger's name.
    pub trigger: String,
    /// Whose identity fires the trigger.
    pub owner: Owner,
    /// The feed's validated configuration (its shape is the feed's own).
    pub config: Map<String, Value>,
    /// Active or not, and why.
    pub status: Status,
    /// What the provider last reported about the feed's source (the Kafka consumer's broker
    /// connection), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Which provider runs this registration, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// The fires so far.
    #[serde(default)]
    pub fired: Fired,
    /// Creation, epoch ms.
    pub created: i64,
    /// Last change, epoch ms (also the store's listing order).
    pub updated: i64,
    /// `<namespace>/<trigger>`: the name the store's listing sorts by.
    pub name: String,
}

/// The identity that fires a registration's trigger: a reference, not a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The uuid part of the owner's key.
    pub uuid: String,
    /// The owner's subject (for logs and READ).
    pub subject: String,
}

/// Whether a registration fires, as OpenWhisk's providers report it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// False: the provider does not fire it.
    pub active: bool,
    /// When `active` last changed, epoch ms.
    pub date_changed: i64,
    /// Why it is not active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Why a registration was disabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    /// `AUTO` (the provider disabled it), `USER` (a PAUSE).
    pub kind: String,
    /// The fire's HTTP status that disabled it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// What happened.
    pub message: String,
}

/// The provider's last word on a feed's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `connecting`, `running`, `unreachable`, `retrying`.
    pub state: String,
    /// Details (the broker's error, the failing fire's status).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Epoch ms of the report.
    pub since: i64,
}

/// A provider's hold on a registration: only the holder fires it, until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The provider's id.
    pub holder: String,
    /// Epoch ms the hold ends unless renewed.
    pub until: i64,
}

/// What a registration fired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The scheduled time (epoch ms) of the last fire claimed (alarms); claims are writes with
    /// the document's revision, so one scheduled time fires once across providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<i64>,
    /// Fires claimed so far.
    #[serde(default)]
    pub count: u64,
}

impl Registration {
    /// The store key of `provider`'s registration of `/namespace/trigger`.
    pub fn key_of(provider: &str, namespace: &str, trigger: &str) -> String {
        format!("{provider}/{namespace}/{trigger}")
    }

    /// This registration's store key.
    pub fn key(&self) -> String {
        Self::key_of(&self.provider, &self.namespace, &self.trigger)
    }

    /// `/namespace/trigger`.
    pub fn trigger_path(&self) -> String {
        format!("/{}/{}", self.namespace, self.trigger)
    }

    /// True when `holder` holds an unexpired lease at `now`.
    pub fn held_by(&self, holder: &str, now: i64) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.holder == holder && l.until > now)
    }

    /// True when a provider other than `me` holds an unexpired lease at `now`.
    pub fn held_by_other(&self, me: &str, now: i64) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.holder != me && l.until > now)
    }

    /// Marks it inactive for `reason` (kept as the first reason when already inactive).
    pub fn disable(&mut self, kind: &str, status_code: Option<u16>, message: impl Into<String>) {
        if !self.status.active {
            return;
        }
        let now = now_ms();
        self.status = Status {
            active: false,
            date_changed: now,
            reason: Some(Reason {
                kind: kind.to_string(),
                status_code,
                message: message.into(),
            }),
        };
        self.updated = now;
    }

    /// The READ answer: OpenWhisk's providers' `{config, status}` (with `dateChangedISO`),
    /// plus how many times an alarm fired (`fired`), the provider's `health` report when
    /// there is one, and which provider runs it (`provider`, the lease holder's id).
    pub fn view(&self) -> Value {
        let mut config = self.config.clone();
        config.insert("name".into(), json!(self.trigger));
        config.insert("namespace".into(), json!(self.namespace));
        config.insert("triggerName".into(), json!(self.trigger_path()));
        let iso = chrono::DateTime::from_timestamp_millis(self.status.date_changed)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let mut status = json!({
            "active": self.status.active,
            "dateChanged": self.status.date_changed,
            "dateChangedISO": iso,
        });
        if let Some(r) = &self.status.reason {
            status["reason"] = json!(r);
        }
        let mut v = json!({"config": config, "status": status});
        if self.fired.last.is_some() {
            v["fired"] = json!(self.fired.count);
        }
        if let Some(h) = &self.health {
            v["health"] = json!(h);
        }
        if let Some(l) = &self.lease {
            v["provider"] = json!(l.holder);
        }
        v
    }
}

/// Reads registration `key` (`None` when absent; a corrupt document is an error).
pub async fn read(
    store: &dyn Store,
    key: &str,
) -> Result<Option<Revisioned<Registration>>, FeedError> {
    let Some(r) = store.get_entity(EntityKind::Feed, key).await? else {
        return Ok(None);
    };
    let doc = serde_json::from_value(r.doc)
        .map_err(|e| FeedError::Store(StoreError::Corrupt(format!("registration {key}: {e}"))))?;
    Ok(Some(Revisioned { rev: r.rev, doc }))
}

/// Writes `reg` over revision `rev` (`None`: creates); answers the new revision.
pub async fn write(
    store: &dyn Store,
    reg: &Registration,
    rev: Option<&str>,
) -> Result<String, StoreError> {
    let doc = serde_json::to_value(reg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store
        .put_entity(EntityKind::Feed, &reg.key(), &doc, rev)
        .await
}

/// Applies `change` to registration `key` and writes it, re-reading and trying again when
/// another writer got in between (a provider renewing its lease). `change` answers false to
/// leave the document as it is. Answers the document written (or left), `None` when absent.
pub async fn modify(
    store: &Arc<dyn Store>,
    key: &str,
    mut change: impl FnMut(&mut Registration) -> Result<bool, FeedError>,
) -> Result<Option<Revisioned<Registration>>, FeedError> {
    for _ in 0..16 {
        let Some(mut r) = read(store.as_ref(), key).await? else {
            return Ok(None);
        };
        if !change(&mut r.doc)? {
            return Ok(Some(r));
        }
        match write(store.as_ref(), &r.doc, Some(&r.rev)).await {
            Ok(rev) => {
                return Ok(Some(Revisioned { rev, doc: r.doc }));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(FeedError::Store(StoreError::Conflict))
}

/// Every registration of `provider` (pages of the store's listing; corrupt ones skipped).
pub async fn list(store: &dyn Store, provider: &str) -> Result<Vec<Registration>, StoreError> {
    const PAGE: usize = 200;
    let mut out = Vec::new();
    let mut skip = 0;
    loop {
        let page = store
            .list_entities(EntityKind::Feed, provider, skip, PAGE)
            .await?;
        let n = page.len();
        for doc in page {
            match serde_json::from_value::<Registration>(doc) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(error = %e, provider, "skipping a corrupt feed registration")
                }
            }
        }
        if n < PAGE {
            return Ok(out);
        }
        skip += n;
    }
}
