//! Issue-4 scenarios: how fast a peer-map change reaches the files of 32 watching instances
//! (pushed, against the seed's 1 s polling implemented here), removal after a clean exit and
//! after a crash (lease lapse), peer messaging between two instances, and a gang of 64
//! seeing each other.

use crate::table::{self, Row};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_directory::{Peer, Registry, RegistryOptions};
use whisk_invoker::peers::{write_map, Peers};

const NS: &str = "bench";
const GROUP: &str = "g";

/// Sizes of a run.
pub struct Plan {
    /// Changes measured for the pushed path.
    pub changes: usize,
    /// Changes measured for the polling baseline (each costs about half a second).
    pub polled: usize,
    /// Watching instances (folders).
    pub watchers: usize,
    /// Crashes simulated.
    pub crashes: usize,
}

fn peer(id: &str, invoker: u32) -> Peer {
    Peer {
        id: id.into(),
        ip: "10.0.0.1".into(),
        port: 65432,
        invoker_id: invoker,
        ..Default::default()
    }
}

fn row(scenario: &str, clients: usize, hist: &Histogram<u64>, elapsed: Duration) -> Row {
    Row {
        scenario: scenario.into(),
        clients,
        requests: hist.len(),
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        per_sec: hist.len() as f64 / elapsed.as_secs_f64(),
        errors: 0,
    }
}

async fn folders(root: &Path, peers: &Arc<Peers>, n: usize) -> Vec<PathBuf> {
    let mut out = vec![];
    for i in 0..n {
        let f = root.join(format!("c{i}"));
        peers.attach(NS, GROUP, &f).await;
        out.push(f);
    }
    out
}

/// Where the containers' folders live: tmpfs when the host has it, as the invoker does.
fn folders_root() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?)
}

/// Pushed propagation: register/deregister → the file replaced in every folder.
async fn pushed(plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = folders_root()?;
    let registry = Registry::in_memory(RegistryOptions::default());
    // The host copy lives in the data dir (on disk), as in the invoker.
    let data = tempfile::tempdir()?;
    let peers = Peers::new(Arc::new(registry.clone()), 0, data.path().join("addrMap"));
    let _folders = folders(dir.path(), &peers, plan.watchers).await;
    let mut written = peers
        .written(NS, GROUP)
        .ok_or_else(|| anyhow::anyhow!("group not followed"))?;
    let mut add = Histogram::<u64>::new(3)?;
    let mut remove = Histogram::<u64>::new(3)?;
    let start = Instant::now();
    for i in 0..plan.changes {
        let t = Instant::now();
        let v = registry
            .register(NS, GROUP, peer(&format!("x{}", i % 64), 0))
            .await?;
        written.wait_for(|w| *w >= v).await?;
        add.record(t.elapsed().as_micros() as u64)?;
        let t = Instant::now();
        let d = registry
            .deregister(NS, GROUP, &format!("x{}", i % 64), "")
            .await?;
        written.wait_for(|w| *w >= d.version).await?;
        remove.record(t.elapsed().as_micros() as u64)?;
    }
    let elapsed = start.elapsed();
    rows.push(row(
        &format!(
            "register → file replaced in {} folders (pushed)",
            plan.watchers
        ),
        1,
        &add,
        elapsed,
    ));
    rows.push(row(
        &format!(
            "clean exit → removed from {} folders (pushed)",
            plan.watchers
        ),
        1,
        &remove,
        elapsed,
    ));
    Ok(())
}

/// The seed's design: every second, read the registry and rewrite the files.
async fn polled(plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = folders_root()?;
    let registry = Registry::in_memory(RegistryOptions::default());
    let folders: Vec<PathBuf> = (0..plan.watchers)
        .map(|i| dir.path().join(format!("c{i}")))
        .collect();
    let (tx, mut written) = tokio::sync::watch::channel(0u64);
    let poller = {
        let registry = registry.clone();
        let folders = folders.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Ok(map) = registry.snapshot(NS, GROUP).await {
                    for f in &folders {
                        write_map(f, &map).await;
                    }
                    tx.send_replace(map.version);
                }
            }
        })
    };
    let mut hist = Histogram::<u64>::new(3)?;
    let start = Instant::now();
    for i in 0..plan.polled {
        // Changes land at arbitrary points of the poll period.
        tokio::time::sleep(Duration::from_millis(37 * (i as u64 % 27))).await;
        let t = Instant::now();
        let v = registry
            .register(NS, GROUP, peer(&format!("y{i}"), 0))
            .await?;
        written.wait_for(|w| *w >= v).await?;
        hist.record(t.elapsed().as_micros() as u64)?;
    }
    poller.abort();
    rows.push(row(
        &format!(
            "register → file replaced in {} folders (1 s polling, the seed)",
            plan.watchers
        ),
        1,
        &hist,
        start.elapsed(),
    ));
    Ok(())
}

/// A crashed invoker: its lease lapses and its instances leave every folder.
async fn crashes(plan: &Plan, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let dir = folders_root()?;
    let options = RegistryOptions::default();
    let registry = Registry::in_memory(options);
    // The host copy lives in the data dir (on disk), as in the invoker.
    let data = tempfile::tempdir()?;
    let peers = Peers::new(Arc::new(registry.clone()), 0, data.path().join("addrMap"));
    let _folders = folders(dir.path(), &peers, plan.watchers).await;
    let mut written = peers
        .written(NS, GROUP)
        .ok_or_else(|| anyhow::anyhow!("group not followed"))?;
    let mut hist = Histogram::<u64>::new(3)?;
    let start = Instant::now();
    let lease = options.default_lease;
    for i in 0..plan.crashes {
        let invoker = 100 + i as u32;
        registry.heartbeat(invoker, lease).await?;
        let v = registry
            .register(NS, GROUP, peer(&format!("crash{i}"), invoker))
            .await?;
        written.wait_for(|w| *w >= v).await?;
        // The invoker heartbeats every lease/3 and dies at an arbitrary point between two.
        registry.heartbeat(invoker, lease).await?;
        tokio::time::sleep(lease / 3 * (i as u32 % 3) / 2).await;
        let crashed = Instant::now();
        written.wait_for(|w| *w > v).await?;
        hist.record(crashed.elapsed().as_micros() as u64)?;
    }
    rows.push(row(
        &format!(
            "crash → removed from {} folders (lease {} ms)",
            plan.watchers,
            lease.as_millis()
        ),
        1,
        &hist,
        start.elapsed(),
    ));
    Ok(())
}

/// Peer messaging and a gang of 64 through a real standalone platform.
async fn through_platform(rows: &mut Vec<Row>) -> anyhow::Result<Vec<String>> {
    let mut notes = vec![];
    let dir = tempfile::tempdir()?;
    let mut s = whisk_serve::Settings::load(None, &Default::default())?;
    s.listen = "127.0.0.1:0".into();
    s.data_dir = Some(dir.path().to_path_buf());
    s.invoker.user_memory_mb = 64 * 128 + 1024;
    let platform = whisk_serve::standalone(s).await?;
    let platform_addr = platform
        .api_addr
        .ok_or_else(|| anyhow::anyhow!("standalone serves no API"))?;
    let http = reqwest::Client::new();
    let base = format!("http://{}/api/v1/namespaces/_/actions", platform_addr);
    let (u, k) = whisk_core::identity::GUEST_KEY
        .split_once(':')
        .unwrap_or_default();
    for (name, code) in [
        ("pingpong", include_str!("../../../functions/pingpong.py")),
        ("gangtime", include_str!("../../../functions/gangtime.py")),
    ] {
        let r = http
            .put(format!("{base}/{name}?overwrite=true"))
            .basic_auth(u, Some(k))
            .json(&json!({"exec": {"kind": "python:3", "code": code}, "limits": {"memory": 128, "timeout": 120000}}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "PUT {name}: {}", r.status());
    }
    let r: Value = http
        .post(format!(
            "{base}/pingpong?blocking=true&result=true&instances=2"
        ))
        .basic_auth(u, Some(k))
        .json(&json!({"rounds": 5000, "mb": 512}))
        .send()
        .await?
        .json()
        .await?;
    let stats = r["results"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x.get("rtt_p50_us").is_some()))
        .cloned()
        .unwrap_or(r.clone());
    notes.push(format!(
        "peer messaging between two instances (whisk_peers, framed TCP): RTT p50 {:.1} µs, p99 {:.1} µs over {} round trips; bandwidth {:.2} GB/s ({} MB in 1 MB messages)",
        stats["rtt_p50_us"].as_f64().unwrap_or(f64::NAN),
        stats["rtt_p99_us"].as_f64().unwrap_or(f64::NAN),
        stats["rounds"],
        stats["bandwidth_gb_s"].as_f64().unwrap_or(f64::NAN),
        stats["bytes"].as_u64().unwrap_or(0) / (1024 * 1024),
    ));
    for attempt in ["cold", "warm"] {
        let mut hist = Histogram::<u64>::new(3)?;
        let t0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs_f64();
        let start = Instant::now();
        let r: Value = http
            .post(format!(
                "{base}/gangtime?blocking=true&result=true&instances=64"
            ))
            .basic_auth(u, Some(k))
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let seen: Vec<f64> = r["results"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["seen_at"].as_f64()).collect())
            .unwrap_or_default();
        anyhow::ensure!(seen.len() == 64, "gang of 64 failed: {r}");
        let last = seen.iter().cloned().fold(f64::MIN, f64::max);
        hist.record(((last - t0) * 1e6).max(0.0) as u64)?;
        rows.push(row(
            &format!("gang of 64: request → all 64 see each other ({attempt} containers)"),
            1,
            &hist,
            start.elapsed(),
        ));
    }
    platform.shutdown().await?;
    Ok(notes)
}

/// Runs every scenario and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let mut rows = vec![];
    pushed(plan, &mut rows).await?;
    crashes(plan, &mut rows).await?;
    polled(plan, &mut rows).await?;
    let notes = through_platform(&mut rows).await?;
    table::print("Peer maps: propagation to every instance's folder", &rows);
    println!();
    for n in notes {
        println!("{n}");
    }
    Ok(())
}
