//! `whisk gateway` (the nginx replacement in front of the controllers) and `whisk certs`
//! (a CA and server certificates for the gateway and a private registry, as the seed's
//! `certs/key_gen.sh` made them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use whisk_standalone::Settings;

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
    /// Host names or IP addresses the server certificate is for.
    #[arg(required = true)]
    pub hosts: Vec<String>,
}

/// Writes the CA and a server certificate for `hosts`.
pub fn certs(args: CertsArgs) -> anyhow::Result<()> {
    let paths =
        whisk_gateway::certs::write_bundle(&args.out, &args.ca_name, &args.hosts, args.days)?;
    println!("{paths:#?}");
    Ok(())
}
