//! `whisk rule create|update|enable|disable|status|get|delete|list`, with `wsk`'s arguments
//! (`create RULE TRIGGER ACTION`, names qualified as `/_/name` unless given with a namespace)
//! and what it prints: `ok: created rule R`, `ok: enabled rule R`, `ok: rule R is active`,
//! the `rules` table with each rule's status.

use crate::client::Client;
use crate::params::QualifiedName;
use crate::trigger::{delete, list, print_list, send_put, show, GetArgs, ListArgs};
use reqwest::Method;
use serde_json::{json, Value};

/// Flags of `rule create` and `rule update`.
#[derive(Debug, Clone, clap::Args)]
pub struct PutArgs {
    /// Rule name.
    pub name: String,
    /// The trigger it listens to.
    pub trigger: String,
    /// The action it invokes.
    pub action: String,
}

/// `whisk rule ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RuleCommand {
    /// Create a new rule.
    Create(PutArgs),
    /// Enable a rule.
    Enable {
        /// Rule name.
        name: String,
    },
    /// Disable a rule.
    Disable {
        /// Rule name.
        name: String,
    },
    /// Get a rule's status.
    Status {
        /// Rule name.
        name: String,
    },
    /// Update an existing rule, or create it.
    Update(PutArgs),
    /// Get a rule.
    Get(GetArgs),
    /// Delete a rule.
    Delete {
        /// Rule name.
        name: String,
        /// Disable the rule before deleting it.
        #[arg(long)]
        disable: bool,
    },
    /// List rules.
    List(ListArgs),
}

/// `name` fully qualified as wsk sends it in a rule: `/ns/name` (`ns` = `default_ns`, `_`
/// unless configured) unless it starts with a slash.
pub fn qualify(name: &str, default_ns: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{default_ns}/{name}")
    }
}

/// Runs a rule command.
pub async fn run(client: &Client, json_out: bool, cmd: RuleCommand) -> anyhow::Result<()> {
    let ns = client.settings().namespace.clone();
    match cmd {
        RuleCommand::Create(a) => put(client, json_out, &ns, a, false).await,
        RuleCommand::Update(a) => put(client, json_out, &ns, a, true).await,
        RuleCommand::Enable { name } => set_status(client, &ns, &name, "active").await,
        RuleCommand::Disable { name } => set_status(client, &ns, &name, "inactive").await,
        RuleCommand::Status { name } => {
            let qn = QualifiedName::parse(&name, &ns)?;
            let rule = get(client, &qn, "Unable to get status of rule").await?;
            let status = rule.get("status").and_then(Value::as_str).unwrap_or("");
            println!("ok: rule {} is {status}", qn.entity);
            Ok(())
        }
        RuleCommand::Get(a) => {
            let qn = QualifiedName::parse(&a.name, &ns)?;
            let rule = get(client, &qn, "Unable to get rule").await?;
            show(&rule, "rule", &qn, &a, json_out)
        }
        RuleCommand::Delete { name, disable } => {
            if disable {
                set_status(client, &ns, &name, "inactive").await?;
            }
            let qn = QualifiedName::parse(&name, &ns)?;
            delete(client, json_out, &qn, "rule").await
        }
        RuleCommand::List(a) => {
            let (namespace, mut rules) = list(client, &ns, "rules", &a).await?;
            // The list carries no status; wsk reads each rule for it.
            for rule in rules.iter_mut() {
                let name = rule.get("name").and_then(Value::as_str).unwrap_or("");
                let qn = QualifiedName {
                    namespace: namespace.clone(),
                    entity: name.to_string(),
                };
                let full = get(client, &qn, "Unable to get status of rule").await?;
                rule["status"] = full.get("status").cloned().unwrap_or(Value::Null);
            }
            print_list(rules, a.name_sort, json_out, rule_table);
            Ok(())
        }
    }
}

async fn get(client: &Client, qn: &QualifiedName, context: &str) -> anyhow::Result<Value> {
    let url = client.url(&qn.namespace, "rules", &[&qn.entity])?;
    let resp = client
        .send(Method::GET, url, &[], None)
        .await
        .map_err(|e| e.failure(&format!("{context} '{}'", qn.entity)))?;
    Ok(resp.body)
}

async fn put(
    client: &Client,
    json_out: bool,
    ns: &str,
    args: PutArgs,
    update: bool,
) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(&args.name, ns)?;
    let body = json!({
        "name": qn.entity,
        "trigger": qualify(&args.trigger, ns),
        "action": qualify(&args.action, ns),
    });
    send_put(client, json_out, &qn, "rule", &body, update).await
}

async fn set_status(client: &Client, ns: &str, name: &str, status: &str) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(name, ns)?;
    let (verb, done) = match status {
        "active" => ("enable", "enabled"),
        _ => ("disable", "disabled"),
    };
    let url = client.url(&qn.namespace, "rules", &[&qn.entity])?;
    client
        .send(Method::POST, url, &[], Some(&json!({ "status": status })))
        .await
        .map_err(|e| e.failure(&format!("Unable to {verb} rule '{}'", qn.entity)))?;
    println!("ok: {done} rule {}", qn.entity);
    Ok(())
}

/// `wsk rule list`: header `rules`, then `%-70s %-20s %s` (name, `private`, status).
pub fn rule_table(rules: &[Value]) -> String {
    let mut out = String::from("rules\n");
    for r in rules {
        let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let name = format!("/{}/{}", field("namespace"), field("name"));
        out.push_str(&format!(
            "{name:<70} {:<20} {}\n",
            "private",
            field("status")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_table_like_wsk() {
        assert_eq!(qualify("t", "_"), "/_/t");
        assert_eq!(qualify("pkg/a", "guest"), "/guest/pkg/a");
        assert_eq!(qualify("/ns/a", "_"), "/ns/a");
        let t = rule_table(&[json!({"namespace": "guest", "name": "r", "status": "active"})]);
        assert_eq!(
            t,
            format!("rules\n{:<70} {:<20} active\n", "/guest/r", "private")
        );
    }
}
