//! `whisk-proxy`: the action proxy binary. Parses flags, sets up logging to stderr and runs
//! [`whisk_runtime::cli::run`].

use clap::Parser;
use tracing_subscriber::EnvFilter;
use whisk_runtime::cli::ProxyArgs;

/// OpenWhisk action proxy: serves /init and /run for Python or Node.js.
#[derive(Debug, Parser)]
#[command(name = "whisk-proxy", version)]
struct Args {
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    whisk_runtime::cli::run(args.proxy).await
}
