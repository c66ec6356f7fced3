//! `whisk action create|update|get|delete|list` (and dispatch of `invoke`), printing the
//! `ok:` lines, JSON and tables `wsk` prints. Request bodies are built in
//! [`crate::action_body`]; invocation lives in [`crate::invoke`].

pub use crate::action_body::{CreateArgs, ParamArgs};
pub use crate::invoke::InvokeArgs;

use crate::action_body::{action_body, merge_existing_annotations};
use crate::client::Client;
use crate::error::Failure;
use crate::output::{self, annotation, print_json};
use crate::params::QualifiedName;
use base64::Engine;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

/// Flags of `action get`.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// Action name.
    pub name: String,
    /// Summarize the action's details.
    #[arg(short = 's', long)]
    pub summary: bool,
    /// Print the action's URL.
    #[arg(short = 'r', long)]
    pub url: bool,
    /// Save the action's code to a file named after the action.
    #[arg(long)]
    pub save: bool,
    /// Save the action's code to FILE.
    #[arg(long = "save-as", value_name = "FILE")]
    pub save_as: Option<PathBuf>,
}

/// Flags of `action list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// `/namespace` to list, or a package whose actions to list.
    pub target: Option<String>,
    /// Only return LIMIT actions.
    #[arg(short = 'l', long, default_value_t = 30)]
    pub limit: u32,
    /// Skip the first SKIP actions.
    #[arg(short = 's', long, default_value_t = 0)]
    pub skip: u32,
    /// Sort by name.
    #[arg(short = 'n', long = "name-sort")]
    pub name_sort: bool,
}

/// `whisk action ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ActionCommand {
    /// Create a new action.
    Create(Box<CreateArgs>),
    /// Update an existing action, or create it.
    Update(Box<CreateArgs>),
    /// Invoke an action.
    Invoke(InvokeArgs),
    /// Get an action.
    Get(GetArgs),
    /// Delete an action.
    Delete {
        /// Action name.
        name: String,
    },
    /// List actions.
    List(ListArgs),
}

/// Runs an action command.
pub async fn run(client: &Client, json_out: bool, cmd: ActionCommand) -> anyhow::Result<()> {
    let ns = client.settings().namespace.clone();
    match cmd {
        ActionCommand::Create(a) => put(client, json_out, &ns, *a, false).await,
        ActionCommand::Update(a) => put(client, json_out, &ns, *a, true).await,
        ActionCommand::Invoke(a) => crate::invoke::invoke(client, json_out, &ns, a).await,
        ActionCommand::Get(a) => get(client, json_out, &ns, a).await,
        ActionCommand::Delete { name } => {
            let qn = QualifiedName::parse(&name, &ns)?;
            let url = client.url(&qn.namespace, "actions", &qn.segments())?;
            let resp = client
                .send(Method::DELETE, url, &[], None)
                .await
                .map_err(|e| e.failure(&format!("Unable to delete action '{}'", qn.entity)))?;
            if json_out {
                print_json(&resp.body);
            } else {
                println!("ok: deleted action {}", qn.entity);
            }
            Ok(())
        }
        ActionCommand::List(a) => list(client, json_out, &ns, a).await,
    }
}

async fn put(
    client: &Client,
    json_out: bool,
    ns: &str,
    args: CreateArgs,
    update: bool,
) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(&args.name, ns)?;
    let mut body = action_body(&args, update)?;
    let verb = if update { "update" } else { "create" };
    let url = client.url(&qn.namespace, "actions", &qn.segments())?;
    if update && args.web.is_some() && args.annotation.is_empty() && args.annotation_file.is_none()
    {
        // Like wsk: `--web` alone keeps the action's other annotations.
        if let Ok(existing) = client.send(Method::GET, url.clone(), &[], None).await {
            merge_existing_annotations(&mut body, &existing.body);
        }
    }
    let query = [("overwrite", update.to_string())];
    let resp = client
        .send(Method::PUT, url, &query, Some(&body))
        .await
        .map_err(|e| e.failure(&format!("Unable to {verb} action '{}'", qn.entity)))?;
    if json_out {
        print_json(&resp.body);
    } else {
        println!("ok: {verb}d action {}", qn.entity);
    }
    Ok(())
}

async fn get(client: &Client, json_out: bool, ns: &str, args: GetArgs) -> anyhow::Result<()> {
    let qn = QualifiedName::parse(&args.name, ns)?;
    let url = client.url(&qn.namespace, "actions", &qn.segments())?;
    let resp = client
        .send(Method::GET, url, &[], None)
        .await
        .map_err(|e| e.failure(&format!("Unable to get action '{}'", qn.entity)))?;
    let action = &resp.body;
    if json_out {
        print_json(action);
    } else if args.url {
        println!("ok: got action {}", qn.entity);
        println!("{}", action_url(&client.settings().apihost, action));
    } else if args.summary {
        let ns = action
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(&qn.namespace);
        let name = action
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&qn.entity);
        println!("action /{ns}/{name}");
        let keys: Vec<&str> = action
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("key").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            println!("   (parameters: none defined)");
        } else {
            println!("   (parameters: {})", keys.join(", "));
        }
    } else if args.save || args.save_as.is_some() {
        save_code(action, &qn, args.save_as)?;
    } else {
        println!("ok: got action {}", qn.entity);
        print_json(action);
    }
    Ok(())
}

/// The web URL of a web action, else its REST URL.
fn action_url(apihost: &str, action: &Value) -> String {
    let full_ns = action
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("_");
    let name = action.get("name").and_then(Value::as_str).unwrap_or("");
    let (ns, pkg) = full_ns.split_once('/').unwrap_or((full_ns, ""));
    if annotation(action, "web-export").and_then(Value::as_bool) == Some(true) {
        let pkg = if pkg.is_empty() { "default" } else { pkg };
        format!("{apihost}/api/v1/web/{ns}/{pkg}/{name}")
    } else if pkg.is_empty() {
        format!("{apihost}/api/v1/namespaces/{ns}/actions/{name}")
    } else {
        format!("{apihost}/api/v1/namespaces/{ns}/actions/{pkg}/{name}")
    }
}

fn save_code(action: &Value, qn: &QualifiedName, save_as: Option<PathBuf>) -> anyhow::Result<()> {
    let exec = action.get("exec").cloned().unwrap_or(Value::Null);
    let kind = exec.get("kind").and_then(Value::as_str).unwrap_or("");
    let runtime = kind.split(':').next().unwrap_or("");
    if runtime == "blackbox" && exec.get("code").is_none() {
        return Err(Failure::general("Cannot save Docker images").into());
    }
    let code = exec.get("code").and_then(Value::as_str).unwrap_or("");
    let binary = exec.get("binary").and_then(Value::as_bool).unwrap_or(false);
    let bytes = if binary {
        base64::engine::general_purpose::STANDARD
            .decode(code)
            .map_err(|e| Failure::general(format!("The action's code is not valid base64: {e}")))?
    } else {
        code.as_bytes().to_vec()
    };
    let base = qn.entity.rsplit('/').next().unwrap_or(&qn.entity);
    let ext = match (binary, runtime) {
        (true, "java") => ".jar",
        (true, _) => ".zip",
        (false, "python" | "blackbox") => ".py",
        (false, "nodejs") => ".js",
        (false, other) => match other {
            "swift" => ".swift",
            "php" => ".php",
            _ => "",
        },
    };
    let path = save_as.unwrap_or_else(|| PathBuf::from(format!("{base}{ext}")));
    if path.exists() {
        return Err(
            Failure::general(format!("The file '{}' already exists", path.display())).into(),
        );
    }
    std::fs::write(&path, bytes)
        .map_err(|e| Failure::general(format!("Cannot write {}: {e}", path.display())))?;
    let shown = std::env::current_dir()
        .map(|d| d.join(&path))
        .unwrap_or(path);
    println!("ok: saved action code to {}", shown.display());
    Ok(())
}

async fn list(client: &Client, json_out: bool, ns: &str, args: ListArgs) -> anyhow::Result<()> {
    let (namespace, package) = match args.target.as_deref() {
        Some(t) if t.starts_with('/') => {
            let rest = t.trim_start_matches('/').trim_end_matches('/');
            match rest.split_once('/') {
                Some((n, p)) => (n.to_string(), Some(p.to_string())),
                None => (rest.to_string(), None),
            }
        }
        Some(pkg) => (ns.to_string(), Some(pkg.trim_end_matches('/').to_string())),
        None => (ns.to_string(), None),
    };
    if namespace.is_empty() {
        return Err(Failure::usage("An optional namespace is the only valid argument.").into());
    }
    // A package's actions (a binding's: its package's) come from `actions/{pkg}/`, as wsk
    // asks for them.
    let mut url = client.url(&namespace, "actions", &[])?;
    if let Some(pkg) = &package {
        url = client.url(&namespace, "actions", &[pkg.as_str(), ""])?;
    }
    let actions =
        crate::trigger::fetch_list(client, url, &namespace, "actions", args.limit, args.skip)
            .await?;
    crate::trigger::print_list(actions, args.name_sort, json_out, output::action_table);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_of_actions() {
        let web = json!({"namespace": "guest/pkg", "name": "a",
                         "annotations": [{"key": "web-export", "value": true}]});
        assert_eq!(
            action_url("http://h", &web),
            "http://h/api/v1/web/guest/pkg/a"
        );
        let plain = json!({"namespace": "guest", "name": "a"});
        assert_eq!(
            action_url("http://h", &plain),
            "http://h/api/v1/namespaces/guest/actions/a"
        );
    }
}
