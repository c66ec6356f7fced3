//! Triggers against an in-process standalone platform (process runtime): a fire whose one
//! rule starts the noop, next to a direct non-blocking invoke of the noop, in one run (the
//! same platform, the same warm containers), at 1 and 4 clients. Each operation ends when the
//! action's activation record is stored (polled every millisecond), so both columns include
//! the same polling; the bare `POST` of a fire (answered once the trigger's own record is
//! stored) and a blocking invoke are shown for reference.
//!
//! "Started" rows time the moment the action's code runs: a `stamp` action returns
//! `time.time()` from its `main`, and the row is that instant minus the moment the client sent
//! the fire (or the invoke), both read from the same machine's clock (µs).

use crate::load;
use crate::rest::Rest;
use crate::standalone::{base_settings, start};
use crate::table::{self, Row};
use anyhow::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const NOOP: &str = "def main(args):\n    return {}\n";
const STAMP: &str = "import time\ndef main(args):\n    return {\"t\": time.time()}\n";

/// Microseconds since the epoch, now.
fn epoch_us() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// How long after `sent` (µs since the epoch) the stamp action of `record` started.
fn started_after(record: &Value, sent: f64) -> anyhow::Result<u64> {
    let t = record["response"]["result"]["t"]
        .as_f64()
        .context("the stamp action returned no time")?;
    Ok((t * 1e6 - sent).max(0.0) as u64)
}

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

    /// Fires `trigger` and waits for the record of the action its one rule started.
    async fn fired_action_record(&self, trigger: &str) -> anyhow::Result<Value> {
        let id = self.start(&format!("triggers/{trigger}")).await?;
        let record = self.record(&id).await?;
        let line: Value =
            serde_json::from_str(record["logs"][0].as_str().context("no rule line")?)?;
        let action = line["activationId"]
            .as_str()
            .context("the rule did not invoke")?;
        self.record(action).await
    }

    /// Fires `t` and waits for the record of the action its rule started.
    async fn fire_to_action(&self) -> anyhow::Result<()> {
        self.fired_action_record("t").await.map(drop)
    }

    /// Fires `t2` (whose rule starts the stamp action): how long until the action ran, µs.
    async fn fire_to_start(&self) -> anyhow::Result<u64> {
        let sent = epoch_us();
        started_after(&self.fired_action_record("t2").await?, sent)
    }

    /// Invokes the stamp action non-blocking: how long until it ran, µs.
    async fn invoke_to_start(&self) -> anyhow::Result<u64> {
        let sent = epoch_us();
        let id = self.start("actions/stamp").await?;
        started_after(&self.record(&id).await?, sent)
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

/// Runs `op` `total` times over `clients` loops like [`load::run`], recording the latency each
/// operation reports (µs) rather than its own duration.
async fn reported<F, Fut>(clients: usize, total: usize, rest: &Arc<Rest>, op: F) -> load::Measured
where
    F: Fn(Arc<Rest>) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = anyhow::Result<u64>> + Send,
{
    let hist = Arc::new(parking_lot::Mutex::new(
        hdrhistogram::Histogram::<u64>::new(3).expect("valid precision"),
    ));
    let (rest, h) = (rest.clone(), hist.clone());
    let m = load::run(clients, total, move || {
        let (rest, h) = (rest.clone(), h.clone());
        async move {
            let us = op(rest).await?;
            h.lock().record(us.max(1)).map_err(anyhow::Error::from)
        }
    })
    .await;
    let hist = hist.lock().clone();
    load::Measured { hist, ..m }
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
    let stamp = json!({"exec": {"kind": "python:3", "code": STAMP}});
    rest.put("actions/stamp", stamp).await?;
    rest.put("triggers/t2", json!({})).await?;
    rest.put(
        "rules/r2",
        json!({"trigger": "/_/t2", "action": "/_/stamp"}),
    )
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
        // Warm containers for the stamp action too (its rows must not time cold starts).
        let stamp_warm = reported(clients, clients * 20, &rest, |r| async move {
            r.invoke_to_start().await
        })
        .await;
        anyhow::ensure!(
            stamp_warm.errors == 0,
            "warm-up invokes of the stamp failed"
        );
        let fire_started = reported(clients, plan.requests, &rest, |r| async move {
            r.fire_to_start().await
        })
        .await;
        let invoke_started = reported(clients, plan.requests, &rest, |r| async move {
            r.invoke_to_start().await
        })
        .await;
        rows.push(Row::measured(
            "fire → the rule's action started",
            clients,
            &fire_started,
        ));
        rows.push(Row::measured(
            "non-blocking invoke → the action started",
            clients,
            &invoke_started,
        ));
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
