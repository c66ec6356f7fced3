//! Prints result rows as an aligned table (also valid Markdown).

/// One row of results.
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests completed.
    pub requests: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Throughput.
    pub per_sec: f64,
    /// Failed requests.
    pub errors: usize,
}

impl Row {
    /// A row of what a closed-loop run measured.
    pub fn measured(scenario: &str, clients: usize, m: &crate::load::Measured) -> Row {
        Row {
            scenario: scenario.into(),
            clients,
            requests: m.hist.len(),
            p50_ms: m.p50_ms(),
            p99_ms: m.p99_ms(),
            per_sec: m.per_sec(),
            errors: m.errors,
        }
    }
}

/// Prints `rows` under a Markdown header.
pub fn print(title: &str, rows: &[Row]) {
    println!("\n### {title}\n");
    println!("| scenario | clients | requests | p50 ms | p99 ms | req/s | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.0} | {} |",
            r.scenario, r.clients, r.requests, r.p50_ms, r.p99_ms, r.per_sec, r.errors
        );
    }
}
