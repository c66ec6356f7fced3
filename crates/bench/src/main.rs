//! `whisk-bench`: runs the benchmark scenarios and prints Markdown tables.

use clap::Parser;

#[derive(Parser)]
#[command(about = "whisk-rs benchmarks")]
struct Args {
    /// Scenario sets to run: `standalone` (warm and cold invokes), `peers` (peer-map
    /// propagation), `distributed` (through Kafka; needs `scripts/services.sh up`); default:
    /// standalone and peers. `sandbox` (the process runtime with and without its sandbox),
    /// `docker` (the Docker runtime's container creation rate; needs a daemon and the action
    /// images). `feeds` (a Kafka message to its trigger's fire; needs `scripts/services.sh up`).
    /// `triggers` (a trigger fire through a rule to the noop vs a direct invoke).
    /// `packages` (invokes in a package and through a binding vs outside any package).
    /// `sequences` (a sequence of 10 noops vs 10 single invokes).
    /// `web` (web action requests through the gateway vs blocking invokes).
    /// `soak` (`--activations` mixed activations through the distributed stack, RSS sampled;
    /// needs `scripts/services.sh up`).
    /// `tracing` (warm invokes with OpenTelemetry export off vs exporting every span).
    #[arg(value_parser = ["standalone", "peers", "distributed", "gateway", "sandbox", "docker", "feeds", "triggers", "packages", "sequences", "web", "soak", "tracing"])]
    scenarios: Vec<String>,
    /// Runtime of the standalone scenarios: process, docker, or both (side by side).
    #[arg(long, default_value = "process", value_parser = ["process", "docker", "both"])]
    runtime: String,
    /// Requests per warm scenario.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Cold starts per cold scenario.
    #[arg(long, default_value_t = 30)]
    cold: usize,
    /// Peer-map changes measured on the pushed path.
    #[arg(long, default_value_t = 1000)]
    changes: usize,
    /// Activations of the soak.
    #[arg(long, default_value_t = 100_000)]
    activations: usize,
    /// Concurrent clients of the soak.
    #[arg(long, default_value_t = 16)]
    soak_clients: usize,
    /// Peer-map changes measured on the 1 s polling baseline.
    #[arg(long, default_value_t = 20)]
    polled: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "machine: {} cores, {}; whisk-bench {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::env::consts::ARCH,
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let all = args.scenarios.is_empty();
    let wants = |s: &str| {
        (all && !matches!(
            s,
            "distributed"
                | "gateway"
                | "sandbox"
                | "docker"
                | "feeds"
                | "triggers"
                | "packages"
                | "sequences"
                | "web"
                | "soak"
                | "tracing"
        )) || args.scenarios.iter().any(|x| x == s)
    };
    if wants("standalone") {
        use whisk_serve::settings::Runtime;
        let runtimes = match args.runtime.as_str() {
            "docker" => vec![Runtime::Docker],
            "both" => vec![Runtime::Process, Runtime::Docker],
            _ => vec![Runtime::Process],
        };
        for runtime in runtimes {
            whisk_bench::standalone::run(&whisk_bench::standalone::Plan {
                runtime,
                requests: args.requests,
                cold: args.cold,
            })
            .await?;
        }
    }
    if wants("peers") {
        whisk_bench::peers::run(&whisk_bench::peers::Plan {
            changes: args.changes,
            polled: args.polled,
            watchers: 32,
            crashes: 30,
        })
        .await?;
    }
    if wants("gateway") {
        whisk_bench::gateway::run(&whisk_bench::gateway::Plan {
            requests: args.requests,
            wrk_seconds: 5,
        })
        .await?;
    }
    if wants("sandbox") {
        whisk_bench::sandbox::run(&whisk_bench::sandbox::Plan {
            requests: args.requests,
            cold: args.cold,
            creates: 200,
            churn: 2000,
        })
        .await?;
    }
    if wants("docker") {
        whisk_bench::docker::run(&whisk_bench::docker::Plan { creates: 40 }).await?;
    }
    if wants("triggers") {
        whisk_bench::triggers::run(&whisk_bench::triggers::Plan {
            requests: (args.requests / 10).max(1),
        })
        .await?;
    }
    if wants("packages") {
        whisk_bench::packages::run(&whisk_bench::packages::Plan {
            requests: args.requests,
        })
        .await?;
    }
    if wants("sequences") {
        whisk_bench::sequences::run(&whisk_bench::sequences::Plan {
            requests: (args.requests / 10).max(1),
            length: 10,
        })
        .await?;
    }
    if wants("web") {
        whisk_bench::web::run(&whisk_bench::web::Plan {
            requests: args.requests,
        })
        .await?;
    }
    if wants("tracing") {
        whisk_bench::traces::run(&whisk_bench::traces::Plan {
            requests: args.requests,
            rounds: 5,
        })
        .await?;
    }
    if wants("distributed") {
        whisk_bench::distributed::run(&whisk_bench::distributed::Plan {
            requests: args.requests,
        })
        .await?;
    }
    if wants("soak") {
        whisk_bench::soak::run(&whisk_bench::soak::Plan {
            activations: args.activations,
            clients: args.soak_clients,
            rounds: 20,
        })
        .await?;
    }
    if wants("feeds") {
        whisk_bench::feeds::run(&whisk_bench::feeds::Plan {
            requests: args.requests.min(500),
        })
        .await?;
    }
    Ok(())
}
