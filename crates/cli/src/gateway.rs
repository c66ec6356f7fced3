//! `whisk gateway` (the nginx replacement in front of the controllers) and `whisk certs`
//! (a CA and server certificates for the gateway and a private registry, as the seed's
//! `certs/key_gen.sh` made them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use whisk_serve::Settings;

/// Flags of `whisk gateway` (they override the `gateway` section of the settings).
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
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

fn addr(v: &str) -> anyhow::Result<Option<SocketAddr>> {
    if v.is_empty() || v == "off" {
        return Ok(None);
    }
    Ok(Some(v.parse().map_err(|e| {
        anyhow::anyhow!("'{v}' is not an address: {e}")
    })?))
}

/// Serves until SIGINT/SIGTERM (SIGHUP reloads the certificate).
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut cfg = Settings::load(args.config.as_deref(), &env)?.gateway;
    if let Some(h) = &args.http {
        cfg.listen_http = addr(h)?;
    }
    if let Some(h) = &args.https {
        cfg.listen_https = addr(h)?;
    }
    if let Some(c) = args.cert {
        cfg.tls_cert = c;
    }
    if let Some(k) = args.key {
        cfg.tls_key = k;
    }
    if !args.backends.is_empty() {
        cfg.backends = args.backends;
    }
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::standalone::wait_for_signal().await;
        stop.cancel();
    });
    eprintln!(
        "whisk gateway: http {:?}, https {:?} -> {:?}",
        cfg.listen_http, cfg.listen_https, cfg.backends
    );
    whisk_gateway::run(cfg, shutdown).await?;
    Ok(())
}

/// Flags of `whisk certs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Output folder (ca.crt, ca.key, domain.crt, domain.key); an existing CA there is reused.
    #[arg(long, default_value = "certs/out")]
    pub out: PathBuf,
    /// Validity in days.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
    /// Common name of the CA.
    #[arg(long, default_value = "whisk-rs CA")]
    pub ca_name: String,
    /// Host names or IP addresses the server certificate is for (none: no server certificate).
    pub hosts: Vec<String>,
    /// File name of the server certificate: `<name>.crt`/`<name>.key` (`directory` for the
    /// directory service).
    #[arg(long, default_value = "domain")]
    pub name: String,
    /// Also issue a client certificate `<NAME>.crt`/`<NAME>.key` (repeatable): one per invoker
    /// that talks to a directory served with TLS.
    #[arg(long = "client", value_name = "NAME")]
    pub clients: Vec<String>,
    /// Also make `peers.key`, the cluster's peer key every invoker needs (kept if it exists).
    #[arg(long)]
    pub peer_key: bool,
}

/// Writes the CA, a server certificate for `hosts`, client certificates and the peer key.
pub fn certs(args: CertsArgs) -> anyhow::Result<()> {
    use whisk_gateway::certs::{write_bundle, write_named, write_peer_key, Role};
    if args.hosts.is_empty() && args.clients.is_empty() && !args.peer_key {
        anyhow::bail!("nothing to issue: give host names, --client NAME or --peer-key");
    }
    if !args.hosts.is_empty() {
        if args.name == "domain" {
            let paths = write_bundle(&args.out, &args.ca_name, &args.hosts, args.days)?;
            println!("{paths:#?}");
        } else {
            let (crt, key) = write_named(
                &args.out,
                &args.ca_name,
                &args.name,
                Role::Server,
                &args.hosts,
                args.days,
            )?;
            println!(
                "server certificate {} (key {})",
                crt.display(),
                key.display()
            );
        }
    }
    for name in &args.clients {
        let (crt, key) = write_named(&args.out, &args.ca_name, name, Role::Client, &[], args.days)?;
        println!(
            "client certificate {} (key {})",
            crt.display(),
            key.display()
        );
    }
    if args.peer_key {
        println!("peer key {}", write_peer_key(&args.out)?.display());
    }
    Ok(())
}
