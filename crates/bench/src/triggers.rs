//! Triggers against an in-process standalone platform (process runtime): a fire whose one
//! rule starts the noop, next to a direct non-blocking invoke of the noop, in one run (the
//! same platform, the same warm containers), at 1 and 4 clients. Each operation ends when the
//! action's activation record is stored (polled every millisecond), so both columns include
//! the same polling; the bare `POST` of a fire (answered once the trigger's own record is
//! stored) and a blocking invoke are shown for reference.

use crate::load;
use crate::rest::Rest;
use crate::standalone::{base_settings, start};
use crate::table::{self, Row};
use anyhow::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const NOOP: &str = "def main(args):\n    return {}\n";

/// Sizes of a run.
pub struct Plan {
    /// Operations per scenario.
    pub requests: usize,
}

impl Rest {
    /// POST `path`, which must answer 202 `{"activationId"}`; the id.
    async fn start(&self, path: &str) -> anyhow::Result<String> {
        let (s, v) = self.send(reqwest::Method::POST, path, json!({})).await?;
        anyhow::ensure!(s == 202, "POST {path}: {s} {v}");
        v["activationId"]
            .as_str()
            .map(str::to_string)
            .context("no activationId")
    }

    /// The record of activation `id`, polled every millisecond (10 s at most).
    async fn record(&self, id: &str) -> anyhow::Result<Value> {
        let path = format!("activations/{id}");
        for _ in 0..10_000 {
            let (s, v) = self.send(reqwest::Method::GET, &path, Value::Null).await?;
            if s == 200 {
                return Ok(v);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        anyhow::bail!("activation {id} has no record")
    }

    /// Fires `t` and waits for the record of the action its rule started.
    async fn fire_to_action(&self) -> anyhow::Result<()> {
        let id = self.start("triggers/t").await?;
        let trigger = self.record(&id).await?;
        let line: Value =
            serde_json::from_str(trigger["logs"][0].as_str().context("no rule line")?)?;
        let action = line["activationId"]
            .as_str()
            .context("the rule did not invoke")?;
        self.record(action).await.map(drop)
    }

    /// Invokes the noop and waits for its result.
    async fn invoke_blocking(&self) -> anyhow::Result<()> {
        let path = "actions/noop?blocking=true&result=true";
        let (s, v) = self.send(reqwest::Method::POST, path, json!({})).await?;
        anyhow::ensure!(s == 200, "POST {path}: {s} {v}");
        Ok(())
    }

    /// Invokes the noop non-blocking and waits for its record.
    async fn invoke_to_record(&self) -> anyhow::Result<()> {
        let id = self.start("actions/noop").await?;
        self.record(&id).await.map(drop)
    }
}

/// Runs the scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = base_settings(dir.path())?;
    s.runtime = whisk_serve::settings::Runtime::Process;
    s.controller.fires_per_minute = 100_000_000;
    let (platform, addr) = start(s).await?;
    let rest = Arc::new(Rest::guest(format!("http://{addr}/api/v1/namespaces/_"))?);
    let code = json!({"exec": {"kind": "python:3", "code": NOOP}});
    rest.put("actions/noop", code).await?;
    rest.put("triggers/t", json!({})).await?;
    rest.put("rules/r", json!({"trigger": "/_/t", "action": "/_/noop"}))
        .await?;

    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for clients in [1usize, 4] {
        macro_rules! measure {
            ($op:ident, $n:expr) => {{
                let rest = rest.clone();
                load::run(clients, $n, move || {
                    let rest = rest.clone();
                    async move { rest.$op().await }
                })
                .await
            }};
        }
        let warm = measure!(invoke_blocking, clients * 20);
        anyhow::ensure!(warm.errors == 0, "warm-up invokes failed");
        let fired = measure!(fire_to_action, plan.requests);
        let invoked = measure!(invoke_to_record, plan.requests);
        let post = {
            let rest = rest.clone();
            load::run(clients, plan.requests, move || {
                let rest = rest.clone();
                async move { rest.start("triggers/t").await.map(drop) }
            })
            .await
        };
        let blocking = measure!(invoke_blocking, plan.requests);
        rows.push(Row::measured(
            "fire → the rule's action record stored",
            clients,
            &fired,
        ));
        rows.push(Row::measured(
            "non-blocking invoke → its record stored",
            clients,
            &invoked,
        ));
        rows.push(Row::measured("POST fire (202)", clients, &post));
        rows.push(Row::measured(
            "blocking invoke (reference)",
            clients,
            &blocking,
        ));
        ratios.push((clients, fired.p50_ms() / invoked.p50_ms().max(0.001)));
    }
    platform.shutdown().await?;
    table::print(
        "Trigger fire → rule's action vs direct invoke (standalone, process runtime)",
        &rows,
    );
    println!();
    for (c, ratio) in ratios {
        println!("clients {c}: fire→action p50 / invoke→record p50 = {ratio:.2}x");
    }
    Ok(())
}
