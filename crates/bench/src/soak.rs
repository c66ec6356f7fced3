//! The soak: 100,000+ mixed activations through the distributed stack (a controller, two
//! invokers and a directory over Kafka, CouchDB and Redis), in rounds, with the resident
//! memory of every service sampled after each round. The mix, per 20 requests: 14 blocking
//! noops (200), 3 non-blocking noops (202, their records checked at the end), 2 blocking
//! invokes of an action that raises (502, an application error), 1 non-blocking gang of 4
//! (202, four records checked at the end). Prints one row per round (latency, throughput,
//! unexpected answers, RSS per service) and a summary: accepted, answered, records found,
//! lost (must be 0), and each service's RSS growth from the first quarter to the last.

use crate::stack::{Shape, Stack};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sizes of a soak.
pub struct Plan {
    /// Activations in all (a gang counts its four).
    pub activations: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Rounds (RSS is sampled after each).
    pub rounds: usize,
}

/// What a client does for request number `i`.
enum Op {
    Blocking,
    NonBlocking,
    Failing,
    Gang,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Blocking => "blocking noop",
            Op::NonBlocking => "non-blocking noop",
            Op::Failing => "blocking failing",
            Op::Gang => "gang of 4",
        }
    }
}

const GANG: usize = 4;

fn op(i: usize) -> Op {
    match i % 20 {
        0..=13 => Op::Blocking,
        14..=16 => Op::NonBlocking,
        17 | 18 => Op::Failing,
        _ => Op::Gang,
    }
}

/// Activations per 20 requests.
const PER_20: usize = 14 + 3 + 2 + GANG;

struct Client {
    http: reqwest::Client,
    base: String,
    user: String,
    pass: String,
}

impl Client {
    fn url(&self, action: &str, query: &str) -> String {
        format!("{}/api/v1/namespaces/_/actions/{action}?{query}", self.base)
    }

    async fn put(&self, name: &str, code: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .put(self.url(name, "overwrite=true"))
            .basic_auth(&self.user, Some(&self.pass))
            .json(&serde_json::json!({"exec": {"kind": "python:3", "code": code}}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "PUT {name}: {}", r.status());
        Ok(())
    }

    /// Sends request `i`; answers the activation ids to check later, or why the answer was
    /// not the expected one.
    async fn send(&self, i: usize) -> anyhow::Result<Vec<String>> {
        let (url, expect) = match op(i) {
            Op::Blocking => (self.url("noop", "blocking=true&result=true"), 200),
            Op::NonBlocking => (self.url("noop", ""), 202),
            Op::Failing => (self.url("fails", "blocking=true"), 502),
            Op::Gang => (self.url("noop", &format!("instances={GANG}")), 202),
        };
        let r = self
            .http
            .post(url)
            .basic_auth(&self.user, Some(&self.pass))
            .json(&serde_json::json!({}))
            .send()
            .await?;
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        anyhow::ensure!(status == expect, "{status} (expected {expect}): {body}");
        let ids = match op(i) {
            Op::NonBlocking => vec![body["activationId"].as_str().unwrap_or("").to_string()],
            Op::Gang => body["activationIds"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
            _ => vec![],
        };
        anyhow::ensure!(
            ids.iter().all(|id| !id.is_empty()),
            "an accepted activation without an id: {body}"
        );
        Ok(ids)
    }

    async fn has_record(&self, id: &str) -> bool {
        let url = format!("{}/api/v1/namespaces/_/activations/{id}", self.base);
        match self
            .http
            .get(url)
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16() == 200,
            Err(_) => false,
        }
    }
}

/// One round's figures.
struct Round {
    hist: Histogram<u64>,
    elapsed: Duration,
    unexpected: usize,
    /// The slowest request that was answered as expected: µs, and what it was.
    slowest: (u64, &'static str),
    rss: Vec<(String, f64)>,
}

/// Runs the soak and prints its tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let stack = Stack::start(&Shape {
        invokers: 2,
        directory: true,
    })
    .await?;
    let (user, pass) = stack.key.split_once(':').unwrap_or_default();
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(120))
            .build()?,
        base: stack.base.clone(),
        user: user.to_string(),
        pass: pass.to_string(),
    });
    client
        .put("noop", "def main(args):\n    return {}\n")
        .await?;
    client
        .put("fails", "def main(args):\n    raise Exception('soak')\n")
        .await?;
    let requests = plan.activations.div_ceil(PER_20) * 20;
    let per_round = requests.div_ceil(plan.rounds.max(1));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let first_unexpected = Arc::new(Mutex::new(None::<String>));
    let mut rounds = Vec::new();
    let mut sent = 0;
    while sent < requests {
        let n = per_round.min(requests - sent);
        let next = Arc::new(AtomicUsize::new(sent));
        let end = sent + n;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..plan.clients {
            let (client, next) = (client.clone(), next.clone());
            let (accepted, first_unexpected) = (accepted.clone(), first_unexpected.clone());
            tasks.push(tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("valid precision");
                let mut unexpected = 0;
                let mut slowest = (0u64, "");
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= end {
                        break;
                    }
                    let t = Instant::now();
                    match client.send(i).await {
                        Ok(ids) => {
                            let us = t.elapsed().as_micros() as u64;
                            hist.record(us).expect("in range");
                            if us > slowest.0 {
                                slowest = (us, op(i).name());
                            }
                            accepted.lock().expect("not poisoned").extend(ids);
                        }
                        Err(e) => {
                            unexpected += 1;
                            first_unexpected
                                .lock()
                                .expect("not poisoned")
                                .get_or_insert(e.to_string());
                        }
                    }
                }
                (hist, unexpected, slowest)
            }));
        }
        let mut hist = Histogram::<u64>::new(3).expect("valid precision");
        let mut unexpected = 0;
        let mut slowest = (0u64, "");
        for t in tasks {
            let (h, u, s) = t.await?;
            hist.add(h).expect("same bounds");
            unexpected += u;
            if s.0 > slowest.0 {
                slowest = s;
            }
        }
        let elapsed = start.elapsed();
        rounds.push(Round {
            hist,
            elapsed,
            unexpected,
            slowest,
            rss: stack.rss(),
        });
        sent = end;
        eprintln!("soak: {sent}/{requests} requests");
    }

    // Every accepted activation must end with a record (non-blocking ones are written after
    // the answer: give the last ones time).
    let ids = std::mem::take(&mut *accepted.lock().expect("not poisoned"));
    let mut missing: Vec<String> = ids.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !missing.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in missing.chunks(64) {
            let checks = chunk.iter().map(|id| {
                let client = client.clone();
                let id = id.clone();
                async move { (client.has_record(&id).await, id) }
            });
            for (found, id) in futures::future::join_all(checks).await {
                if !found {
                    still.push(id);
                }
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    print_rounds(&rounds, plan.clients);
    let answered: u64 = rounds.iter().map(|r| r.hist.len()).sum();
    let unexpected: usize = rounds.iter().map(|r| r.unexpected).sum();
    let activations = requests / 20 * PER_20;
    println!("\n### Soak summary\n");
    println!("| activations | requests answered as expected | unexpected answers | non-blocking and gang activations accepted | their records found | lost |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {activations} | {answered} | {unexpected} | {} | {} | {} |",
        ids.len(),
        ids.len() - missing.len(),
        missing.len()
    );
    if let Some(e) = first_unexpected.lock().expect("not poisoned").take() {
        println!("\nfirst unexpected answer: {e}");
    }
    print_growth(&rounds);
    anyhow::ensure!(
        missing.is_empty(),
        "{} accepted activations have no record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    Ok(())
}

fn print_rounds(rounds: &[Round], clients: usize) {
    let names: Vec<&str> = rounds
        .first()
        .map(|r| r.rss.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    println!("\n### Soak: mixed activations through the distributed stack, {clients} clients\n");
    let rss_heads: String = names.iter().map(|n| format!(" RSS {n} MB |")).collect();
    println!(
        "| round | requests | p50 ms | p99 ms | req/s | unexpected | slowest ms (what) |{rss_heads}"
    );
    println!(
        "|---:|---:|---:|---:|---:|---:|---|{}",
        "---:|".repeat(names.len())
    );
    for (i, r) in rounds.iter().enumerate() {
        let rss: String = r.rss.iter().map(|(_, mb)| format!(" {mb:.1} |")).collect();
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.0} | {} | {:.0} ({}) |{rss}",
            i + 1,
            r.hist.len(),
            r.hist.value_at_quantile(0.5) as f64 / 1000.0,
            r.hist.value_at_quantile(0.99) as f64 / 1000.0,
            r.hist.len() as f64 / r.elapsed.as_secs_f64(),
            r.unexpected,
            r.slowest.0 as f64 / 1000.0,
            r.slowest.1,
        );
    }
}

/// Each service's mean RSS over the first and the last quarter of the rounds.
fn print_growth(rounds: &[Round]) {
    let q = (rounds.len() / 4).max(1);
    let mean =
        |rs: &[Round], i: usize| rs.iter().map(|r| r.rss[i].1).sum::<f64>() / rs.len() as f64;
    let Some(first) = rounds.first() else { return };
    println!("\n| service | RSS first quarter MB | RSS last quarter MB | growth |");
    println!("|---|---:|---:|---:|");
    for (i, (name, _)) in first.rss.iter().enumerate() {
        let a = mean(&rounds[..q], i);
        let b = mean(&rounds[rounds.len() - q..], i);
        println!(
            "| {name} | {a:.1} | {b:.1} | {:+.1}% |",
            (b - a) / a * 100.0
        );
    }
}
