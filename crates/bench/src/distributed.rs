//! Issue-5 scenarios: warm blocking `noop` invokes through Kafka (separate `whisk controller`
//! and `whisk invoker` processes, CouchDB store) at 1, 8 and 64 clients, side by side with
//! standalone in the same run, and the idle memory (RSS) of the controller and the invoker.
//! Needs the services of `scripts/services.sh up` (Kafka on 9092, CouchDB on 5984).

use crate::load::{self, Measured};
use crate::proc::{free_port, Proc};
use crate::table::{self, Row};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sizes of a run.
pub struct Plan {
    /// Requests per scenario.
    pub requests: usize,
}

fn whisk_bin() -> std::path::PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name("whisk"))
        .unwrap_or_else(|_| "whisk".into())
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn measure(base: &str, key: &str, clients: usize, requests: usize) -> Measured {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    load::invoke_noop_as(http, base, key, clients, requests).await
}

/// Runs the scenarios and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let api_port = free_port()?;
    let env = [
        ("WHISK_CONTROLLER__INVOCATIONS_PER_MINUTE", "100000000"),
        ("WHISK_CONTROLLER__CONCURRENT_INVOCATIONS", "100000"),
        ("WHISK_COUCHDB__DB_PREFIX", "whisk_bench_"),
        ("RUST_LOG", "warn"),
    ];
    let spawn = |args: &[String]| -> anyhow::Result<Proc> {
        Ok(Proc(
            Command::new(whisk_bin())
                .args(args)
                .envs(env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ))
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let controller = spawn(&s(&[
        "controller",
        "--kafka",
        "127.0.0.1:9092",
        "--couchdb",
        "http://127.0.0.1:5984",
        "--listen",
        &format!("127.0.0.1:{api_port}"),
        "--data-dir",
        &tmp.path().join("controller").display().to_string(),
    ]))?;
    let data = tmp.path().join("i0").display().to_string();
    let invoker = spawn(&s(&[
        "invoker",
        "--id",
        "0",
        "--kafka",
        "127.0.0.1:9092",
        "--couchdb",
        "http://127.0.0.1:5984",
        "--data-dir",
        &data,
    ]))?;
    let base = format!("http://127.0.0.1:{api_port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = http
            .get(format!("{base}/invokers/healthy/count"))
            .send()
            .await
            .ok();
        let n = match up {
            Some(r) => r.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if n.trim().trim_matches('"').parse::<u32>().unwrap_or(0) >= 1 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the distributed platform did not come up (is `scripts/services.sh up` running?)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = (rss_mb(controller.0.id()), rss_mb(invoker.0.id()));
    // A deployment has no well-known key: the operator's `whisk admin` gives the guest's.
    let out = Command::new(whisk_bin())
        .args([
            "admin",
            "user",
            "create",
            "guest",
            "--couchdb",
            "http://127.0.0.1:5984",
        ])
        .envs(env)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "whisk admin user create guest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)?.trim().to_string();
    load::create_noop_as(&http, &base, &key).await?;
    let guest = whisk_core::identity::GUEST_KEY;

    let dir = tempfile::tempdir()?;
    let mut settings = whisk_serve::Settings::load(None, &Default::default())?;
    settings.listen = "127.0.0.1:0".into();
    settings.data_dir = Some(dir.path().to_path_buf());
    settings.controller.invocations_per_minute = 100_000_000;
    settings.controller.concurrent_invocations = 100_000;
    let platform = whisk_serve::standalone(settings).await?;
    let platform_addr = platform
        .api_addr
        .ok_or_else(|| anyhow::anyhow!("standalone serves no API"))?;
    let sbase = format!("http://{}", platform_addr);
    load::create_noop(&http, &sbase).await?;

    let mut rows = vec![];
    for clients in [1usize, 8, 64] {
        let _ = measure(&base, &key, clients, clients * 10).await; // warm containers
        let d = measure(&base, &key, clients, plan.requests).await;
        let _ = measure(&sbase, guest, clients, clients * 10).await;
        let st = measure(&sbase, guest, clients, plan.requests).await;
        rows.push(Row::measured(
            "distributed: controller → Kafka → invoker (CouchDB store)",
            clients,
            &d,
        ));
        rows.push(Row::measured(
            "standalone: one process, in-process bus, embedded store",
            clients,
            &st,
        ));
    }
    platform.shutdown().await?;
    table::print(
        "Warm blocking noop invoke: distributed vs standalone",
        &rows,
    );
    println!(
        "\nidle RSS: controller {:.1} MB + invoker {:.1} MB = {:.1} MB",
        idle.0,
        idle.1,
        idle.0 + idle.1
    );
    drop(invoker);
    drop(controller);
    Ok(())
}
