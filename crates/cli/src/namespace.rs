//! `whisk namespace list` (the namespaces the key may use) and `whisk namespace get` / `whisk
//! list` (every entity of the namespace: packages, actions, triggers and rules with their
//! status, as `wsk` prints them).

use crate::client::Client;
use crate::output::{self, print_json};
use reqwest::Method;
use serde_json::{json, Value};

/// `whisk namespace ...`.
#[derive(Debug, clap::Subcommand)]
pub enum NamespaceCommand {
    /// List the namespaces of the current key.
    List,
    /// Get triggers, actions, packages and rules in the namespace.
    Get(GetArgs),
}

/// Flags of `namespace get` and `list`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GetArgs {
    /// `/_` (the caller's namespace) is the only namespace accepted.
    pub namespace: Option<String>,
    /// Sort each list by name.
    #[arg(short = 'n', long = "name-sort")]
    pub name_sort: bool,
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
        NamespaceCommand::Get(args) => get(client, json_out, args).await,
    }
}

/// `wsk namespace get` and `wsk list`: `Entities in namespace: NS`, then the `packages`,
/// `actions`, `triggers` and `rules` tables (each rule read for its status).
pub async fn get(client: &Client, json_out: bool, args: GetArgs) -> anyhow::Result<()> {
    if args.namespace.as_deref().is_some_and(|n| n != "/_") {
        return Err(crate::error::Failure::usage("No arguments are required.").into());
    }
    let ns = client.settings().namespace.clone();
    let mut lists = Vec::new();
    for (collection, label) in [
        ("packages", "Packages"),
        ("actions", "Actions"),
        ("triggers", "Triggers"),
        ("rules", "Rules"),
    ] {
        let url = client.url(&ns, collection, &[])?;
        let query = [("limit", "0".to_string()), ("skip", "0".to_string())];
        let resp = client
            .send(Method::GET, url, &query, None)
            .await
            .map_err(|e| {
                e.failure(&format!(
                    "Unable to obtain the list of entities for namespace '{ns}' ({label})"
                ))
            })?;
        let mut list = resp.body.as_array().cloned().unwrap_or_default();
        crate::trigger::sort(&mut list, args.name_sort);
        lists.push(list);
    }
    for rule in lists[3].iter_mut() {
        let name = rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let url = client.url(&ns, "rules", &[&name])?;
        let got = client
            .send(Method::GET, url, &[], None)
            .await
            .map_err(|e| e.failure(&format!("Unable to get status of rule '{name}'")))?;
        if let (Some(r), Some(status)) = (rule.as_object_mut(), got.body.get("status")) {
            r.insert("status".into(), status.clone());
        }
    }
    if json_out {
        print_json(&json!({
            "packages": lists[0], "actions": lists[1], "triggers": lists[2], "rules": lists[3],
        }));
        return Ok(());
    }
    // As wsk: the namespace as configured, `_` shown as `default`.
    let shown = if ns == "_" { "default" } else { ns.as_str() };
    println!("Entities in namespace: {shown}");
    print!("{}", crate::package::package_table(&lists[0]));
    print!("{}", output::action_table(&lists[1]));
    print!("{}", crate::trigger::trigger_table(&lists[2]));
    print!("{}", crate::rule::rule_table(&lists[3]));
    Ok(())
}
