//! `whisk activation list|get|logs|result|poll`, printing as `wsk` does. `activation get`
//! prints `ok: got activation ID` on the first line and the record's JSON after it, which the
//! seed's scripts rely on (`| sed '1d'`). `activation logs -f` and `activation poll` print
//! log lines as they are printed: they read the controller's live-log event stream
//! (`GET .../activations/{id}/logs?follow=true`, server-sent events); `poll` follows the
//! activations the controller lists as running (`?running=true`) and prints the others'
//! logs once their records appear.

use crate::client::{http_error, Client};
use crate::error::ApiError;
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
        /// Print the lines as the activation prints them, until it ends.
        #[arg(short = 'f', long)]
        follow: bool,
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
        ActivationCommand::Logs {
            which,
            strip,
            follow: true,
        } => {
            let id = resolve(client, &ns, which).await?;
            follow_logs(client, &ns, &id, |line: String| {
                print_log_line(&line, strip)
            })
            .await
            .map_err(|e| e.failure(&format!("Unable to get logs for activation '{id}'")))?;
            Ok(())
        }
        ActivationCommand::Logs {
            which,
            strip,
            follow: false,
        } => {
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
                    print_log_line(&line, strip);
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

/// Follows activation `id`'s live logs: `line` gets each line as the activation prints it
/// (or its stored lines when it had ended); returns the status the activation ended with.
/// Prints one log line as `activation logs` shows it (`--strip`: the message alone).
fn print_log_line(line: &str, strip: bool) {
    println!(
        "{}",
        if strip {
            output::strip_log_line(line)
        } else {
            line
        }
    );
}

async fn follow_logs(
    client: &Client,
    ns: &str,
    id: &str,
    mut line: impl FnMut(String),
) -> Result<String, ApiError> {
    let url = client.url(ns, "activations", &[id, "logs"])?;
    let cut =
        |e: reqwest::Error| ApiError::Network(format!("Following the logs of '{id}' failed: {e}"));
    let mut resp = client
        .request(Method::GET, url)
        .query(&[("follow", "true")])
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(cut)?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        return Err(http_error(status, body));
    }
    let mut events = SseEvents::default();
    while let Some(chunk) = resp.chunk().await.map_err(cut)? {
        for (event, data) in events.push(&chunk) {
            match event.as_deref() {
                Some("end") => {
                    let end: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                    let status = end.get("status").and_then(Value::as_str).unwrap_or("");
                    return Ok(status.to_string());
                }
                None => line(data),
                Some(_) => {}
            }
        }
    }
    Err(ApiError::Network(format!(
        "The log stream of '{id}' ended before the activation did."
    )))
}

/// A server-sent event stream, parsed as its bytes arrive: each event's name (`None` for a
/// plain message) and data (its `data:` fields joined by line breaks); comments and events
/// without data are skipped.
#[derive(Default)]
struct SseEvents {
    buf: Vec<u8>,
}

impl SseEvents {
    fn push(&mut self, bytes: &[u8]) -> Vec<(Option<String>, String)> {
        self.buf.extend_from_slice(bytes);
        let mut out = vec![];
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let (mut event, mut data) = (None, None::<String>);
            for field in text.lines() {
                let (name, value) = field.split_once(':').unwrap_or((field, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match name {
                    "event" => event = Some(value.to_string()),
                    "data" => match &mut data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(value);
                        }
                        None => data = Some(value.to_string()),
                    },
                    _ => {}
                }
            }
            if let Some(data) = data {
                out.push((event, data));
            }
        }
        out
    }
}

/// A line of activation `id` for poll to print, from a follower.
struct Polled {
    id: String,
    line: String,
}

/// Poll's output: each activation's lines under its header (`Activation: 'name' (id)`),
/// repeated when another activation's lines came in between.
#[derive(Default)]
struct PollPrinter {
    seen: HashSet<String>,
    names: std::collections::HashMap<String, String>,
    shown: Option<String>,
}

impl PollPrinter {
    /// The id of activation (or record) `v` and prints its header when it is new.
    fn first_sight(&mut self, v: &Value) -> Option<String> {
        let id = v.get("activationId").and_then(Value::as_str)?;
        if !self.seen.insert(id.to_string()) {
            return None;
        }
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        self.names.insert(id.to_string(), name.to_string());
        self.header(id);
        Some(id.to_string())
    }

    fn header(&mut self, id: &str) {
        let name = self.names.get(id).map(String::as_str).unwrap_or("");
        println!("\nActivation: '{name}' ({id})");
        self.shown = Some(id.to_string());
    }

    fn line(&mut self, id: &str, line: &str) {
        if self.shown.as_deref() != Some(id) {
            self.header(id);
        }
        println!("{line}");
    }
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
    let mut out = PollPrinter::default();
    println!("Enter Ctrl-c to exit.");
    println!("Polling for activation logs");
    // Followers of running activations send their lines here, printed by this task.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Polled>();
    let mut followers = tokio::task::JoinSet::new();
    loop {
        let mut filter = vec![];
        if let Some(q) = &qn {
            filter.push(("name", q.entity.clone()));
        }
        // Running ones (placed by this controller): followed live.
        let url = client.url(&namespace, "activations", &[])?;
        let mut query = vec![("running", "true".to_string())];
        query.extend(filter.iter().cloned());
        if let Ok(resp) = client.send(Method::GET, url, &query, None).await {
            for a in resp.body.as_array().cloned().unwrap_or_default() {
                let Some(id) = out.first_sight(&a) else {
                    continue;
                };
                let (client, ns, tx) = (client.clone(), namespace.clone(), tx.clone());
                followers.spawn(async move {
                    let each = |line: String| {
                        let _ = tx.send(Polled {
                            id: id.clone(),
                            line,
                        });
                    };
                    if let Err(e) = follow_logs(&client, &ns, &id, each).await {
                        tracing::debug!(error = %e, activation = %id, "following failed");
                    }
                });
            }
        }
        // Ended ones not followed: their stored lines.
        let mut query = vec![("docs", "true".to_string()), ("limit", "200".to_string())];
        query.extend(filter.iter().cloned());
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
            if let Some(id) = out.first_sight(record) {
                for line in output::log_lines(record) {
                    out.line(&id, &line);
                }
            }
        }
        let pause = Duration::from_secs(1);
        let wait = match deadline {
            Some(d) if Instant::now() >= d => return Ok(()),
            Some(d) => pause.min(d.saturating_duration_since(Instant::now())),
            None => pause,
        };
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                Some(p) = rx.recv() => out.line(&p.id, &p.line),
                Some(_) = followers.join_next() => {}
                _ = tokio::time::sleep_until(until) => break,
            }
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

    #[test]
    fn server_sent_events_are_read_across_chunks() {
        let mut e = SseEvents::default();
        assert!(e.push(b"data: one\n").is_empty());
        let got = e.push(b"\n: keep-alive\n\ndata: a\ndata: b\n\nevent: end\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                (None, "one".to_string()),
                (None, "a\nb".to_string()),
                (Some("end".to_string()), "{}".to_string()),
            ]
        );
    }
}
