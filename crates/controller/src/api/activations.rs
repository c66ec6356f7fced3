//! `/api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]`: the caller's activation
//! records, listed with filters or read one at a time; the activations this controller
//! placed that still run (`?running=true`); and live logs (`/logs?follow=true`), a
//! server-sent event stream:
//!
//! - `Content-Type: text/event-stream`; each log line (OpenWhisk's formatted line,
//!   `2026-12-04T20:00:00.000Z stdout: text`) is one event `data: <line>`;
//! - when the activation ends, one `event: end` whose data is
//!   `{"activationId":..,"status":..}`, and the stream closes;
//! - a finished activation answers its stored lines and `end` at once;
//! - an id with neither a record nor a running activation answers 404 after a short wait
//!   (the record may not be written yet); another namespace's id 404;
//! - comments (`: ...`) keep the connection alive, and say how many lines a follower that
//!   fell behind the controller's bounded buffer missed.

use crate::api::extract::{Caller, Params};
use crate::errors::{ApiError, ApiResult};
use crate::services::{Activations, Following, Invocations, Live, LiveEvent};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};
use std::convert::Infallible;
use whisk_core::{Activation, ActivationId, EntityName, WhiskError};
use whisk_store::ActivationQuery;

/// `GET .../activations?name=&limit=&skip=&since=&upto=&docs=&count=`; with `running=true`,
/// the activations of the namespace this controller placed and has not seen end
/// (`[{activationId, name, path, start}]`, oldest first, `name` filtering as for records).
pub async fn list(
    State(activations): State<Activations>,
    State(invocations): State<Invocations>,
    caller: Caller,
    Path(ns): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let ns = caller.entitle(&ns, "activations")?;
    if params.bool("running", false)? {
        let name = params.get("name").unwrap_or("").trim_start_matches('/');
        let running = invocations
            .running(&ns)
            .into_iter()
            .filter(|(_, path, _)| name.is_empty() || path.ends_with(&format!("/{name}")))
            .map(|(id, path, start)| {
                let short = path.rsplit('/').next().unwrap_or_default().to_string();
                json!({ "activationId": id, "name": short, "path": path, "start": start })
            })
            .collect();
        return Ok(Json(Value::Array(running)));
    }
    let name = match params.get("name") {
        None | Some("") => None,
        Some(n) => {
            let n = n.trim_start_matches('/');
            let parts: Vec<&str> = n.split('/').collect();
            if parts.len() > 2 || parts.iter().any(|p| EntityName::new(p).is_err()) {
                return Err(bad_name(n));
            }
            Some(n.to_string())
        }
    };
    let query = ActivationQuery {
        name,
        since: params.epoch_ms("since")?,
        upto: params.epoch_ms("upto")?,
        skip: params.skip("activations")?,
        limit: params.list_limit("activations")?,
    };
    let docs = params.bool("docs", false)?;
    if params.bool("count", false)? {
        if docs {
            return Err(ApiError(WhiskError::bad_request(
                "The parameter 'docs' is not permitted with 'count'.",
            )));
        }
        let n = activations.count(&ns, &query).await?;
        return Ok(Json(json!({ "activations": n })));
    }
    let records = activations.list(&ns, &query).await?;
    let view = if docs {
        Activation::view
    } else {
        Activation::summary
    };
    Ok(Json(Value::Array(records.iter().map(view).collect())))
}

fn bad_name(n: &str) -> ApiError {
    ApiError(WhiskError::bad_request(format!(
        "Parameter may be a 'simple' name or 'package-name/simple' name: {n}"
    )))
}

async fn load(
    activations: &Activations,
    caller: &Caller,
    ns: &str,
    id: &str,
) -> ApiResult<Activation> {
    let ns = caller.entitle(ns, &format!("activations/{id}"))?;
    let id = ActivationId::parse(id)?;
    Ok(activations.get(&ns, &id).await?)
}

/// `GET .../activations/{id}`.
pub async fn get(
    State(activations): State<Activations>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(load(&activations, &caller, &ns, &id).await?.view()))
}

/// `GET .../activations/{id}/logs`; with `follow=true`, the live event stream (see the
/// module's documentation).
pub async fn logs(
    State(activations): State<Activations>,
    State(invocations): State<Invocations>,
    State(live): State<Live>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Response> {
    if !params.bool("follow", false)? {
        let logs = load(&activations, &caller, &ns, &id).await?.logs;
        return Ok(Json(json!({ "logs": logs })).into_response());
    }
    let ns = caller.entitle(&ns, &format!("activations/{id}"))?;
    let id = ActivationId::parse(&id)?;
    let placed = invocations.placed_here(id.as_str());
    if placed.as_deref().is_some_and(|p| p != ns) {
        return Err(ApiError(WhiskError::not_found()));
    }
    let events: std::pin::Pin<Box<dyn Stream<Item = LiveEvent> + Send>> =
        match live.follow(&ns, &id, placed.is_some()).await? {
            Following::Ended(record) => {
                let end = LiveEvent::End {
                    activation_id: record.activation_id.to_string(),
                    status: record.response.status_code.as_str().to_string(),
                };
                let lines = record.logs.into_iter().map(LiveEvent::Line);
                Box::pin(stream::iter(lines.chain(std::iter::once(end))))
            }
            Following::Live(rx) => Box::pin(stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|e| (e, rx))
            })),
        };
    let events = events.map(|e| Ok::<_, Infallible>(sse_event(e)));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One live event on the wire.
fn sse_event(e: LiveEvent) -> Event {
    match e {
        // A line holds no line break (the collector splits on them); a stray one would
        // become a second `data:` field, which a client joins back.
        LiveEvent::Line(line) => Event::default().data(line),
        LiveEvent::Skipped(n) => Event::default().comment(format!("{n} lines skipped")),
        LiveEvent::End {
            activation_id,
            status,
        } => Event::default()
            .event("end")
            .data(json!({ "activationId": activation_id, "status": status }).to_string()),
    }
}

/// `GET .../activations/{id}/result`.
pub async fn result(
    State(activations): State<Activations>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        load(&activations, &caller, &ns, &id).await?.response.view(),
    ))
}
