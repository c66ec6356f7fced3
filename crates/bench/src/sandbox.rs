//! Issue-13 scenarios of the process runtime's sandbox, each with and without it in one run:
//! cold start (no prewarm) and warm invoke through an in-process standalone platform, the
//! sandbox creation rate of the [`ProcessFactory`] itself, and container churn — 100 distinct
//! actions invoked round-robin through a memory budget that holds far fewer containers.

use crate::load::{self, Measured};
use crate::table::{self, Row};
use anyhow::Context;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use whisk_invoker::config::ProcessConfig;
use whisk_invoker::ProcessFactory;
use whisk_serve::Settings;

const NOOP: &str = "def main(args):\n    return {}\n";

/// Sizes of a run.
pub struct Plan {
    /// Warm invokes per mode.
    pub requests: usize,
    /// Cold starts per mode.
    pub cold: usize,
    /// Sandboxes created per mode (creation rate).
    pub creates: usize,
    /// Invokes of the churn scenario per mode.
    pub churn: usize,
}

fn settings(dir: &std::path::Path, sandboxed: bool, budget_mb: u64) -> anyhow::Result<Settings> {
    let mut s = Settings::load(None, &HashMap::new())?;
    s.runtime = whisk_serve::settings::Runtime::Process;
    s.listen = "127.0.0.1:0".into();
    s.data_dir = Some(dir.to_path_buf());
    s.controller.invocations_per_minute = 100_000_000;
    s.controller.concurrent_invocations = 100_000;
    s.invoker.stem_cells.clear();
    s.invoker.user_memory_mb = budget_mb;
    s.invoker.process.single_tenant = !sandboxed;
    Ok(s)
}

struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    key: String,
}

impl Api {
    fn new(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let (u, k) = whisk_core::identity::GUEST_KEY
            .split_once(':')
            .context("key")?;
        Ok(Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(256)
                .build()?,
            base: format!("http://{addr}/api/v1/namespaces/_/actions"),
            user: u.into(),
            key: k.into(),
        })
    }
    async fn put(&self, name: &str, code: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(format!("{}/{name}?overwrite=true", self.base))
            .basic_auth(&self.user, Some(&self.key))
            .json(&json!({"exec": {"kind": "python:3", "code": code}, "limits": {"memory": 128}}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "PUT {name}: {}", r.status());
        Ok(())
    }
    async fn invoke(&self, name: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/{name}?blocking=true&result=true", self.base))
            .basic_auth(&self.user, Some(&self.key))
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 200, "invoke {name}: {}", r.status());
        let _ = r.bytes().await?;
        Ok(())
    }
}

fn label(sandboxed: bool) -> &'static str {
    if sandboxed {
        "sandbox"
    } else {
        "no sandbox"
    }
}

/// Runs every scenario in both modes and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let mut platform_rows = Vec::new();
    let mut create_rows = Vec::new();
    let mut churn_rows = Vec::new();
    let mut p50 = HashMap::new();
    for sandboxed in [false, true] {
        let mode = label(sandboxed);
        // Cold start and warm invoke; budget for every container.
        let dir = tempfile::tempdir()?;
        let (platform, platform_addr) =
            crate::standalone::start(settings(dir.path(), sandboxed, 16384)?).await?;
        let api = Arc::new(Api::new(platform_addr)?);
        let cold = {
            let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
            let start = Instant::now();
            for i in 0..plan.cold {
                api.put("cold", &format!("{NOOP}# {i}\n")).await?;
                let t = Instant::now();
                api.invoke("cold").await?;
                hist.record(t.elapsed().as_micros() as u64)?;
            }
            Measured {
                hist,
                elapsed: start.elapsed(),
                errors: 0,
            }
        };
        api.put("noop", NOOP).await?;
        for _ in 0..20 {
            api.invoke("noop").await?;
        }
        let warm = {
            let api = api.clone();
            load::run(1, plan.requests, move || {
                let api = api.clone();
                async move { api.invoke("noop").await }
            })
            .await
        };
        anyhow::ensure!(warm.errors == 0, "warm invokes failed ({mode})");
        p50.insert((sandboxed, "cold"), cold.p50_ms());
        p50.insert((sandboxed, "warm"), warm.p50_ms());
        platform_rows.push(Row::measured(
            &format!("cold start, no prewarm ({mode})"),
            1,
            &cold,
        ));
        platform_rows.push(Row::measured(
            &format!("warm invoke of noop ({mode})"),
            1,
            &warm,
        ));
        platform.shutdown().await?;

        // Creation rate of the factory alone: create (ready to serve /init) and destroy.
        let factory = Arc::new(ProcessFactory::with_config(
            ProcessFactory::default_command(),
            vec![],
            &ProcessConfig {
                single_tenant: !sandboxed,
                ..ProcessConfig::default()
            },
        ));
        anyhow::ensure!(
            factory.sandboxed() == sandboxed,
            "this host cannot sandbox: see the invoker's log"
        );
        for clients in [1usize, 4] {
            let m = load::create_and_destroy(factory.clone(), "sbx", clients, plan.creates).await;
            create_rows.push(Row::measured(
                &format!("create + destroy a container ({mode})"),
                clients,
                &m,
            ));
        }
        drop(factory);

        // Churn: 100 actions of 128 MB through a budget of 16 containers (2 GB), 8 clients.
        let dir = tempfile::tempdir()?;
        let (platform, platform_addr) =
            crate::standalone::start(settings(dir.path(), sandboxed, 16 * 128)?).await?;
        let api = Arc::new(Api::new(platform_addr)?);
        for i in 0..100 {
            api.put(&format!("churn{i}"), NOOP).await?;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let churn = {
            let api = api.clone();
            load::run(8, plan.churn, move || {
                let api = api.clone();
                let i = next.fetch_add(1, Ordering::Relaxed) % 100;
                async move { api.invoke(&format!("churn{i}")).await }
            })
            .await
        };
        churn_rows.push(Row::measured(
            &format!("100 actions round-robin, budget of 16 containers ({mode})"),
            8,
            &churn,
        ));
        platform.shutdown().await?;
    }
    table::print(
        "Sandbox: cold start and warm invoke (standalone, process runtime)",
        &platform_rows,
    );
    println!();
    for what in ["cold", "warm"] {
        let d = p50[&(true, what)] - p50[&(false, what)];
        println!("{what} p50: sandbox adds {:.3} ms", d);
    }
    table::print("Sandbox creation rate (ProcessFactory)", &create_rows);
    table::print("Container churn", &churn_rows);
    Ok(())
}
