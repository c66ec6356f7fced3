//! The server subcommands — `whisk standalone|controller|invoker|directory|gateway`, plus
//! `certs` and the hidden `proxy` — with their own flags only (never the client's `--apihost`,
//! `--auth`, `-i`). Each role subcommand loads the settings (defaults, `--config` file,
//! `WHISK_*` variables), lets its flags override them, and runs its roles through
//! [`whisk_serve::serve`] until SIGINT/SIGTERM, then [`whisk_serve::Running::shutdown`].
//! Flags that mean the same for several roles are one `#[command(flatten)]` group each.

use crate::certs;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use whisk_directory::BackendKind;
use whisk_serve::settings::{BusBackend, Runtime, StoreBackend};
use whisk_serve::{Role, RoleSet, Running, Settings};

/// The server subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ServerCommand {
    /// Run the whole platform in one process (REST API on 127.0.0.1:3233).
    Standalone(StandaloneArgs),
    /// Run a controller alone (REST API; Kafka bus, CouchDB store).
    Controller(ControllerArgs),
    /// Run an invoker alone (`--id N` consumes topic invoker<N>).
    Invoker(InvokerArgs),
    /// Run the gateway (TLS, routing to controllers, limits).
    Gateway(GatewayArgs),
    /// Make a CA and server certificates (for the gateway and a private registry).
    Certs(certs::CertsArgs),
    /// Run the directory service alone (peer maps over gRPC).
    Directory(DirectoryArgs),
    /// Run the feed provider alone (alarms and Kafka feeds; Kafka bus, CouchDB store).
    Feeds(FeedsArgs),
    /// Run one action proxy (what the process runtime starts per container).
    #[command(hide = true)]
    Proxy(whisk_runtime::cli::ProxyArgs),
}

impl ServerCommand {
    /// True for the long-running roles (logging at `info`; SIGPIPE left ignored, as they
    /// write to pipes of action processes that may have exited).
    pub fn is_service(&self) -> bool {
        !matches!(self, ServerCommand::Certs(_) | ServerCommand::Proxy(_))
    }

    /// The `service.name` of the role's exported spans (unless `OTEL_SERVICE_NAME` says).
    pub fn service_name(&self) -> &'static str {
        match self {
            ServerCommand::Standalone(_) => "whisk-standalone",
            ServerCommand::Controller(_) => "whisk-controller",
            ServerCommand::Invoker(_) => "whisk-invoker",
            ServerCommand::Gateway(_) => "whisk-gateway",
            ServerCommand::Certs(_) => "whisk-certs",
            ServerCommand::Directory(_) => "whisk-directory",
            ServerCommand::Feeds(_) => "whisk-feeds",
            ServerCommand::Proxy(_) => "whisk-proxy",
        }
    }
}

/// `--config`: the settings file, for every role.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The settings: defaults, then the file, then the `WHISK_*` variables.
    fn load(&self) -> anyhow::Result<Settings> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Ok(Settings::load(self.config.as_deref(), &env)?)
    }
}

/// `--listen`: the REST API's address (standalone, controller).
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Address of the REST API [default: 127.0.0.1:3233].
    #[arg(long, short = 'l')]
    pub listen: Option<String>,
}

/// `--data-dir`: where a process keeps its state (standalone, controller, invoker).
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArgs {
    /// Folder for the database, the first keys, peer maps and container folders [default:
    /// $HOME/.whisk].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `--kafka`, `--couchdb`: the distributed backends (controller, invoker).
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Kafka brokers, host:port[,host:port] (selects the Kafka bus).
    #[arg(long)]
    pub kafka: Option<String>,
    /// CouchDB URL, e.g. http://127.0.0.1:5984 (selects the CouchDB store).
    #[arg(long)]
    pub couchdb: Option<String>,
}

/// `--directory`: the directory service an invoker registers with (standalone, invoker).
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryUrlArgs {
    /// Address (HOST:PORT) of the directory service to use instead of an in-process one.
    #[arg(long)]
    pub directory: Option<String>,
}

/// Flags of `whisk standalone` (each overrides the settings file and `WHISK_*` variables).
#[derive(Debug, Clone, clap::Args)]
pub struct StandaloneArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub data: DataDirArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
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
    pub tls: Option<SocketAddr>,
    #[command(flatten)]
    pub directory: DirectoryUrlArgs,
    /// Id of this platform's invoker (distinct per platform sharing one directory).
    #[arg(long)]
    pub invoker_id: Option<u32>,
}

/// Flags of `whisk controller`.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Id of this controller (its completions arrive on topic completed<ID>).
    #[arg(long)]
    pub id: Option<u32>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// Flags of `whisk feeds`.
#[derive(Debug, Clone, clap::Args)]
pub struct FeedsArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where trigger fires are posted: a controller's or the gateway's URL
    /// [default: http://127.0.0.1:3233].
    #[arg(long)]
    pub api_url: Option<String>,
    /// This provider's id in leases [default: random].
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

impl FeedsArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        self.cluster.apply(&mut s);
        set_some(&mut s.feeds.api_url, &self.api_url);
        set_some(&mut s.feeds.id, &self.id);
        Ok(s)
    }
}

/// Flags of `whisk invoker`.
#[derive(Debug, Clone, clap::Args)]
pub struct InvokerArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Id of this invoker (it consumes topic invoker<ID>).
    #[arg(long)]
    pub id: Option<u32>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub directory: DirectoryUrlArgs,
    #[command(flatten)]
    pub data: DataDirArgs,
}

/// Flags of `whisk directory` (they override the `directory` section of the settings). With
/// `--tls-ca`, `--tls-cert` and `--tls-key` (from `whisk certs`) it serves gRPC over TLS and
/// refuses every client without a certificate of that CA; without them it listens only on a
/// loopback address unless `--insecure`.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// gRPC listen address [default: 127.0.0.1:7070].
    #[arg(long, short = 'l')]
    pub listen: Option<SocketAddr>,
    /// Keep state in Redis at this URL (e.g. redis://127.0.0.1:6379) instead of in memory.
    #[arg(long)]
    pub redis: Option<String>,
    /// Lease of an invoker without heartbeats, ms [default: 300].
    #[arg(long)]
    pub lease_ms: Option<u64>,
    #[command(flatten)]
    pub config: ConfigArgs,
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

/// Flags of `whisk gateway` (they override the `gateway` section of the settings); SIGHUP
/// reloads the certificate.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// HTTP address, or `off` [default: 0.0.0.0:80].
    #[arg(long)]
    pub http: Option<String>,
    /// HTTPS address, or `off` [default: off].
    #[arg(long)]
    pub https: Option<String>,
    /// Certificate chain (PEM) [default: certs/out/domain.crt].
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) [default: certs/out/domain.key].
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A controller to route to (repeat for several) [default: http://127.0.0.1:3233].
    #[arg(long = "backend")]
    pub backends: Vec<String>,
}

/// Overrides `setting` with `flag` when the flag is given.
fn set<T: Clone>(setting: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *setting = v.clone();
    }
}

/// Overrides an optional `setting` with `flag` when the flag is given.
fn set_some<T: Clone>(setting: &mut Option<T>, flag: &Option<T>) {
    if flag.is_some() {
        *setting = flag.clone();
    }
}

impl ApiArgs {
    fn apply(&self, s: &mut Settings) {
        set(&mut s.listen, &self.listen);
    }
}

impl DataDirArgs {
    fn apply(&self, s: &mut Settings) {
        set_some(&mut s.data_dir, &self.data_dir);
    }
}

impl ClusterArgs {
    fn apply(&self, s: &mut Settings) {
        if let Some(k) = &self.kafka {
            s.bus = BusBackend::Kafka;
            s.kafka.brokers = k.clone();
        }
        if let Some(c) = &self.couchdb {
            s.store = StoreBackend::Couchdb;
            s.couchdb.url = c.clone();
        }
    }
}

impl DirectoryUrlArgs {
    fn apply(&self, s: &mut Settings) {
        set_some(&mut s.directory_url, &self.directory);
    }
}

impl StandaloneArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        self.api.apply(&mut s);
        self.data.apply(&mut s);
        self.directory.apply(&mut s);
        set_some(&mut s.python, &self.python);
        match self.runtime.as_deref() {
            None => {}
            Some("process") => s.runtime = Runtime::Process,
            Some("docker") => s.runtime = Runtime::Docker,
            Some(other) => anyhow::bail!("unknown runtime '{other}': use process or docker"),
        }
        set_some(&mut s.tls_listen, &self.tls);
        set(&mut s.invoker.id, &self.invoker_id);
        Ok(s)
    }
}

impl ControllerArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        self.api.apply(&mut s);
        self.cluster.apply(&mut s);
        self.data.apply(&mut s);
        set(&mut s.controller.id, &self.id);
        Ok(s)
    }
}

impl InvokerArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        self.cluster.apply(&mut s);
        self.directory.apply(&mut s);
        self.data.apply(&mut s);
        set(&mut s.invoker.id, &self.id);
        Ok(s)
    }
}

impl DirectoryArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        let cfg = &mut s.directory;
        set(&mut cfg.listen, &self.listen);
        if let Some(url) = &self.redis {
            cfg.backend = BackendKind::Redis;
            cfg.redis_url = url.clone();
        }
        set(&mut cfg.lease_ms, &self.lease_ms);
        set_some(&mut cfg.tls_ca, &self.tls_ca);
        set_some(&mut cfg.tls_cert, &self.tls_cert);
        set_some(&mut cfg.tls_key, &self.tls_key);
        cfg.insecure |= self.insecure;
        Ok(s)
    }
}

impl GatewayArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = self.config.load()?;
        let cfg = &mut s.gateway;
        if let Some(h) = &self.http {
            cfg.listen_http = addr_or_off(h)?;
        }
        if let Some(h) = &self.https {
            cfg.listen_https = addr_or_off(h)?;
        }
        set(&mut cfg.tls_cert, &self.cert);
        set(&mut cfg.tls_key, &self.key);
        if !self.backends.is_empty() {
            cfg.backends = self.backends.clone();
        }
        Ok(s)
    }
}

/// An address, or `None` for `off` (or nothing).
fn addr_or_off(v: &str) -> anyhow::Result<Option<SocketAddr>> {
    if v.is_empty() || v == "off" {
        return Ok(None);
    }
    Ok(Some(v.parse().map_err(|e| {
        anyhow::anyhow!("'{v}' is not an address: {e}")
    })?))
}

/// Runs a server subcommand.
pub async fn run(command: ServerCommand) -> anyhow::Result<()> {
    match command {
        ServerCommand::Standalone(args) => {
            let s = args.settings()?;
            let roles = RoleSet::standalone(&s);
            serve(s, roles, |running| {
                if let Some(api) = running.api_addr {
                    println!(
                        "whisk standalone: API on http://{api}  (guest key: {})",
                        whisk_core::identity::GUEST_KEY
                    );
                }
                if let Some(tls) = running.https_addr {
                    println!("  HTTPS through the gateway on https://{tls} (whisk -i, or --cacert <data-dir>/certs/ca.crt)");
                }
                println!("  try: whisk action create fib functions/fib.py && whisk action invoke fib -p number 20 -r");
            })
            .await
        }
        ServerCommand::Controller(args) => {
            let s = args.settings()?;
            let id = s.controller.id;
            serve(s, RoleSet::only(Role::Controller), |running| {
                if let Some(api) = running.api_addr {
                    println!("whisk controller {id}: API on http://{api}");
                }
            })
            .await
        }
        ServerCommand::Invoker(args) => {
            let s = args.settings()?;
            let id = s.invoker.id;
            serve(s, RoleSet::only(Role::Invoker), |_| {
                println!("whisk invoker {id}: consuming invoker{id}");
            })
            .await
        }
        ServerCommand::Directory(args) => {
            let s = args.settings()?;
            let (backend, tls) = (s.directory.backend, s.directory.tls_cert.is_some());
            serve(s, RoleSet::only(Role::Directory), |running| {
                if let Some(addr) = running.directory_addr {
                    let tls = if tls { "mutual TLS" } else { "no TLS" };
                    println!("whisk directory: gRPC on {addr} ({backend:?} backend, {tls})");
                }
            })
            .await
        }
        ServerCommand::Feeds(args) => {
            let s = args.settings()?;
            serve(s, RoleSet::only(Role::Feeds), |running| {
                if let Some(f) = &running.feeds {
                    println!("whisk feeds: provider {} up", f.id());
                }
            })
            .await
        }
        ServerCommand::Gateway(args) => {
            let s = args.settings()?;
            let g = &s.gateway;
            eprintln!(
                "whisk gateway: http {:?}, https {:?} -> {:?}",
                g.listen_http, g.listen_https, g.backends
            );
            serve(s, RoleSet::only(Role::Gateway), |_| {}).await
        }
        ServerCommand::Certs(args) => certs::run(args),
        ServerCommand::Proxy(args) => whisk_runtime::cli::run(args).await,
    }
}

/// Runs `roles` until SIGINT/SIGTERM (or until one fails), then shuts them down; `announce`
/// tells the operator where they listen once they are up.
async fn serve(
    settings: Settings,
    roles: RoleSet,
    announce: impl FnOnce(&Running),
) -> anyhow::Result<()> {
    let shutdown = whisk_serve::shutdown_on_signal()?;
    let running = whisk_serve::serve(settings, roles, shutdown).await?;
    for file in &running.new_key_files {
        println!(
            "whisk: a new key is in {} (readable by you alone)",
            file.display()
        );
    }
    announce(&running);
    running.stopped().await;
    eprintln!("whisk: shutting down");
    running.shutdown().await?;
    Ok(())
}
