//! `whisk standalone`: every role in one process with the embedded backends, until SIGINT or
//! SIGTERM (which stop the API, kill every action process and flush the database).

use std::collections::HashMap;
use std::path::PathBuf;
use whisk_serve::{Settings, Standalone};

/// Flags of `whisk standalone` (each overrides the settings file and `WHISK_*` variables).
#[derive(Debug, Clone, clap::Args)]
pub struct StandaloneArgs {
    /// Address of the REST API [default: 127.0.0.1:3233].
    #[arg(long, short = 'l')]
    pub listen: Option<String>,
    /// Folder for the database and peer maps [default: $HOME/.whisk].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Python interpreter for actions.
    #[arg(long)]
    pub python: Option<String>,
    /// Where actions run: `process` (local processes) or `docker` (needs a Docker daemon and
    /// the image of deploy/images/build.sh).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Also serve HTTPS at this address through the gateway (certificate from the gateway
    /// settings, else one issued into <data-dir>/certs, CA <data-dir>/certs/ca.crt).
    #[arg(long, value_name = "ADDR")]
    pub tls: Option<std::net::SocketAddr>,
    /// Use the directory service at this address instead of the in-process one.
    #[arg(long)]
    pub directory: Option<String>,
    /// Id of this platform's invoker (distinct per platform sharing one directory).
    #[arg(long)]
    pub invoker_id: Option<u32>,
}

/// Runs the platform until SIGINT/SIGTERM.
pub async fn run(args: StandaloneArgs) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut settings = Settings::load(args.config.as_deref(), &env)?;
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if args.data_dir.is_some() {
        settings.data_dir = args.data_dir;
    }
    if args.python.is_some() {
        settings.python = args.python;
    }
    match args.runtime.as_deref() {
        None => {}
        Some("process") => settings.runtime = whisk_serve::settings::Runtime::Process,
        Some("docker") => settings.runtime = whisk_serve::settings::Runtime::Docker,
        Some(other) => anyhow::bail!("unknown runtime '{other}': use process or docker"),
    }
    if args.tls.is_some() {
        settings.tls_listen = args.tls;
    }
    if args.directory.is_some() {
        settings.directory_url = args.directory;
    }
    if let Some(id) = args.invoker_id {
        settings.invoker.id = id;
    }
    let platform = Standalone::start(settings).await?;
    println!(
        "whisk standalone: API on http://{}  (guest key: {})",
        platform.addr,
        whisk_core::identity::GUEST_KEY
    );
    if let Some(tls) = platform.tls_addr {
        println!("  HTTPS through the gateway on https://{tls} (whisk -i, or --cacert <data-dir>/certs/ca.crt)");
    }
    println!("  try: whisk action create fib functions/fib.py && whisk action invoke fib -p number 20 -r");
    wait_for_signal().await;
    eprintln!("whisk standalone: shutting down");
    platform.shutdown().await
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
