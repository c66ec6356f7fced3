//! `GET /api/v1/namespaces/{ns}/groups[?follow=true]` (whisk-rs): the caller's peer groups
//! that have running instances, with their maps (who, where, since when), read from the peer
//! directory; the web console's peer view. Only the caller's own namespace (403 otherwise).
//!
//! - Without `follow`: a JSON array of groups, sorted by name:
//!   `[{"group", "version", "peers": [{"id", "ip", "port", "invokerId", "activationId",
//!   "sinceMs"}]}]`.
//! - With `follow=true`: `text/event-stream`; one `event: groups` with `data: {"groups":
//!   [...]}` (the same array) at once and after every change, and a `: keep-alive` comment
//!   every 15 s. Changes inside a group are pushed by the directory's watch of that group (at
//!   most [`WATCHED_MAX`] groups per stream); new groups are found by listing the namespace's
//!   groups every [`POLL`]. The stream ends when the client goes away or the controller stops
//!   (the `shutdown` token given to [`with_groups`]), so it never holds up a graceful shutdown.
//!
//! The controller has the directory only when the composition root hands it one ([`with_groups`]:
//! a local directory or invoker, or `directory_url`); without it the route answers 503.

use crate::api::extract::{Caller, Params};
use crate::errors::{ApiError, ApiResult};
use crate::services::{Identities, Services};
use axum::body::Body;
use axum::extract::{FromRef, Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_stream::StreamMap;
use tokio_util::sync::CancellationToken;
use whisk_core::WhiskError;
use whisk_directory_api::{PeerDirectory, PeerMap, PeerMapStream};

/// How often a live stream lists the namespace's groups to find new ones.
pub const POLL: Duration = Duration::from_millis(250);
/// Most groups one live stream watches (the others follow the listing).
pub const WATCHED_MAX: usize = 32;
/// Most live streams one controller serves at once (more: 503).
pub const FOLLOWERS_MAX: usize = 256;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The routes' state: authentication and the peer directory.
#[derive(Clone)]
pub struct GroupsState {
    identities: Identities,
    directory: Option<Arc<dyn PeerDirectory>>,
    followers: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl FromRef<GroupsState> for Identities {
    fn from_ref(s: &GroupsState) -> Identities {
        s.identities.clone()
    }
}

/// `router` with the groups route added, reading `directory` (`None`: answered 503); live
/// streams end when `shutdown` is cancelled.
pub fn with_groups(
    router: Router,
    services: &Services,
    directory: Option<Arc<dyn PeerDirectory>>,
    shutdown: CancellationToken,
) -> Router {
    let state = GroupsState {
        identities: services.identities.clone(),
        directory,
        followers: Arc::new(Semaphore::new(FOLLOWERS_MAX)),
        shutdown,
    };
    let groups = Router::new()
        .route("/api/v1/namespaces/{ns}/groups", get(list))
        .with_state(state)
        .layer(axum::middleware::from_fn(crate::errors::normalize));
    router.merge(groups)
}

/// `GET .../groups[?follow=true]`.
pub async fn list(
    State(state): State<GroupsState>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let ns = caller.entitle(&ns, "groups")?;
    let Some(directory) = state.directory.clone() else {
        return Err(ApiError(WhiskError::unavailable(
            "This controller has no peer directory (set directory_url).",
        )));
    };
    if !params.bool("follow", false)? {
        let maps = directory.groups(&ns).await.map_err(unavailable)?;
        return Ok(Json(Value::Array(maps.iter().map(group_json).collect())).into_response());
    }
    let Ok(permit) = state.followers.clone().try_acquire_owned() else {
        return Err(ApiError(WhiskError::unavailable(format!(
            "Too many peer-group streams on this controller (at most {FOLLOWERS_MAX}); try again later."
        ))));
    };
    let first = directory.groups(&ns).await.map_err(unavailable)?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(follow(
        directory,
        ns,
        first,
        tx,
        permit,
        state.shutdown.clone(),
    ));
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

fn unavailable(e: whisk_directory_api::DirectoryError) -> ApiError {
    tracing::warn!(error = %e, "listing peer groups failed");
    ApiError(WhiskError::unavailable(format!(
        "The peer directory cannot be read now: {e}"
    )))
}

/// A group as the API shows it.
pub fn group_json(m: &PeerMap) -> Value {
    let peers: Vec<Value> = m
        .peers
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "ip": p.ip,
                "port": p.port,
                "invokerId": p.invoker_id,
                "activationId": p.activation_id,
                "sinceMs": p.since_ms,
            })
        })
        .collect();
    json!({"group": m.group, "version": m.version, "peers": peers})
}

fn event(groups: &BTreeMap<String, PeerMap>) -> Bytes {
    let list: Vec<Value> = groups.values().map(group_json).collect();
    Bytes::from(format!(
        "event: groups\ndata: {}\n\n",
        json!({ "groups": list })
    ))
}

/// Sends the namespace's groups at once and after every change until the client goes away.
async fn follow(
    directory: Arc<dyn PeerDirectory>,
    ns: String,
    first: Vec<PeerMap>,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    _permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let mut known: BTreeMap<String, PeerMap> =
        first.into_iter().map(|m| (m.group.clone(), m)).collect();
    let mut watches: StreamMap<String, PeerMapStream> = StreamMap::new();
    if tx.send(Ok(event(&known))).await.is_err() {
        return;
    }
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        let changed = tokio::select! {
            _ = tx.closed() => return,
            _ = shutdown.cancelled() => return,
            _ = keep_alive.tick() => {
                if tx.send(Ok(Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                    return;
                }
                false
            }
            _ = poll.tick() => match directory.groups(&ns).await {
                Ok(maps) => merge_listing(&mut known, &watches, maps),
                Err(e) => {
                    tracing::debug!(error = %e, "listing peer groups failed; retrying");
                    false
                }
            },
            Some((group, map)) = watches.next(), if !watches.is_empty() => {
                apply_watched(&mut known, &mut watches, group, map)
            }
        };
        // Watch the groups seen (up to the cap), so that their changes come at once.
        let new: Vec<String> = known
            .keys()
            .filter(|g| !watches.contains_key(*g))
            .take(WATCHED_MAX.saturating_sub(watches.len()))
            .cloned()
            .collect();
        for g in new {
            match directory.watch(&ns, &g).await {
                Ok(s) => {
                    watches.insert(g, s);
                }
                Err(e) => tracing::debug!(error = %e, group = %g, "cannot watch a peer group"),
            }
        }
        if changed && tx.send(Ok(event(&known))).await.is_err() {
            return;
        }
    }
}

/// Takes a listing of the namespace's groups: a newer version replaces what is known; groups
/// that are not listed leave unless they are watched (their watch is the authority). Returns
/// whether anything changed.
fn merge_listing(
    known: &mut BTreeMap<String, PeerMap>,
    watches: &StreamMap<String, PeerMapStream>,
    maps: Vec<PeerMap>,
) -> bool {
    let mut changed = false;
    let listed: std::collections::HashSet<String> = maps.iter().map(|m| m.group.clone()).collect();
    for m in maps {
        match known.get(&m.group) {
            Some(k) if k.version >= m.version => {}
            _ => {
                known.insert(m.group.clone(), m);
                changed = true;
            }
        }
    }
    let before = known.len();
    known.retain(|g, _| listed.contains(g) || watches.contains_key(g));
    changed || known.len() != before
}

/// Takes a watched group's new map; an empty one removes the group and ends its watch.
fn apply_watched(
    known: &mut BTreeMap<String, PeerMap>,
    watches: &mut StreamMap<String, PeerMapStream>,
    group: String,
    map: PeerMap,
) -> bool {
    if map.peers.is_empty() {
        watches.remove(&group);
        return known.remove(&group).is_some();
    }
    match known.get(&group) {
        Some(k) if k.version >= map.version => false,
        _ => {
            known.insert(group, map);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisk_directory_api::Peer;

    fn map(group: &str, version: u64, ids: &[&str]) -> PeerMap {
        PeerMap {
            namespace: "ns".into(),
            group: group.into(),
            version,
            peers: ids
                .iter()
                .map(|id| Peer {
                    id: id.to_string(),
                    ip: "127.0.0.2".into(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn listings_and_watches_keep_the_newest_map() {
        let mut known = BTreeMap::new();
        let mut watches: StreamMap<String, PeerMapStream> = StreamMap::new();
        assert!(merge_listing(
            &mut known,
            &watches,
            vec![map("a", 2, &["0"])]
        ));
        assert!(!merge_listing(
            &mut known,
            &watches,
            vec![map("a", 2, &["0"])]
        ));
        // A watch brought version 3; an older listing does not take it back.
        assert!(apply_watched(
            &mut known,
            &mut watches,
            "a".into(),
            map("a", 3, &["0", "1"])
        ));
        assert!(!merge_listing(
            &mut known,
            &watches,
            vec![map("a", 2, &["0"])]
        ));
        assert_eq!(known["a"].peers.len(), 2);
        // Not listed and not watched: gone.
        assert!(merge_listing(&mut known, &watches, vec![]));
        assert!(known.is_empty());
        // A watched group that empties is gone.
        known.insert("b".into(), map("b", 1, &["x"]));
        assert!(apply_watched(
            &mut known,
            &mut watches,
            "b".into(),
            map("b", 2, &[])
        ));
        assert!(known.is_empty());
    }

    #[test]
    fn events_are_one_sse_event_of_json() {
        let mut known = BTreeMap::new();
        known.insert("g\n\ndata: x".into(), map("g\n\ndata: x", 1, &["<b>"]));
        let e = String::from_utf8(event(&known).to_vec()).unwrap();
        // Newlines of hostile names stay escaped inside the one JSON line.
        assert_eq!(e.matches('\n').count(), 3, "{e}");
        assert!(e.starts_with("event: groups\ndata: {\"groups\":[{\"group\":\"g\\n\\ndata: x\""));
    }
}
