//! `whisk directory`: the directory service alone (gRPC), for platforms whose invokers run in
//! separate processes or on separate hosts. Settings: the `directory` section of the settings
//! file and `WHISK_DIRECTORY__*` variables, overridden by the flags. With `--tls-ca`,
//! `--tls-cert` and `--tls-key` (from `whisk certs`) it serves gRPC over TLS and refuses every
//! client without a certificate of that CA; without them it listens only on a loopback address
//! unless `--insecure`.

use std::collections::HashMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use whisk_directory::{BackendKind, Registry};
use whisk_serve::Settings;

/// Flags of `whisk directory`.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// gRPC listen address [default: 127.0.0.1:7070].
    #[arg(long, short = 'l')]
    pub listen: Option<std::net::SocketAddr>,
    /// Keep state in Redis at this URL (e.g. redis://127.0.0.1:6379) instead of in memory.
    #[arg(long)]
    pub redis: Option<String>,
    /// Lease of an invoker without heartbeats, ms [default: 300].
    #[arg(long)]
    pub lease_ms: Option<u64>,
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// CA whose client certificates are accepted (ca.crt of `whisk certs`).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// This server's certificate chain (`whisk certs --name directory HOST...`).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// This server's private key.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Serve without TLS on a non-loopback address (anyone who reaches it can change and read
    /// every peer map).
    #[arg(long)]
    pub insecure: bool,
}

/// Serves until SIGINT/SIGTERM.
pub async fn run(args: DirectoryArgs) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut cfg = Settings::load(args.config.as_deref(), &env)?.directory;
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    if let Some(url) = args.redis {
        cfg.backend = BackendKind::Redis;
        cfg.redis_url = url;
    }
    if let Some(ms) = args.lease_ms {
        cfg.lease_ms = ms;
    }
    cfg.tls_ca = args.tls_ca.or(cfg.tls_ca);
    cfg.tls_cert = args.tls_cert.or(cfg.tls_cert);
    cfg.tls_key = args.tls_key.or(cfg.tls_key);
    cfg.insecure |= args.insecure;
    let tls = cfg.server_tls()?;
    let registry = Registry::open(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    println!(
        "whisk directory: gRPC on {} ({:?} backend, {})",
        listener.local_addr()?,
        cfg.backend,
        if tls.is_some() {
            "mutual TLS"
        } else {
            "no TLS"
        }
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::standalone::wait_for_signal().await;
        stop.cancel();
    });
    whisk_directory::serve_with(listener, registry, shutdown, tls.as_ref()).await?;
    Ok(())
}
