//! `whisk namespace list`: the namespaces the key may use.

use crate::client::Client;
use crate::output::{self, print_json};
use reqwest::Method;

/// `whisk namespace ...`.
#[derive(Debug, clap::Subcommand)]
pub enum NamespaceCommand {
    /// List the namespaces of the current key.
    List,
}

/// Runs a namespace command.
pub async fn run(client: &Client, json_out: bool, cmd: NamespaceCommand) -> anyhow::Result<()> {
    match cmd {
        NamespaceCommand::List => {
            let url = client.url("", "", &[])?;
            let resp = client
                .send(Method::GET, url, &[], None)
                .await
                .map_err(|e| e.failure("Unable to obtain the list of available namespaces"))?;
            if json_out {
                print_json(&resp.body);
            } else {
                let list = resp.body.as_array().cloned().unwrap_or_default();
                print!("{}", output::namespace_table(&list));
            }
            Ok(())
        }
    }
}
