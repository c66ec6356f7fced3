//! `whisk trigger create|update|get|delete|list|fire`, with `wsk`'s flags and what it prints:
//! `ok: created trigger T`, `ok: triggered /_/T with id ID` (an empty id when no rule is
//! active, as wsk prints it), `ok: got trigger T` then the JSON, the `triggers` table.

use crate::action_body::ParamArgs;
use crate::client::Client;
use crate::output::print_json;
use crate::params::{self, QualifiedName};
use reqwest::Method;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// `-a KEY VALUE` and `-A FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AnnotationArgs {
    /// Annotation values in KEY VALUE format (VALUE is JSON when it parses as JSON).
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true)]
    pub annotation: Vec<String>,
    /// FILE containing annotation values as a JSON object.
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    pub annotation_file: Option<PathBuf>,
}

/// Flags of `trigger create` and `trigger update`.
#[derive(Debug, Clone, clap::Args)]
pub struct PutArgs {
    /// Trigger name.
    pub name: String,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Trigger feed ACTION_NAME (create): its parameters go to the feed (see [`crate::feed`]).
    #[arg(short = 'f', long, value_name = "ACTION_NAME")]
    pub feed: Option<String>,
}

/// Flags of `trigger get` and `rule get`.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// Entity name.
    pub name: String,
    /// Show only this field of the entity.
    pub field: Option<String>,
    /// Summarize the entity's details.
    #[arg(short = 's', long)]
    pub summary: bool,
}

/// Flags of `trigger list` and `rule list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// `/namespace` to list.
    pub namespace: Option<String>,
    /// Only return LIMIT entities.
    #[arg(short = 'l', long, default_value_t = 30)]
    pub limit: u32,
    /// Skip the first SKIP entities.
    #[arg(short = 's', long, default_value_t = 0)]
    pub skip: u32,
    /// Sort by name.
    #[arg(short = 'n', long = "name-sort")]
    pub name_sort: bool,
}

/// `whisk trigger ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TriggerCommand {
    /// Fire a trigger event.
    Fire {
        /// Trigger name.
        name: String,
        #[command(flatten)]
        params: ParamArgs,
    },
    /// Create a new trigger.
    Create(PutArgs),
    /// Update an existing trigger, or create it.
    Update(PutArgs),
    /// Get a trigger.
    Get(GetArgs),
    /// Delete a trigger.
    Delete {
        /// Trigger name.
        name: String,
    },
    /// List triggers.
    List(ListArgs),
}

/// Runs a trigger command.
pub async fn run(client: &Client, json_out: bool, cmd: TriggerCommand) -> anyhow::Result<()> {
    let ns = client.settings().namespace.clone();
    match cmd {
        TriggerCommand::Fire { name, params } => fire(client, json_out, &ns, &name, &params).await,
        TriggerCommand::Create(a) => put(client, json_out, &ns, a, false).await,
        TriggerCommand::Update(a) => put(client, json_out, &ns, a, true).await,
        TriggerCommand::Get(a) => {
            let qn = QualifiedName::parse(&a.name, &ns)?;
            let url = client.url(&qn.namespace, "triggers", &[&qn.entity])?;
            let resp = client
                .send(Method::GET, url, &[], None)
                .await
                .map_err(|e| e.failure(&format!("Unable to get trigger '{}'", qn.entity)))?;
            if crate::feed::read(client, json_out, &qn, &resp.body).await? {
                return Ok(());
            }
            show(&resp.body, "trigger", &qn, &a, json_out)
        }
        TriggerCommand::Delete { name } => {
            let qn = QualifiedName::parse(&name, &ns)?;
            crate::feed::delete(client, &qn).await;
            delete(client, json_out, &qn, "trigger").await
        }
        TriggerCommand::List(a) => {
            let (_, list) = list(client, &ns, "triggers", &a).await?;
            print_list(list, a.name_sort, json_out, trigger_table);
            Ok(())
        }
    }
}

async fn put(
    client: &Client,
    json_out: bool,
    ns: &str,
    args: PutArgs,
    update: bool,
) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(&args.name, ns)?;
    let mut body = Map::new();
    body.insert("name".into(), Value::String(qn.entity.clone()));
    let parameters = params::collect(
        &args.params.param,
        args.params.param_file.as_deref(),
        "param",
    )?;
    let annotations = params::collect(
        &args.annotations.annotation,
        args.annotations.annotation_file.as_deref(),
        "annotation",
    )?;
    if let Some(feed) = args.feed.as_deref().filter(|_| !update) {
        return crate::feed::create(client, json_out, &qn, feed, parameters, annotations).await;
    }
    if !parameters.is_empty() {
        body.insert("parameters".into(), params::to_key_values(&parameters));
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), params::to_key_values(&annotations));
    }
    send_put(
        client,
        json_out,
        &qn,
        "trigger",
        &Value::Object(body),
        update,
    )
    .await
}

/// `PUT` of trigger or rule `qn` (`kind`) with `body` (`?overwrite=` `update`), printing
/// `ok: created KIND NAME` or `ok: updated KIND NAME`.
pub async fn send_put(
    client: &Client,
    json_out: bool,
    qn: &QualifiedName,
    kind: &str,
    body: &Value,
    update: bool,
) -> anyhow::Result<()> {
    let verb = if update { "update" } else { "create" };
    let url = client.url(&qn.namespace, &format!("{kind}s"), &[&qn.entity])?;
    let query = [("overwrite", update.to_string())];
    let resp = client
        .send(Method::PUT, url, &query, Some(body))
        .await
        .map_err(|e| e.failure(&format!("Unable to {verb} {kind} '{}'", qn.entity)))?;
    if json_out {
        print_json(&resp.body);
    } else {
        println!("ok: {verb}d {kind} {}", qn.entity);
    }
    Ok(())
}

async fn fire(
    client: &Client,
    json_out: bool,
    ns: &str,
    name: &str,
    args: &ParamArgs,
) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(name, ns)?;
    let payload = Value::Object(params::collect(
        &args.param,
        args.param_file.as_deref(),
        "param",
    )?);
    let url = client.url(&qn.namespace, "triggers", &[&qn.entity])?;
    let resp = client
        .send(Method::POST, url, &[], Some(&payload))
        .await
        .map_err(|e| e.failure(&format!("Unable to fire trigger '{}'", qn.entity)))?;
    let id = resp
        .body
        .get("activationId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(resp.activation_id)
        .unwrap_or_default();
    if json_out {
        print_json(&resp.body);
    } else {
        println!("ok: triggered {qn} with id {id}");
    }
    Ok(())
}

/// `DELETE` of trigger or rule `qn` (`kind`), printing `ok: deleted KIND NAME`.
pub async fn delete(
    client: &Client,
    json_out: bool,
    qn: &QualifiedName,
    kind: &str,
) -> anyhow::Result<()> {
    let url = client.url(&qn.namespace, &format!("{kind}s"), &[&qn.entity])?;
    let resp = client
        .send(Method::DELETE, url, &[], None)
        .await
        .map_err(|e| e.failure(&format!("Unable to delete {kind} '{}'", qn.entity)))?;
    if json_out {
        print_json(&resp.body);
    } else {
        println!("ok: deleted {kind} {}", qn.entity);
    }
    Ok(())
}

/// What `get` prints for a trigger or rule: the JSON after `ok: got KIND NAME`, one field,
/// or the summary.
pub fn show(
    entity: &Value,
    kind: &str,
    qn: &QualifiedName,
    args: &GetArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    if json_out {
        print_json(entity);
    } else if args.summary {
        print!("{}", summary(kind, entity));
    } else if let Some(field) = &args.field {
        let Some(value) = entity.get(field) else {
            return Err(
                crate::error::Failure::general(format!("Invalid field filter '{field}'.")).into(),
            );
        };
        println!("ok: got {kind} {}, displaying field {field}", qn.entity);
        print_json(value);
    } else {
        println!("ok: got {kind} {}", qn.entity);
        print_json(entity);
    }
    Ok(())
}

/// `wsk`'s `--summary`: `trigger /ns/t` with its bound parameters (`*p`), or `rule /ns/r` with
/// its status.
pub fn summary(kind: &str, entity: &Value) -> String {
    let field = |k: &str| entity.get(k).and_then(Value::as_str).unwrap_or("");
    let name = format!("/{}/{}", field("namespace"), field("name"));
    if kind == "rule" {
        return format!("rule {name}\n   (status: {})\n", field("status"));
    }
    let mut keys: Vec<String> = entity
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("key").and_then(Value::as_str))
                .map(|k| format!("*{k}"))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    let description = crate::output::annotation(entity, "description").and_then(Value::as_str);
    let params = if keys.is_empty() {
        "none defined".to_string()
    } else {
        keys.join(", ")
    };
    let head = match description {
        Some(d) if !d.is_empty() => format!("{kind} {name}: {d}"),
        _ => format!("{kind} {name}"),
    };
    format!("{head}\n   (parameters: {params})\n")
}

/// `GET .../{collection}?limit&skip` of `[/namespace]`: the namespace listed and the entities.
pub async fn list(
    client: &Client,
    ns: &str,
    collection: &str,
    args: &ListArgs,
) -> anyhow::Result<(String, Vec<Value>)> {
    let namespace = match args.namespace.as_deref() {
        None => ns.to_string(),
        Some(n) => {
            let trimmed = n.trim_start_matches('/').trim_end_matches('/');
            if trimmed.is_empty() || trimmed.contains('/') {
                return Err(crate::error::Failure::usage(
                    "An optional namespace is the only valid argument.",
                )
                .into());
            }
            trimmed.to_string()
        }
    };
    let url = client.url(&namespace, collection, &[])?;
    let list = fetch_list(client, url, &namespace, collection, args.limit, args.skip).await?;
    Ok((namespace, list))
}

/// `GET url?limit&skip`, a list of `collection` (for the error) in `namespace`: its entities.
pub async fn fetch_list(
    client: &Client,
    url: reqwest::Url,
    namespace: &str,
    collection: &str,
    limit: u32,
    skip: u32,
) -> anyhow::Result<Vec<Value>> {
    let query = [("limit", limit.to_string()), ("skip", skip.to_string())];
    let resp = client
        .send(Method::GET, url, &query, None)
        .await
        .map_err(|e| {
            e.failure(&format!(
                "Unable to obtain the list of {collection} for namespace '{namespace}'"
            ))
        })?;
    Ok(resp.body.as_array().cloned().unwrap_or_default())
}

/// What `KIND list` prints: the entities (sorted by name when `by_name`) as JSON or as
/// `table` makes them.
pub fn print_list(
    mut list: Vec<Value>,
    by_name: bool,
    json_out: bool,
    table: fn(&[Value]) -> String,
) {
    sort(&mut list, by_name);
    if json_out {
        print_json(&Value::Array(list));
    } else {
        print!("{}", table(&list));
    }
}

/// Sorts entities by name when `by_name` (`--name-sort`).
pub fn sort(list: &mut [Value], by_name: bool) {
    if by_name {
        list.sort_by_key(|e| {
            e.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        });
    }
}

/// `wsk trigger list`: header `triggers`, then `%-70s private` per trigger.
pub fn trigger_table(triggers: &[Value]) -> String {
    let mut out = String::from("triggers\n");
    for t in triggers {
        let field = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
        let name = format!("/{}/{}", field("namespace"), field("name"));
        out.push_str(&format!("{name:<70} private\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_and_summaries_like_wsk() {
        let t = trigger_table(&[json!({"namespace": "guest", "name": "t"})]);
        assert_eq!(t, format!("triggers\n{:<70} private\n", "/guest/t"));
        assert_eq!(trigger_table(&[]), "triggers\n");
        let trig = json!({"namespace": "guest", "name": "t",
                          "parameters": [{"key": "b", "value": 1}, {"key": "a", "value": 2}]});
        assert_eq!(
            summary("trigger", &trig),
            "trigger /guest/t\n   (parameters: *a, *b)\n"
        );
        let bare = json!({"namespace": "guest", "name": "t", "parameters": []});
        assert_eq!(
            summary("trigger", &bare),
            "trigger /guest/t\n   (parameters: none defined)\n"
        );
        let rule = json!({"namespace": "guest", "name": "r", "status": "active"});
        assert_eq!(
            summary("rule", &rule),
            "rule /guest/r\n   (status: active)\n"
        );
    }
}
