//! Tracing's cost on the warm path: two `whisk standalone` processes side by side, one with
//! OpenTelemetry export off (no `OTEL_*` variables: the default) and one exporting every span
//! over OTLP/HTTP protobuf (the specification's default protocol) to a sink in this process
//! that answers 200 to each batch; warm blocking invokes of the Python noop against each, in
//! alternating rounds so that drift of the machine hits both alike, at 1 and 4 clients.
//! The sink counts the batches and bytes received (proof that spans were exported).

use crate::gateway::wait_up;
use crate::load::{self, Measured};
use crate::proc::{free_port, Proc};
use crate::table::{self, Row};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Sizes of a run.
pub struct Plan {
    /// Requests per scenario and concurrency (split over the rounds).
    pub requests: usize,
    /// Alternating rounds (off, exporting, off, ...).
    pub rounds: usize,
}

/// What the sink received.
#[derive(Default)]
struct Received {
    batches: AtomicU64,
    bytes: AtomicU64,
}

/// An OTLP/HTTP sink: HTTP/1.1 keep-alive, reads each request's body, answers 200.
async fn sink(listener: tokio::net::TcpListener, received: Arc<Received>) {
    while let Ok((conn, _)) = listener.accept().await {
        let received = received.clone();
        tokio::spawn(async move {
            let mut conn = BufReader::new(conn);
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    match conn.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if conn.read_exact(&mut body).await.is_err() {
                    return;
                }
                received.batches.fetch_add(1, Ordering::Relaxed);
                received.bytes.fetch_add(length as u64, Ordering::Relaxed);
                let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                if conn.get_mut().write_all(answer).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts `whisk standalone` on a free port with `env`; its base URL.
fn standalone(dir: &std::path::Path, env: &[(&str, String)]) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let whisk = std::env::current_exe()?.with_file_name("whisk");
    let mut cmd = Command::new(&whisk);
    cmd.args(["standalone", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok((Proc(cmd.spawn()?), format!("http://127.0.0.1:{port}")))
}

fn merge(into: &mut Option<Measured>, m: Measured) {
    match into {
        Some(all) => {
            all.hist.add(&m.hist).expect("same bounds");
            all.elapsed += m.elapsed;
            all.errors += m.errors;
        }
        None => *into = Some(m),
    }
}

/// Runs the scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let received = Arc::new(Received::default());
    tokio::spawn(sink(listener, received.clone()));
    let (_off, off) = standalone(&tmp.path().join("off"), &[])?;
    let exporting_env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_string()),
    ];
    let (_on, on) = standalone(&tmp.path().join("on"), &exporting_env)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    for base in [&off, &on] {
        wait_up(&http, &format!("{base}/api/v1")).await?;
        load::create_noop(&http, base).await?;
    }
    let rounds = plan.rounds.max(1);
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for clients in [1usize, 4] {
        for base in [&off, &on] {
            let _ = load::invoke_noop(http.clone(), base, clients, clients * 50).await;
        }
        let (mut m_off, mut m_on) = (None, None);
        for _ in 0..rounds {
            let n = (plan.requests / rounds).max(clients);
            merge(
                &mut m_off,
                load::invoke_noop(http.clone(), &off, clients, n).await,
            );
            merge(
                &mut m_on,
                load::invoke_noop(http.clone(), &on, clients, n).await,
            );
        }
        let (m_off, m_on) = (m_off.expect("a round"), m_on.expect("a round"));
        ratios.push((
            clients,
            m_on.p50_ms() / m_off.p50_ms(),
            m_on.p99_ms() / m_off.p99_ms(),
        ));
        rows.push(Row::measured("warm invoke, tracing off", clients, &m_off));
        rows.push(Row::measured(
            "warm invoke, tracing exporting (OTLP/HTTP protobuf)",
            clients,
            &m_on,
        ));
    }
    // The exporter's last batches: sent within its schedule delay (5 s) or at shutdown.
    drop(_on);
    table::print(
        "Warm invoke with OpenTelemetry export off vs exporting every span (standalone, process runtime)",
        &rows,
    );
    for (clients, p50, p99) in ratios {
        println!(
            "\nexporting / off at {clients} client(s): p50 {:+.1} %, p99 {:+.1} %",
            (p50 - 1.0) * 100.0,
            (p99 - 1.0) * 100.0
        );
    }
    println!(
        "\nthe sink received {} OTLP batches, {} bytes",
        received.batches.load(Ordering::Relaxed),
        received.bytes.load(Ordering::Relaxed)
    );
    Ok(())
}
