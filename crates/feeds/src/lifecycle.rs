//! The feed protocol's lifecycle events against the store, as the controller answers an invoke
//! of a catalog feed action: `{lifecycleEvent, triggerName, authKey, ...params}` →
//! CREATE (register), READ (`{config, status}`), UPDATE, DELETE, PAUSE, UNPAUSE.
//!
//! Who may: `authKey` must be a live key (checked against the store, in constant time) whose
//! namespace owns the trigger, and the trigger must exist (but for DELETE, which `wsk trigger
//! delete` runs first and which must clean up after a trigger already gone). Without
//! `authKey` the caller's own identity is used. The registration keeps a reference to that
//! identity, never the key.

use crate::registration::{self, Owner, Registration, Status};
use crate::{alarm, kafka, Feed, FeedError};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use whisk_core::identity::split_key;
use whisk_core::{now_ms, Identity};
use whisk_store::{EntityKind, Store, StoreError};

/// A lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Register the trigger with the feed.
    Create,
    /// Show the registration.
    Read,
    /// Change its parameters.
    Update,
    /// Remove it.
    Delete,
    /// Stop firing (kept).
    Pause,
    /// Fire again.
    Unpause,
}

impl Event {
    /// The event named by `lifecycleEvent`.
    pub fn parse(v: Option<&Value>) -> Result<Event, FeedError> {
        let s = v.and_then(Value::as_str).unwrap_or_default();
        Ok(match s.to_ascii_uppercase().as_str() {
            "CREATE" => Event::Create,
            "READ" => Event::Read,
            "UPDATE" => Event::Update,
            "DELETE" => Event::Delete,
            "PAUSE" => Event::Pause,
            "UNPAUSE" => Event::Unpause,
            _ => return Err(FeedError::bad("unsupported lifecycleEvent")),
        })
    }
}

/// What an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    /// The feed action's result.
    pub result: Value,
    /// The registration key the providers must look at again (none for READ).
    pub changed: Option<String>,
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The identity `authKey` names (the caller's own without one).
async fn owner(
    store: &dyn Store,
    caller: &Identity,
    auth: Option<&Value>,
) -> Result<Identity, FeedError> {
    let denied = || FeedError::refused(401, "Trigger authentication request failed.");
    let Some(auth) = auth else {
        return Ok(caller.clone());
    };
    let (uuid, key) = auth
        .as_str()
        .and_then(|k| split_key(k).ok())
        .ok_or_else(denied)?;
    if uuid == caller.uuid && same_secret(key, &caller.key) {
        return Ok(caller.clone());
    }
    match store.get_identity(uuid).await? {
        Some(id) if same_secret(key, &id.key) => Ok(id),
        _ => Err(denied()),
    }
}

/// `/ns/name` or `name` (namespace `_`, the owner's), as upstream's `parseQName`.
fn trigger_name(v: Option<&Value>, owner: &Identity) -> Result<(String, String), FeedError> {
    let Some(q) = v.and_then(Value::as_str).filter(|q| !q.is_empty()) else {
        return Err(FeedError::bad("no trigger name parameter was provided"));
    };
    let (ns, name) = match q.strip_prefix('/') {
        Some(rest) => rest.split_once('/').unwrap_or((rest, "")),
        None => ("_", q),
    };
    if name.is_empty() || name.contains('/') {
        return Err(FeedError::bad(format!(
            "the trigger name '{q}' is not valid"
        )));
    }
    let ns = if ns == "_" {
        owner.namespace.as_str()
    } else {
        ns
    };
    if ns != owner.namespace {
        return Err(FeedError::refused(
            403,
            format!(
                "The supplied authentication is not authorized to access '{ns}/triggers/{name}'."
            ),
        ));
    }
    Ok((ns.to_string(), name.to_string()))
}

/// The parameters that configure the feed (the protocol's own removed).
fn feed_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "lifecycleEvent" | "triggerName" | "authKey"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn not_registered(path: &str) -> FeedError {
    FeedError::refused(404, format!("the trigger {path} has no feed registration"))
}

/// Runs the lifecycle event in `params` of `feed` for `caller`.
pub async fn run(
    store: &Arc<dyn Store>,
    caller: &Identity,
    feed: Feed,
    params: &Map<String, Value>,
) -> Result<Done, FeedError> {
    let event = Event::parse(params.get("lifecycleEvent"))?;
    let owner = owner(store.as_ref(), caller, params.get("authKey")).await?;
    let (ns, name) = trigger_name(params.get("triggerName"), &owner)?;
    let path = format!("/{ns}/{name}");
    if event != Event::Delete
        && store
            .get_entity(EntityKind::Trigger, &format!("{ns}/{name}"))
            .await?
            .is_none()
    {
        return Err(FeedError::refused(
            404,
            format!("the trigger {path} does not exist"),
        ));
    }
    let key = Registration::key_of(feed.package(), &ns, &name);
    let config = feed_params(params);
    let now = now_ms();
    let success = |key: &str| Done {
        result: json!({"status": "success"}),
        changed: Some(key.to_string()),
    };
    match event {
        Event::Create => {
            let config = match feed {
                Feed::Kafka => kafka::create(&config)?,
                _ => alarm::create(feed, &config, now)?,
            };
            let reg = Registration {
                provider: feed.package().to_string(),
                feed: feed.name().to_string(),
                namespace: ns.clone(),
                trigger: name.clone(),
                owner: Owner {
                    uuid: owner.uuid.clone(),
                    subject: owner.subject.clone(),
                },
                config,
                status: Status {
                    active: true,
                    date_changed: now,
                    reason: None,
                },
                health: None,
                lease: None,
                fired: Default::default(),
                created: now,
                updated: now,
                name: format!("{ns}/{name}"),
            };
            // A registration left by a trigger deleted without its feed's DELETE is replaced.
            let mut rev = None;
            loop {
                match registration::write(store.as_ref(), &reg, rev.as_deref()).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict) => {
                        rev = registration::read(store.as_ref(), &key)
                            .await?
                            .map(|r| r.rev);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            tracing::info!(trigger = %path, feed = %feed.path(), "feed registered");
            Ok(success(&key))
        }
        Event::Read => {
            let reg = registration::read(store.as_ref(), &key)
                .await?
                .ok_or_else(|| not_registered(&path))?;
            Ok(Done {
                result: reg.doc.view(),
                changed: None,
            })
        }
        Event::Update | Event::Pause | Event::Unpause => {
            let written = registration::modify(store, &key, |reg| {
                match event {
                    Event::Pause => reg.disable("USER", None, "Paused by its owner"),
                    Event::Unpause => {
                        reg.status = Status {
                            active: true,
                            date_changed: now_ms(),
                            reason: None,
                        };
                    }
                    _ if feed == Feed::Kafka => {
                        if !reg.status.active {
                            return Err(FeedError::bad(format!(
                                "{path} cannot be updated because it is disabled"
                            )));
                        }
                        kafka::update(&mut reg.config, &config)?;
                    }
                    _ => {
                        alarm::update(feed, &mut reg.config, &config, now_ms())?;
                        if !reg.status.active {
                            reg.status = Status {
                                active: true,
                                date_changed: now_ms(),
                                reason: None,
                            };
                        }
                    }
                }
                reg.updated = now_ms();
                Ok(true)
            })
            .await?;
            written.ok_or_else(|| not_registered(&path))?;
            Ok(success(&key))
        }
        Event::Delete => {
            match store.delete_entity(EntityKind::Feed, &key, None).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(not_registered(&path)),
                Err(e) => return Err(e.into()),
            }
            tracing::info!(trigger = %path, feed = %feed.path(), "feed registration deleted");
            Ok(success(&key))
        }
    }
}
