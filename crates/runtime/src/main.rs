//! `whisk-proxy`: the action proxy binary. Parses flags, sets up logging to
//! stderr, starts the launcher, binds and serves until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use whisk_runtime::{config::default_python, serve, Family, Proxy, ProxyConfig};

/// OpenWhisk action proxy: serves /init and /run for Python or Node.js.
#[derive(Debug, Parser)]
#[command(name = "whisk-proxy", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WHISK_PROXY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Runtime family: python or nodejs.
    #[arg(long, env = "WHISK_RUNTIME_FAMILY", default_value = "python")]
    family: Family,
    /// Python interpreter [default: /usr/bin/python3 if present, else python3].
    #[arg(long, env = "WHISK_PYTHON")]
    python: Option<PathBuf>,
    /// Node.js interpreter.
    #[arg(long, env = "WHISK_NODE", default_value = "node")]
    node: PathBuf,
    /// Working directory [default: a fresh temporary directory, removed on exit].
    #[arg(long, env = "WHISK_PROXY_WORKDIR")]
    workdir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();

    let temp = match &args.workdir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("whisk-proxy-").tempdir()?),
    };
    let workdir = match (&args.workdir, &temp) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => unreachable!("a temp dir is made when no workdir is given"),
    };
    let config = ProxyConfig {
        family: args.family,
        python: args.python.unwrap_or_else(default_python),
        node: args.node,
        workdir,
    };
    let proxy = Proxy::start(config).context("starting the launcher")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, family = %args.family, "whisk-proxy listening");
    serve(listener, proxy, shutdown_signal()).await?;
    drop(temp);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
