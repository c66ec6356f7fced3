//! The feed protocol on the client side, as `wsk` runs it: `trigger create --feed ACTION`
//! creates the trigger (annotated `feed: /ns/pkg/action`, its `-p` parameters going to the
//! feed rather than to the trigger), then invokes the feed action blocking with
//! `{lifecycleEvent: CREATE, triggerName: /ns/trigger, authKey, ...params}` and deletes the
//! trigger again when that fails; `trigger get` of a trigger with a feed runs the feed's READ
//! and shows its activation; `trigger delete` first runs the feed's DELETE.

use crate::client::Client;
use crate::error::{ApiError, Failure};
use crate::output::print_json;
use crate::params::{self, QualifiedName};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// Invokes `feed` (qualified) blocking with lifecycle `event` for `trigger` and `params`;
/// answers the activation, or the failure (`Unable to configure feed ...`).
pub async fn configure(
    client: &Client,
    trigger: &QualifiedName,
    feed: &QualifiedName,
    event: &str,
    mut params: Map<String, Value>,
) -> Result<Value, Failure> {
    params.insert("lifecycleEvent".into(), json!(event));
    params.insert(
        "triggerName".into(),
        json!(format!("/{}/{}", trigger.namespace, trigger.entity)),
    );
    params.insert("authKey".into(), json!(client.settings().auth));
    let unable = |e: String| Failure::general(format!("Unable to configure feed '{feed}': {e}"));
    let url = client
        .url(&feed.namespace, "actions", &feed.segments())
        .map_err(|e| unable(e.to_string()))?;
    let query = [("blocking", "true".to_string())];
    match client
        .send(Method::POST, url, &query, Some(&Value::Object(params)))
        .await
    {
        Ok(resp) => Ok(resp.body),
        Err(ApiError::Http {
            body: Some(body), ..
        }) if body.get("response").is_some() => {
            let result = &body["response"]["result"];
            let error = result
                .get("error")
                .cloned()
                .unwrap_or_else(|| result.clone());
            let text = match error {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Err(unable(text))
        }
        Err(e) => Err(unable(e.to_string())),
    }
}

/// `trigger create NAME --feed FEED`: the trigger, then the feed's CREATE (see the module
/// docs); `parameters` go to the feed, `annotations` to the trigger.
pub async fn create(
    client: &Client,
    json_out: bool,
    trigger: &QualifiedName,
    feed: &str,
    parameters: Map<String, Value>,
    mut annotations: Map<String, Value>,
) -> anyhow::Result<()> {
    let feed = QualifiedName::parse(feed, &trigger.namespace)?;
    let feed_name = format!("/{}/{}", feed.namespace, feed.entity);
    annotations.insert("feed".into(), json!(feed_name));
    let body = json!({
        "name": trigger.entity,
        "annotations": params::to_key_values(&annotations),
    });
    let url = client.url(&trigger.namespace, "triggers", &[&trigger.entity])?;
    let created = client
        .send(
            Method::PUT,
            url.clone(),
            &[("overwrite", "false".into())],
            Some(&body),
        )
        .await
        .map_err(|e| e.failure(&format!("Unable to create trigger '{}'", trigger.entity)))?;
    match configure(client, trigger, &feed, "CREATE", parameters).await {
        Ok(activation) => {
            if json_out {
                print_json(&created.body);
            } else {
                let id = activation
                    .get("activationId")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                println!("ok: invoked {feed_name} with id {id}");
                println!("ok: created trigger {}", trigger.entity);
            }
            Ok(())
        }
        Err(f) => {
            // As wsk: the trigger goes again (a failure to delete it is not reported).
            let _ = client.send(Method::DELETE, url, &[], None).await;
            let reason = f.message.unwrap_or_default();
            Err(Failure::general(format!(
                "Unable to create trigger '{}': {reason}",
                trigger.entity
            ))
            .into())
        }
    }
}

/// `trigger get` of `trigger` (its document `entity`) when it has a `feed` annotation, as wsk:
/// the feed's READ, shown as a blocking invoke is (`ok: invoked FEED with id ID` and the
/// activation). `false` when the trigger has no feed (the caller shows the trigger).
pub async fn read(
    client: &Client,
    json_out: bool,
    trigger: &QualifiedName,
    entity: &Value,
) -> anyhow::Result<bool> {
    let Some(feed) = crate::output::annotation(entity, "feed").and_then(Value::as_str) else {
        return Ok(false);
    };
    let feed_name = feed.to_string();
    let feed = QualifiedName::parse(feed, &trigger.namespace)?;
    let activation = configure(client, trigger, &feed, "READ", Map::new()).await?;
    if !json_out {
        let id = activation
            .get("activationId")
            .and_then(Value::as_str)
            .unwrap_or("");
        println!("ok: invoked {feed_name} with id {id}");
    }
    print_json(&activation);
    Ok(true)
}

/// Before `trigger delete`: runs the feed's DELETE when the trigger has a `feed` annotation;
/// a failure is printed and the delete goes on (as wsk).
pub async fn delete(client: &Client, trigger: &QualifiedName) {
    let Ok(url) = client.url(&trigger.namespace, "triggers", &[&trigger.entity]) else {
        return;
    };
    let Ok(resp) = client.send(Method::GET, url, &[], None).await else {
        return;
    };
    let Some(feed) = crate::output::annotation(&resp.body, "feed").and_then(Value::as_str) else {
        return;
    };
    let Ok(feed) = QualifiedName::parse(feed, &trigger.namespace) else {
        return;
    };
    if let Err(f) = configure(client, trigger, &feed, "DELETE", Map::new()).await {
        eprintln!("error: {}", f.message.unwrap_or_default());
    }
}
