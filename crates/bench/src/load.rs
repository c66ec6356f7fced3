//! Closed-loop load: `clients` tasks each send requests back to back until `total` are done.

use hdrhistogram::Histogram;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latencies in microseconds.
    pub hist: Histogram<u64>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Requests that failed.
    pub errors: usize,
}

impl Measured {
    /// Median, ms.
    pub fn p50_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.5) as f64 / 1000.0
    }
    /// 99th percentile, ms.
    pub fn p99_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
    /// Completed requests per second.
    pub fn per_sec(&self) -> f64 {
        self.hist.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `op` `total` times over `clients` concurrent loops; an `Err` counts as an error.
pub async fn run<F, Fut>(clients: usize, total: usize, op: F) -> Measured
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let left = Arc::new(AtomicUsize::new(total));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let op = op.clone();
        let left = left.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("valid precision");
            let mut errors = 0;
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                let t = Instant::now();
                match op().await {
                    Ok(()) => hist
                        .record(t.elapsed().as_micros() as u64)
                        .expect("in range"),
                    Err(_) => errors += 1,
                }
            }
            (hist, errors)
        }));
    }
    let mut hist = Histogram::<u64>::new(3).expect("valid precision");
    let mut errors = 0;
    for t in tasks {
        if let Ok((h, e)) = t.await {
            hist.add(h).expect("same bounds");
            errors += e;
        }
    }
    Measured {
        hist,
        elapsed: start.elapsed(),
        errors,
    }
}

/// Creates (or replaces) the guest's Python `noop` action at `base`, which [`invoke_noop`]
/// invokes (standalone's well-known guest key).
pub async fn create_noop(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    create_noop_as(http, base, whisk_core::identity::GUEST_KEY).await
}

/// [`create_noop`] with the key `uuid:key`.
pub async fn create_noop_as(http: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<()> {
    let (u, k) = key.split_once(':').unwrap_or_default();
    let r = http
        .put(format!(
            "{base}/api/v1/namespaces/_/actions/noop?overwrite=true"
        ))
        .basic_auth(u, Some(k))
        .json(&serde_json::json!({"exec": {"kind": "python:3", "code": "def main(args):\n    return {}\n"}}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "PUT noop: {}", r.status());
    Ok(())
}

/// Warm blocking invokes of the guest's `noop` at `base` (`http[s]://host:port`) over `http`,
/// `clients` at a time, `requests` in all; any answer but 200 counts as an error.
pub async fn invoke_noop(
    http: reqwest::Client,
    base: &str,
    clients: usize,
    requests: usize,
) -> Measured {
    invoke_noop_as(
        http,
        base,
        whisk_core::identity::GUEST_KEY,
        clients,
        requests,
    )
    .await
}

/// [`invoke_noop`] with the key `uuid:key`.
pub async fn invoke_noop_as(
    http: reqwest::Client,
    base: &str,
    key: &str,
    clients: usize,
    requests: usize,
) -> Measured {
    let url = Arc::new(format!(
        "{base}/api/v1/namespaces/_/actions/noop?blocking=true&result=true"
    ));
    let (u, k) = key.split_once(':').unwrap_or_default();
    let (u, k) = (Arc::new(u.to_string()), Arc::new(k.to_string()));
    run(clients, requests, move || {
        let (http, url, u, k) = (http.clone(), url.clone(), u.clone(), k.clone());
        async move {
            let r = http
                .post(url.as_str())
                .basic_auth(u.as_str(), Some(k.as_str()))
                .json(&serde_json::json!({}))
                .send()
                .await?;
            anyhow::ensure!(r.status().as_u16() == 200, "{}", r.status());
            let _ = r.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Creates a Python container of 128 MB with `factory` (until it can take `/init`) and
/// destroys it, `total` times, `clients` at a time: the factory's creation rate. `tag` goes
/// into the containers' names.
pub async fn create_and_destroy(
    factory: Arc<dyn whisk_invoker::ContainerFactory>,
    tag: &str,
    clients: usize,
    total: usize,
) -> Measured {
    let n = Arc::new(AtomicUsize::new(0));
    let prefix = format!("whisk_bench_{tag}_{}", std::process::id());
    run(clients, total, move || {
        let (factory, i) = (factory.clone(), n.fetch_add(1, Ordering::Relaxed));
        let name = format!("{prefix}_{i}");
        async move {
            let c = factory
                .create(whisk_invoker::ContainerSpec {
                    name,
                    family: "python".into(),
                    image: None,
                    memory_mb: 128,
                    env: vec![],
                    peers_dir: None,
                })
                .await?;
            c.destroy().await;
            Ok(())
        }
    })
    .await
}
