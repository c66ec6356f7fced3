//! `whisk action invoke`: the request (`?blocking=..&result=..[&instances=N]`, parameters as
//! the body) and what `wsk` prints for each answer: `ok: invoked /NS/NAME with id ID` (the
//! seed's scripts take word 5), the record or result of a blocking call, the "not yet
//! finished" note (exit 202) and failed activations on stderr (exit 246).

use crate::action_body::ParamArgs;
use crate::client::{Client, Response};
use crate::error::{http_exit_code, ApiError, Failure};
use crate::output::{eprint_json, print_json};
use crate::params::{self, QualifiedName};
use reqwest::Method;
use serde_json::Value;

/// Flags of `action invoke`.
#[derive(Debug, Clone, clap::Args)]
pub struct InvokeArgs {
    /// Action name.
    pub name: String,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Blocking invoke.
    #[arg(short = 'b', long)]
    pub blocking: bool,
    /// Blocking invoke; show only the activation result (unless there is a failure).
    #[arg(short = 'r', long)]
    pub result: bool,
    /// Start N activations at once (a gang invocation).
    #[arg(long, value_name = "N")]
    pub instances: Option<u32>,
}

/// `action invoke`: prints what `wsk` prints for each kind of answer.
pub async fn invoke(
    client: &Client,
    json_out: bool,
    ns: &str,
    args: InvokeArgs,
) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(&args.name, ns)?;
    let body = Value::Object(params::collect(
        &args.params.param,
        args.params.param_file.as_deref(),
        "param",
    )?);
    let blocking = args.blocking || args.result;
    let mut query = vec![
        ("blocking", blocking.to_string()),
        ("result", args.result.to_string()),
    ];
    if let Some(n) = args.instances {
        query.push(("instances", n.to_string()));
    }
    let url = client.url(&qn.namespace, "actions", &qn.segments())?;
    let who = qn.to_string();
    match client.send(Method::POST, url, &query, Some(&body)).await {
        Ok(resp) if json_out => {
            print_json(&resp.body);
            if blocking && resp.status == 202 {
                return Err(Failure::silent(http_exit_code(202)).into());
            }
            Ok(())
        }
        Ok(resp) => print_invoked(&who, &resp, blocking, args.result),
        Err(ApiError::Http {
            status: 502,
            body: Some(body),
            ..
        }) if blocking && is_activation_like(&body) => {
            // Application or developer error: wsk prints the record (or result) on stderr.
            if json_out {
                print_json(&body);
            } else {
                if !args.result {
                    let id = body
                        .get("activationId")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    eprintln!("ok: invoked {who} with id {id}");
                }
                eprint_json(&body);
            }
            Err(Failure::silent(http_exit_code(502)).into())
        }
        Err(e) => Err(e
            .failure(&format!("Unable to invoke action '{}'", qn.entity))
            .into()),
    }
}

fn is_activation_like(body: &Value) -> bool {
    match body {
        Value::Object(o) => {
            o.contains_key("activationId") || !(o.contains_key("error") && o.contains_key("code"))
        }
        _ => false,
    }
}

fn print_invoked(who: &str, resp: &Response, blocking: bool, result: bool) -> anyhow::Result<()> {
    let body = &resp.body;
    let id_of = |v: &Value| {
        v.get("activationId")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // Gang invocations answer several ids or records.
    if let Some(ids) = body.get("activationIds").and_then(Value::as_array) {
        for id in ids {
            println!("ok: invoked {who} with id {}", id.as_str().unwrap_or(""));
        }
        return Ok(());
    }
    if let Some(records) = body.get("activations").and_then(Value::as_array) {
        for record in records {
            if result {
                print_json(
                    record
                        .get("response")
                        .and_then(|r| r.get("result"))
                        .unwrap_or(record),
                );
            } else {
                println!(
                    "ok: invoked {who} with id {}",
                    id_of(record).unwrap_or_default()
                );
                print_json(record);
            }
        }
        return Ok(());
    }
    let id = id_of(body)
        .or_else(|| resp.activation_id.clone())
        .unwrap_or_default();
    if blocking && resp.status == 202 {
        eprintln!("ok: invoked {who}, but the request has not yet finished, with id {id}");
        return Err(Failure::silent(http_exit_code(202)).into());
    }
    if !result {
        println!("ok: invoked {who} with id {id}");
    }
    if blocking {
        print_json(body);
    }
    Ok(())
}
