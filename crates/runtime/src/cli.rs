//! The proxy's command line (`whisk-proxy`, or `whisk proxy`): flags, workdir, start and
//! serve until SIGINT/SIGTERM.

use crate::config::{default_python, parse_launcher, SECRET_ENV};
use crate::{serve, Proxy, ProxyConfig};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use whisk_core::kinds::Launcher;

/// Flags of the action proxy.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long, env = "WHISK_PROXY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Runtime family (or kind) whose launcher to run: python, nodejs or native.
    #[arg(long, env = "WHISK_RUNTIME_FAMILY", default_value = "python", value_parser = parse_launcher)]
    pub family: Launcher,
    /// Python interpreter [default: /usr/bin/python3 if present, else python3].
    #[arg(long, env = "WHISK_PYTHON")]
    pub python: Option<PathBuf>,
    /// Node.js interpreter.
    #[arg(long, env = "WHISK_NODE", default_value = "node")]
    pub node: PathBuf,
    /// Working directory [default: a fresh temporary directory, removed on exit].
    #[arg(long, env = "WHISK_PROXY_WORKDIR")]
    pub workdir: Option<PathBuf>,
}

/// Logs to stderr — which is the action's log — at `WHISK_PROXY_LOG` (default `warn`; the
/// platform's `RUST_LOG` is deliberately not used, so that its level never floods activation
/// logs).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHISK_PROXY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

/// Runs the proxy until SIGINT/SIGTERM.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
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
        (None, None) => anyhow::bail!("no working directory"),
    };
    let lib = workdir.join("lib");
    std::fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    std::fs::write(lib.join("whisk_peers.py"), crate::PEERS_PY)
        .context("writing whisk_peers.py")?;
    let config = ProxyConfig {
        launcher: args.family,
        python: args.python.unwrap_or_else(default_python),
        node: args.node,
        workdir,
        secret: std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty()),
    };
    let proxy = Proxy::start(config).context("starting the launcher")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, launcher = %args.family, "whisk-proxy listening");
    serve(listener, proxy, shutdown_signal()).await?;
    drop(temp);
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
