//! `whisk-bench`: runs the benchmark scenarios and prints Markdown tables.

use clap::Parser;

#[derive(Parser)]
#[command(about = "whisk-rs benchmarks")]
struct Args {
    /// Scenario set to run.
    #[arg(value_parser = ["standalone"], default_value = "standalone")]
    scenario: String,
    /// Requests per warm scenario.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Cold starts per cold scenario.
    #[arg(long, default_value_t = 30)]
    cold: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "machine: {} cores; {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::env::consts::ARCH
    );
    // One scenario set so far; `scenario` names it for the tables and future sets.
    whisk_bench::standalone::run(&whisk_bench::standalone::Plan {
        requests: args.requests,
        cold: args.cold,
    })
    .await
}
