//! Issue-7 scenarios: a warm invoke directly to the controller vs through `whisk gateway`
//! (HTTP and HTTPS, keep-alive) vs through nginx configured as OpenWhisk's edge
//! (`deploy/nginx/`), and proxied requests/s of `GET /api/v1` measured with wrk. Needs
//! `wrk` and `nginx` (Debian: `apt-get install wrk nginx-light`).

use crate::load::{self, Measured};
use crate::proc::{free_port, Proc};
use crate::standalone::{base_settings, start};
use crate::table::{self, Row};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// wrk runs per route.
const WRK_ROUNDS: usize = 3;

/// Sizes of a run.
pub struct Plan {
    /// Invokes per latency scenario.
    pub requests: usize,
    /// Seconds of each wrk run.
    pub wrk_seconds: u32,
}

/// Waits up to 30 s until `url` answers 2xx.
pub async fn wait_up(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn invokes(http: reqwest::Client, base: &str, requests: usize) -> Measured {
    load::invoke_noop(http, base, 1, requests).await
}

fn wrk(url: &str, seconds: u32) -> anyhow::Result<f64> {
    let out = Command::new("wrk")
        .args(["-t1", "-c32", &format!("-d{seconds}s"), url])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>())
        })
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk's output: {text}"))?
        .map_err(Into::into)
}

/// Runs the scenarios and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (platform, platform_addr) = start(base_settings(&tmp.path().join("data"))?).await?;
    let direct = format!("http://{}", platform_addr);
    let certs = tmp.path().join("certs");
    whisk_gateway::certs::write_bundle(&certs, "bench CA", &["127.0.0.1".to_string()], 30)?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.crt"))?)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .add_root_certificate(ca)
        .build()?;

    let (g_http, g_https, n_http, n_https) =
        (free_port()?, free_port()?, free_port()?, free_port()?);
    let whisk = std::env::current_exe()?.with_file_name("whisk");
    let gateway = Proc(
        Command::new(&whisk)
            .args([
                "gateway",
                "--http",
                &format!("127.0.0.1:{g_http}"),
                "--https",
                &format!("127.0.0.1:{g_https}"),
                "--backend",
                &direct,
            ])
            .arg("--cert")
            .arg(certs.join("domain.crt"))
            .arg("--key")
            .arg(certs.join("domain.key"))
            .env("WHISK_GATEWAY__ACCESS_LOG", "false")
            .env("WHISK_GATEWAY__WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/run.sh");
    let nginx = Command::new("bash")
        .arg(script)
        .args([
            "-p",
            &n_http.to_string(),
            "-s",
            &n_https.to_string(),
            "-w",
            "2",
            "-c",
        ])
        .arg(&certs)
        .arg(platform_addr.to_string())
        .env("NGINX_PREFIX", tmp.path().join("nginx"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Proc);
    let targets = [
        ("direct to the controller (HTTP)", direct.clone()),
        (
            "through whisk gateway (HTTP)",
            format!("http://127.0.0.1:{g_http}"),
        ),
        (
            "through whisk gateway (HTTPS)",
            format!("https://127.0.0.1:{g_https}"),
        ),
        ("through nginx (HTTP)", format!("http://127.0.0.1:{n_http}")),
        (
            "through nginx (HTTPS)",
            format!("https://127.0.0.1:{n_https}"),
        ),
    ];
    let nginx_ok = nginx.is_ok()
        && wait_up(&http, &format!("http://127.0.0.1:{n_http}/api/v1"))
            .await
            .is_ok();
    for (_, base) in &targets[..3] {
        wait_up(&http, &format!("{base}/api/v1")).await?;
    }
    load::create_noop(&http, &direct).await?;

    let mut rows = vec![];
    let mut wrk_targets = vec![];
    let mut direct_p50 = f64::NAN;
    for (i, (name, base)) in targets.iter().enumerate() {
        if i >= 3 && !nginx_ok {
            continue;
        }
        let _ = invokes(http.clone(), base, 100).await;
        let m = invokes(http.clone(), base, plan.requests).await;
        if i == 0 {
            direct_p50 = m.p50_ms();
        }
        rows.push(Row {
            scenario: format!("warm invoke {name}, +{:.3} ms p50", m.p50_ms() - direct_p50),
            clients: 1,
            requests: m.hist.len(),
            p50_ms: m.p50_ms(),
            p99_ms: m.p99_ms(),
            per_sec: m.per_sec(),
            errors: m.errors,
        });
        if !base.starts_with("https") {
            wrk_targets.push((name, format!("{base}/api/v1")));
        }
    }
    // The machine is shared (wrk, the controller and the proxy, and whatever else runs): every
    // route gets WRK_ROUNDS runs, interleaved, each round starting with another route, and the
    // median counts.
    let mut runs = vec![vec![]; wrk_targets.len()];
    for round in 0..WRK_ROUNDS {
        for k in 0..wrk_targets.len() {
            let t = (round + k) % wrk_targets.len();
            if let Ok(rps) = wrk(&wrk_targets[t].1, plan.wrk_seconds) {
                runs[t].push(rps);
            }
        }
    }
    let wrk_rows = wrk_targets.iter().zip(runs).map(|((name, _), mut rps)| {
        rps.sort_by(f64::total_cmp);
        let all: Vec<String> = rps.iter().map(|r| format!("{r:.0}")).collect();
        let median = rps.get(rps.len() / 2).copied().unwrap_or(f64::NAN);
        format!("| GET /api/v1 {name} | {median:.0} | {} |", all.join(", "))
    });
    table::print(
        "Warm invoke: direct vs gateway vs nginx (keep-alive, 1 client)",
        &rows,
    );
    println!(
        "\n### Proxied requests/s (wrk -t1 -c32 -d{}s, median of {WRK_ROUNDS} interleaved runs)\n\n\
         | route | req/s | runs |\n|---|---:|---|",
        plan.wrk_seconds
    );
    for r in wrk_rows {
        println!("{r}");
    }
    if !nginx_ok {
        println!("\n(nginx did not start: install nginx-light for the comparison)");
    }
    drop(gateway);
    platform.shutdown().await?;
    Ok(())
}
