//! `whisk certs`: a CA, server and client certificates and the peer key — for the gateway, the
//! directory's mutual TLS and a private registry, as the seed's `certs/key_gen.sh` made them.

use std::path::PathBuf;

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
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
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
