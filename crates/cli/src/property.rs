//! `whisk property set|unset|get`: reads and writes the wskprops file. The API host and key
//! are given with the global `--apihost` and `--auth` flags (as with `wsk`); without a value
//! those flags select the property to get or unset.

use crate::config::{self, GlobalArgs, Props, DEFAULT_APIHOST, DEFAULT_NAMESPACE};
use crate::error::Failure;
use std::path::Path;
use whisk_core::identity::GUEST_KEY;

/// `whisk property ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PropertyCommand {
    /// Set properties (`--apihost HOST`, `--auth KEY`, `--namespace NS`).
    Set {
        /// Default namespace.
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// API version.
        #[arg(long, value_name = "VERSION")]
        apiversion: Option<String>,
    },
    /// Unset properties (`--apihost`, `--auth`, `--namespace`).
    Unset {
        /// Unset the namespace.
        #[arg(long)]
        namespace: bool,
        /// Unset the API version.
        #[arg(long)]
        apiversion: bool,
    },
    /// Print properties (all of them without flags).
    Get {
        /// Print the namespace.
        #[arg(long)]
        namespace: bool,
        /// Print the API version.
        #[arg(long)]
        apiversion: bool,
        /// Print the CLI version.
        #[arg(long)]
        cliversion: bool,
        /// Print all properties.
        #[arg(long)]
        all: bool,
    },
}

/// Runs a property command against the file at `path` (already read into `props`).
pub fn run(
    cmd: PropertyCommand,
    global: &GlobalArgs,
    path: &Path,
    mut props: Props,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    match cmd {
        PropertyCommand::Set {
            namespace,
            apiversion,
        } => {
            let mut lines = Vec::new();
            if let Some(auth) = &global.auth {
                props.set("AUTH", non_empty(auth, "--auth")?);
                lines.push(
                    "ok: whisk auth set. Run 'whisk property get --auth' to see the new value."
                        .to_string(),
                );
            }
            if let Some(host) = &global.apihost {
                let host = non_empty(host, "--apihost")?;
                props.set("APIHOST", host);
                lines.push(format!("ok: whisk API host set to {host}"));
            }
            if let Some(v) = &apiversion {
                let v = non_empty(v, "--apiversion")?;
                props.set("APIVERSION", v);
                lines.push(format!("ok: whisk API version set to {v}"));
            }
            if let Some(ns) = &namespace {
                let ns = non_empty(ns, "--namespace")?;
                props.set("NAMESPACE", ns);
                lines.push(format!("ok: whisk namespace set to {ns}"));
            }
            if lines.is_empty() {
                return Err(Failure::usage(
                    "Nothing to set: give --apihost, --auth, --namespace or --apiversion.",
                )
                .into());
            }
            props.save(path)?;
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        PropertyCommand::Unset {
            namespace,
            apiversion,
        } => {
            let mut lines = Vec::new();
            for (chosen, key, label) in [
                (global.auth.is_some(), "AUTH", "whisk auth"),
                (global.apihost.is_some(), "APIHOST", "whisk API host"),
                (apiversion, "APIVERSION", "whisk API version"),
                (namespace, "NAMESPACE", "whisk namespace"),
            ] {
                if chosen {
                    props.unset(key);
                    lines.push(format!("ok: {label} unset."));
                }
            }
            if lines.is_empty() {
                return Err(Failure::usage(
                    "Nothing to unset: give --apihost, --auth, --namespace or --apiversion.",
                )
                .into());
            }
            props.save(path)?;
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        PropertyCommand::Get {
            namespace,
            apiversion,
            cliversion,
            all,
        } => {
            let (auth_flag, host_flag) = (global.auth.is_some(), global.apihost.is_some());
            let all = all || !(auth_flag || host_flag || namespace || apiversion || cliversion);
            let value = |var: &str, key: &str, default: &str| {
                config::lookup(None, var, key, &props, env).unwrap_or_else(|| default.to_string())
            };
            if all || auth_flag {
                println!("whisk auth\t\t{}", value("WHISK_AUTH", "AUTH", GUEST_KEY));
            }
            if all || host_flag {
                println!(
                    "whisk API host\t\t{}",
                    value("WHISK_APIHOST", "APIHOST", DEFAULT_APIHOST)
                );
            }
            if all || apiversion {
                println!(
                    "whisk API version\t{}",
                    value("WHISK_APIVERSION", "APIVERSION", "v1")
                );
            }
            if all || namespace {
                println!(
                    "whisk namespace\t\t{}",
                    value("WHISK_NAMESPACE", "NAMESPACE", DEFAULT_NAMESPACE)
                );
            }
            if all || cliversion {
                println!("whisk CLI version\t{}", env!("CARGO_PKG_VERSION"));
            }
            Ok(())
        }
    }
}

fn non_empty<'a>(v: &'a str, flag: &str) -> Result<&'a str, Failure> {
    if v.trim().is_empty() {
        Err(Failure::usage(format!("{flag} needs a value")))
    } else {
        Ok(v.trim())
    }
}
