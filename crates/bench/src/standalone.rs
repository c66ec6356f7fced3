//! Issue-3 scenarios against an in-process standalone platform: warm blocking invokes of
//! `noop` at 1 and 8 clients next to direct `POST /run` calls to an action proxy of the same
//! kind, and cold starts with and without a prewarmed stem.

use crate::load::{self, Measured};
use crate::table::{self, Row};
use anyhow::Context;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use whisk_invoker::container::ContainerSpec;
use whisk_serve::Settings;

pub(crate) const NOOP: &str = "def main(args):\n    return {}\n";

/// Sizes of a run.
pub struct Plan {
    /// Where actions run: `process` or `docker`.
    pub runtime: whisk_serve::settings::Runtime,
    /// Requests per warm scenario.
    pub requests: usize,
    /// Cold starts per cold scenario.
    pub cold: usize,
}

/// A standalone platform's settings for a bench: its API on a free loopback port, its data in
/// `dir`, and invocation limits out of the way.
pub(crate) fn base_settings(dir: &std::path::Path) -> anyhow::Result<Settings> {
    let mut s = Settings::load(None, &HashMap::new())?;
    s.listen = "127.0.0.1:0".into();
    s.data_dir = Some(dir.to_path_buf());
    s.controller.invocations_per_minute = 100_000_000;
    s.controller.concurrent_invocations = 100_000;
    Ok(s)
}

/// [`base_settings`] with actions on `runtime`, with or without prewarmed stems.
pub(crate) fn settings(
    dir: &std::path::Path,
    stems: bool,
    runtime: whisk_serve::settings::Runtime,
) -> anyhow::Result<Settings> {
    let mut s = base_settings(dir)?;
    s.runtime = runtime;
    if !stems {
        s.invoker.stem_cells.clear();
    }
    Ok(s)
}

/// Starts an in-process standalone platform; it and the address of its API.
pub(crate) async fn start(
    settings: Settings,
) -> anyhow::Result<(whisk_serve::Running, std::net::SocketAddr)> {
    let platform = whisk_serve::standalone(settings).await?;
    let addr = platform
        .api_addr
        .ok_or_else(|| anyhow::anyhow!("standalone serves no API"))?;
    Ok((platform, addr))
}

/// [`start`], with the client of the guest's actions and its `noop` action created.
pub(crate) async fn start_with_noop(
    settings: Settings,
) -> anyhow::Result<(whisk_serve::Running, std::net::SocketAddr, Arc<Api>)> {
    let (platform, addr) = start(settings).await?;
    let api = Arc::new(Api::new(addr));
    api.put("noop", NOOP).await?;
    Ok((platform, addr, api))
}

/// `total` blocking invokes of action `name` from `clients` concurrent clients.
pub(crate) async fn invokes(
    api: &Arc<Api>,
    clients: usize,
    total: usize,
    name: &'static str,
) -> Measured {
    let api = api.clone();
    load::run(clients, total, move || {
        let api = api.clone();
        async move { api.invoke(name).await }
    })
    .await
}

/// Warms containers for `clients` concurrent invokes of the noop (20 invokes a client).
pub(crate) async fn warm_up(api: &Arc<Api>, clients: usize) -> anyhow::Result<()> {
    let warm = invokes(api, clients, clients * 20, "noop").await;
    anyhow::ensure!(warm.errors == 0, "warm-up invokes failed");
    Ok(())
}

/// A client of the guest's actions (`http://HOST/api/v1/namespaces/_/actions`).
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Api {
    pub(crate) fn new(addr: std::net::SocketAddr) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()
            .expect("client");
        Self {
            http,
            base: format!("http://{addr}/api/v1/namespaces/_/actions"),
        }
    }
    /// Creates or replaces the Python action `name` with `code`.
    pub(crate) async fn put(&self, name: &str, code: &str) -> anyhow::Result<()> {
        let url = format!("{}/{name}?overwrite=true", self.base);
        let body = json!({"exec": {"kind": "python:3", "code": code}});
        self.put_json(&url, &body, name).await
    }

    /// PUTs `body` at `url` as the guest; it must succeed (`what` names it in the error).
    pub(crate) async fn put_json(&self, url: &str, body: &Value, what: &str) -> anyhow::Result<()> {
        let (u, k) = whisk_core::identity::GUEST_KEY
            .split_once(':')
            .context("key")?;
        let r = self
            .http
            .put(url)
            .basic_auth(u, Some(k))
            .json(body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "PUT {what}: {}", r.status());
        Ok(())
    }
    pub(crate) async fn invoke(&self, name: &str) -> anyhow::Result<()> {
        let (u, k) = whisk_core::identity::GUEST_KEY
            .split_once(':')
            .context("key")?;
        let r = self
            .http
            .post(format!("{}/{name}?blocking=true&result=true", self.base))
            .basic_auth(u, Some(k))
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(r.status().as_u16() == 200, "invoke {name}: {}", r.status());
        let _ = r.bytes().await?;
        Ok(())
    }
}

/// Runs every scenario and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (platform, _, api) = start_with_noop(settings(dir.path(), true, plan.runtime)?).await?;

    // Direct calls to an action proxy of the same kind, started by the same factory.
    let factory = whisk_serve::backends::open_factory(&settings(dir.path(), true, plan.runtime)?);
    let container = factory
        .create(ContainerSpec {
            name: format!("whisk_bench_direct_{}", std::process::id()),
            family: "python".into(),
            image: None,
            memory_mb: 256,
            env: vec![],
            peers_dir: None,
        })
        .await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    let proxy = format!("http://{}", container.addr());
    let init = http.post(format!("{proxy}/init")).json(&json!({"value": {"name": "noop", "main": "main", "code": NOOP, "binary": false, "env": {}}})).send().await?;
    anyhow::ensure!(
        init.status().is_success(),
        "direct /init: {}",
        init.status()
    );

    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for clients in [1usize, 8] {
        // Warm up enough containers for this concurrency.
        warm_up(&api, clients).await?;
        let direct = {
            let http = http.clone();
            let url = format!("{proxy}/run");
            load::run(clients, plan.requests, move || {
                let http = http.clone();
                let url = url.clone();
                async move {
                    let r = http.post(&url).json(&json!({"value": {}, "activation_id": "0", "namespace": "guest", "action_name": "/guest/noop", "deadline": "0", "transaction_id": "0"})).send().await?;
                    anyhow::ensure!(r.status().is_success());
                    let _ = r.bytes().await?;
                    Ok(())
                }
            })
            .await
        };
        let whisk = invokes(&api, clients, plan.requests, "noop").await;
        rows.push(Row::measured(
            "direct POST /run to a python proxy of the same runtime",
            clients,
            &direct,
        ));
        rows.push(Row::measured(
            "whisk blocking invoke of noop (warm)",
            clients,
            &whisk,
        ));
        ratios.push((
            clients,
            whisk.p50_ms() / direct.p50_ms().max(0.001),
            whisk.p50_ms() - direct.p50_ms(),
        ));
    }
    container.destroy().await;
    table::print(
        &format!(
            "Warm invoke vs direct /run (standalone, {:?} runtime)",
            plan.runtime
        ),
        &rows,
    );
    println!();
    for (c, ratio, overhead) in ratios {
        println!("clients {c}: whisk p50 / direct p50 = {ratio:.2}x, overhead {overhead:.3} ms");
    }

    // Cold starts: a new version per invoke defeats warm reuse.
    let mut cold_rows = Vec::new();
    {
        let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
        let start = std::time::Instant::now();
        for i in 0..plan.cold {
            api.put("cold", &format!("{NOOP}# {i}\n")).await?;
            tokio::time::sleep(Duration::from_millis(300)).await; // let the stem refill
            let t = std::time::Instant::now();
            api.invoke("cold").await?;
            hist.record(t.elapsed().as_micros() as u64)?;
        }
        let m = Measured {
            hist,
            elapsed: start.elapsed(),
            errors: 0,
        };
        cold_rows.push(Row::measured("cold start, prewarmed python stem", 1, &m));
    }
    platform.shutdown().await?;

    let dir2 = tempfile::tempdir()?;
    let (bare, bare_addr) = start(settings(dir2.path(), false, plan.runtime)?).await?;
    let api2 = Api::new(bare_addr);
    {
        let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
        let start = std::time::Instant::now();
        for i in 0..plan.cold {
            api2.put("cold", &format!("{NOOP}# {i}\n")).await?;
            let t = std::time::Instant::now();
            api2.invoke("cold").await?;
            hist.record(t.elapsed().as_micros() as u64)?;
        }
        let m = Measured {
            hist,
            elapsed: start.elapsed(),
            errors: 0,
        };
        cold_rows.push(Row::measured(
            "cold start, no prewarm (container + interpreter + init)",
            1,
            &m,
        ));
    }
    bare.shutdown().await?;
    table::print(
        &format!("Cold starts (standalone, {:?} runtime)", plan.runtime),
        &cold_rows,
    );
    Ok(())
}
