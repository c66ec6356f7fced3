//! `whisk controller` and `whisk invoker`: one role per process, talking over Kafka, keeping
//! state in CouchDB (settings `bus = "kafka"`, `store = "couchdb"`, see
//! docs/configuration.md), until SIGINT/SIGTERM.

use std::collections::HashMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use whisk_serve::settings::{BusBackend, StoreBackend};
use whisk_serve::{roles, Settings};

/// Flags shared by the separate roles.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleArgs {
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Id of this controller or invoker.
    #[arg(long)]
    pub id: Option<u32>,
    /// REST API address (controller) [default: 127.0.0.1:3233].
    #[arg(long, short = 'l')]
    pub listen: Option<String>,
    /// Kafka brokers, host:port[,host:port] (selects the Kafka bus).
    #[arg(long)]
    pub kafka: Option<String>,
    /// CouchDB URL, e.g. http://127.0.0.1:5984 (selects the CouchDB store).
    #[arg(long)]
    pub couchdb: Option<String>,
    /// Directory service address (invoker).
    #[arg(long)]
    pub directory: Option<String>,
    /// Folder for peer maps and container folders.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn settings(args: &RoleArgs, invoker: bool) -> anyhow::Result<Settings> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut s = Settings::load(args.config.as_deref(), &env)?;
    if let Some(id) = args.id {
        if invoker {
            s.invoker.id = id;
        } else {
            s.controller.id = id;
        }
    }
    if let Some(l) = &args.listen {
        s.listen = l.clone();
    }
    if let Some(k) = &args.kafka {
        s.bus = BusBackend::Kafka;
        s.kafka.brokers = k.clone();
    }
    if let Some(c) = &args.couchdb {
        s.store = StoreBackend::Couchdb;
        s.couchdb.url = c.clone();
    }
    if args.directory.is_some() {
        s.directory_url = args.directory.clone();
    }
    if args.data_dir.is_some() {
        s.data_dir = args.data_dir.clone();
    }
    if s.bus == BusBackend::Memory {
        anyhow::bail!(
            "a separate {} needs the Kafka bus: give --kafka HOST:PORT or set bus = \"kafka\"",
            if invoker { "invoker" } else { "controller" }
        );
    }
    Ok(s)
}

fn until_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        crate::standalone::wait_for_signal().await;
        t.cancel();
    });
    token
}

/// `whisk controller`.
pub async fn controller(args: RoleArgs) -> anyhow::Result<()> {
    roles::run_controller(settings(&args, false)?, until_signal()).await
}

/// `whisk invoker`.
pub async fn invoker(args: RoleArgs) -> anyhow::Result<()> {
    roles::run_invoker(settings(&args, true)?, until_signal()).await
}
