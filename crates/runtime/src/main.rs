//! `whisk-proxy`: the action proxy binary. Parses flags, sets up logging to stderr and runs
//! [`whisk_runtime::cli::run`].

use clap::Parser;
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
    whisk_runtime::cli::init_tracing();
    whisk_runtime::cli::run(args.proxy).await
}
