//! An invoke of one of the catalog's feed actions (see [`crate::services::Feeds`]): answered
//! like any blocking or non-blocking invoke, with the activation the service recorded.

use crate::api::answers::{accepted, completed};
use crate::api::extract::Caller;
use crate::errors::ApiResult;
use crate::services::{Feeds, Resolved};
use axum::response::Response;
use serde_json::{Map, Value};
use whisk_feeds::Feed;

/// Runs feed `feed` resolved as `resolved` with the request's `body`.
pub async fn invoke(
    feeds: &Feeds,
    caller: &Caller,
    resolved: &Resolved,
    feed: Feed,
    body: Map<String, Value>,
    blocking: bool,
    result_only: bool,
) -> ApiResult<Response> {
    let content = resolved.merge(body)?;
    let activation = feeds
        .invoke(&caller.0, &resolved.fqn, resolved.action(), feed, content)
        .await?;
    Ok(match blocking {
        true => completed(&activation, result_only),
        false => accepted(&activation.activation_id),
    })
}
