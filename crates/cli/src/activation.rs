//! `whisk activation list|get|logs|result|poll`, printing as `wsk` does. `activation get`
//! prints `ok: got activation ID` on the first line and the record's JSON after it, which the
//! seed's scripts rely on (`| sed '1d'`).

use crate::client::Client;
use crate::error::Failure;
use crate::output::{self, print_json};
use crate::params::QualifiedName;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Flags of `activation list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only activations of this action (`name` or `pkg/name`).
    pub name: Option<String>,
    /// Only return LIMIT activations.
    #[arg(short = 'l', long, default_value_t = 30)]
    pub limit: u32,
    /// Skip the first SKIP activations.
    #[arg(short = 's', long, default_value_t = 0)]
    pub skip: u32,
    /// Only activations started at or after this time (epoch milliseconds).
    #[arg(long, value_name = "MS")]
    pub since: Option<i64>,
    /// Only activations started at or before this time (epoch milliseconds).
    #[arg(long, value_name = "MS")]
    pub upto: Option<i64>,
    /// Print the full records.
    #[arg(short = 'f', long)]
    pub full: bool,
}

/// An activation id, or `--last`.
#[derive(Debug, Clone, clap::Args)]
pub struct Which {
    /// Activation id.
    pub id: Option<String>,
    /// Use the most recent activation.
    #[arg(short = 'l', long)]
    pub last: bool,
}

/// `whisk activation ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ActivationCommand {
    /// List activations.
    List(ListArgs),
    /// Get an activation record.
    Get {
        #[command(flatten)]
        which: Which,
        /// Summarize the activation.
        #[arg(short = 's', long)]
        summary: bool,
    },
    /// Get the logs of an activation.
    Logs {
        #[command(flatten)]
        which: Which,
        /// Print only the message of each line (no time or stream).
        #[arg(short = 'r', long)]
        strip: bool,
    },
    /// Get the result of an activation.
    Result {
        #[command(flatten)]
        which: Which,
    },
    /// Poll for new activations and print their logs.
    Poll {
        /// Only activations of this action.
        name: Option<String>,
        /// Stop polling after SECONDS.
        #[arg(short = 'e', long = "exit", value_name = "SECONDS")]
        exit: Option<u64>,
        /// Also show activations started up to SECONDS before polling began.
        #[arg(long = "since-seconds", value_name = "SECONDS", default_value_t = 0)]
        since_seconds: u64,
    },
}

/// Runs an activation command.
pub async fn run(client: &Client, json_out: bool, cmd: ActivationCommand) -> anyhow::Result<()> {
    let ns = client.settings().namespace.clone();
    match cmd {
        ActivationCommand::List(a) => list(client, json_out, &ns, a).await,
        ActivationCommand::Get { which, summary } => {
            let id = resolve(client, &ns, which).await?;
            let record = fetch(client, &ns, &id, None, "Unable to get activation").await?;
            if json_out {
                print_json(&record);
            } else if summary {
                print_summary(&record);
            } else {
                println!("ok: got activation {id}");
                print_json(&record);
            }
            Ok(())
        }
        ActivationCommand::Logs { which, strip } => {
            let id = resolve(client, &ns, which).await?;
            let body = fetch(
                client,
                &ns,
                &id,
                Some("logs"),
                "Unable to get logs for activation",
            )
            .await?;
            if json_out {
                print_json(&body);
            } else {
                for line in output::log_lines(&body) {
                    println!(
                        "{}",
                        if strip {
                            output::strip_log_line(&line)
                        } else {
                            &line
                        }
                    );
                }
            }
            Ok(())
        }
        ActivationCommand::Result { which } => {
            let id = resolve(client, &ns, which).await?;
            let body = fetch(
                client,
                &ns,
                &id,
                Some("result"),
                "Unable to get result for activation",
            )
            .await?;
            match body.get("result") {
                Some(result) if !json_out => print_json(result),
                _ => print_json(&body),
            }
            Ok(())
        }
        ActivationCommand::Poll {
            name,
            exit,
            since_seconds,
        } => poll(client, &ns, name, exit, since_seconds).await,
    }
}

/// Query of `GET .../activations` (keys in alphabetical order, as wsk sends them).
fn list_query(name: Option<&str>, args: &ListArgs) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if args.full {
        q.push(("docs", "true".to_string()));
    }
    q.push(("limit", args.limit.to_string()));
    if let Some(n) = name {
        q.push(("name", n.to_string()));
    }
    if let Some(s) = args.since {
        q.push(("since", s.to_string()));
    }
    q.push(("skip", args.skip.to_string()));
    if let Some(u) = args.upto {
        q.push(("upto", u.to_string()));
    }
    q
}

async fn list(client: &Client, json_out: bool, ns: &str, args: ListArgs) -> anyhow::Result<()> {
    let qn = args
        .name
        .as_deref()
        .map(|n| QualifiedName::parse(n, ns))
        .transpose()?;
    let namespace = qn
        .as_ref()
        .map(|q| q.namespace.clone())
        .unwrap_or_else(|| ns.to_string());
    let query = list_query(qn.as_ref().map(|q| q.entity.as_str()), &args);
    let url = client.url(&namespace, "activations", &[])?;
    let resp = client
        .send(Method::GET, url, &query, None)
        .await
        .map_err(|e| {
            e.failure(&format!(
                "Unable to obtain the list of activations for namespace '{namespace}'"
            ))
        })?;
    let records = resp.body.as_array().cloned().unwrap_or_default();
    if json_out || args.full {
        print_json(&Value::Array(records));
    } else {
        print!("{}", output::activation_table(&records));
    }
    Ok(())
}

/// The id given, or the newest activation's id with `--last`.
async fn resolve(client: &Client, ns: &str, which: Which) -> anyhow::Result<String> {
    match (which.id, which.last) {
        (Some(id), false) => Ok(id),
        (Some(_), true) => Err(Failure::usage("Give an activation id or --last, not both.").into()),
        (None, false) => Err(Failure::usage("An activation ID is required.").into()),
        (None, true) => {
            let url = client.url(ns, "activations", &[])?;
            let query = [("limit", "1".to_string()), ("skip", "0".to_string())];
            let resp = client
                .send(Method::GET, url, &query, None)
                .await
                .map_err(|e| e.failure("Unable to get the most recent activation"))?;
            resp.body
                .as_array()
                .and_then(|a| a.first())
                .and_then(|a| a.get("activationId"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Failure::general("There are no activations yet.").into())
        }
    }
}

async fn fetch(
    client: &Client,
    ns: &str,
    id: &str,
    part: Option<&str>,
    context: &str,
) -> anyhow::Result<Value> {
    let mut segments = vec![id];
    segments.extend(part);
    let url = client.url(ns, "activations", &segments)?;
    let resp = client
        .send(Method::GET, url, &[], None)
        .await
        .map_err(|e| e.failure(&format!("{context} '{id}'")))?;
    Ok(resp.body)
}

fn print_summary(record: &Value) {
    let path = output::annotation(record, "path")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let ns = record
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("_");
            let name = record.get("name").and_then(Value::as_str).unwrap_or("");
            format!("{ns}/{name}")
        });
    let response = record.get("response").cloned().unwrap_or(Value::Null);
    let status = response
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let start = record
        .get("start")
        .and_then(Value::as_i64)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    println!("activation result for '/{path}' ({status} at {start})");
    print_json(response.get("result").unwrap_or(&Value::Null));
}

async fn poll(
    client: &Client,
    ns: &str,
    name: Option<String>,
    exit: Option<u64>,
    since_seconds: u64,
) -> anyhow::Result<()> {
    let qn = name
        .as_deref()
        .map(|n| QualifiedName::parse(n, ns))
        .transpose()?;
    let namespace = qn
        .as_ref()
        .map(|q| q.namespace.clone())
        .unwrap_or_else(|| ns.to_string());
    let since = whisk_core::now_ms() - (since_seconds as i64).saturating_mul(1000);
    let began = Instant::now();
    let deadline = exit.map(|s| began + Duration::from_secs(s));
    let mut seen = HashSet::new();
    println!("Enter Ctrl-c to exit.");
    println!("Polling for activation logs");
    loop {
        let mut query = vec![("docs", "true".to_string()), ("limit", "200".to_string())];
        if let Some(q) = &qn {
            query.push(("name", q.entity.clone()));
        }
        query.push(("since", since.to_string()));
        let url = client.url(&namespace, "activations", &[])?;
        let resp = client
            .send(Method::GET, url, &query, None)
            .await
            .map_err(|e| {
                e.failure(&format!(
                    "Unable to poll the activations of namespace '{namespace}'"
                ))
            })?;
        let records = resp.body.as_array().cloned().unwrap_or_default();
        for record in records.iter().rev() {
            let Some(id) = record.get("activationId").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(id.to_string()) {
                continue;
            }
            let name = record.get("name").and_then(Value::as_str).unwrap_or("");
            println!("\nActivation: '{name}' ({id})");
            for line in output::log_lines(record) {
                println!("{line}");
            }
        }
        let pause = Duration::from_secs(1);
        match deadline {
            Some(d) if Instant::now() >= d => return Ok(()),
            Some(d) => {
                tokio::time::sleep(pause.min(d.saturating_duration_since(Instant::now()))).await
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_is_alphabetical() {
        let args = ListArgs {
            name: None,
            limit: 5,
            skip: 1,
            since: Some(10),
            upto: Some(20),
            full: true,
        };
        let q = list_query(Some("fib"), &args);
        let keys: Vec<&str> = q.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["docs", "limit", "name", "since", "skip", "upto"]);
        let args = ListArgs {
            name: None,
            limit: 30,
            skip: 0,
            since: None,
            upto: None,
            full: false,
        };
        assert_eq!(
            list_query(None, &args),
            vec![("limit", "30".to_string()), ("skip", "0".to_string())]
        );
    }
}
