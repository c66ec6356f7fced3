//! `whisk package create|update|bind|get|delete|list`, sending what `wsk` sends and printing
//! what it prints: `ok:` lines, the package JSON, `--summary` (the package, its actions and
//! feeds with their parameters, bound ones marked `*`), and the `packages` table.

use crate::action_body::ParamArgs;
use crate::client::Client;
use crate::error::Failure;
use crate::output::{annotation, print_json};
use crate::params::{self, QualifiedName};
use crate::trigger::{self, AnnotationArgs, GetArgs, ListArgs};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// Flags of `package create` and `package update`.
#[derive(Debug, Clone, clap::Args)]
pub struct PutArgs {
    /// Package name (`name` or `/namespace/name`).
    pub name: String,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Package visibility SCOPE: yes = shared, no = private.
    #[arg(long, value_name = "SCOPE")]
    pub shared: Option<String>,
}

/// Flags of `package bind`.
#[derive(Debug, Clone, clap::Args)]
pub struct BindArgs {
    /// The package to bind (`/namespace/name` or `name`).
    pub package: String,
    /// The binding's name.
    pub binding: String,
    #[command(flatten)]
    pub params: ParamArgs,
    #[command(flatten)]
    pub annotations: AnnotationArgs,
    /// Overwrite an existing binding.
    #[arg(short = 'o', long)]
    pub overwrite: bool,
}

/// `whisk package ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PackageCommand {
    /// Bind parameters to a package.
    Bind(BindArgs),
    /// Create a new package.
    Create(PutArgs),
    /// Update an existing package, or create a package if it does not exist.
    Update(PutArgs),
    /// Get a package.
    Get(GetArgs),
    /// Delete a package.
    Delete {
        /// Package name.
        name: String,
    },
    /// List all packages.
    List(ListArgs),
}

/// Runs a package command.
pub async fn run(client: &Client, json_out: bool, cmd: PackageCommand) -> anyhow::Result<()> {
    let ns = client.settings().namespace.clone();
    match cmd {
        PackageCommand::Create(a) => put(client, json_out, &ns, a, false).await,
        PackageCommand::Update(a) => put(client, json_out, &ns, a, true).await,
        PackageCommand::Bind(a) => bind(client, json_out, &ns, a).await,
        PackageCommand::Get(a) => get(client, json_out, &ns, a).await,
        PackageCommand::Delete { name } => {
            let qn = package_name(&name, &ns)?;
            trigger::delete(client, json_out, &qn, "package").await
        }
        PackageCommand::List(a) => {
            let (_, packages) = trigger::list(client, &ns, "packages", &a).await?;
            trigger::print_list(packages, a.name_sort, json_out, package_table);
            Ok(())
        }
    }
}

/// A package name: `name` or `/namespace/name` (never inside another package).
fn package_name(raw: &str, ns: &str) -> Result<QualifiedName, Failure> {
    let qn = QualifiedName::parse(raw, ns)?;
    if qn.entity.contains('/') {
        return Err(Failure::usage(format!(
            "'{raw}' is not a valid qualified name: a package is not inside another package"
        )));
    }
    Ok(qn)
}

/// `--shared yes|no` (any case) → `publish`; anything else is wsk's error.
fn parse_shared(shared: Option<&str>) -> Result<Option<bool>, Failure> {
    match shared {
        None | Some("") => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("yes") => Ok(Some(true)),
        Some(s) if s.eq_ignore_ascii_case("no") => Ok(Some(false)),
        Some(s) => Err(Failure::general(format!(
            "Cannot use value '{s}' for shared."
        ))),
    }
}

/// `parameters` and `annotations` of the body, as wsk sends them (only when given).
fn body_fields(
    params: &ParamArgs,
    annotations: &AnnotationArgs,
) -> Result<Map<String, Value>, Failure> {
    let mut body = Map::new();
    let p = params::collect(&params.param, params.param_file.as_deref(), "param")?;
    if !p.is_empty() {
        body.insert("parameters".into(), params::to_key_values(&p));
    }
    let a = params::collect(
        &annotations.annotation,
        annotations.annotation_file.as_deref(),
        "annotation",
    )?;
    if !a.is_empty() {
        body.insert("annotations".into(), params::to_key_values(&a));
    }
    Ok(body)
}

async fn put(
    client: &Client,
    json_out: bool,
    ns: &str,
    args: PutArgs,
    update: bool,
) -> anyhow::Result<()> {
    let qn = package_name(&args.name, ns)?;
    let mut body = body_fields(&args.params, &args.annotations)?;
    if let Some(publish) = parse_shared(args.shared.as_deref())? {
        body.insert("publish".into(), Value::Bool(publish));
    }
    let url = client.url(&qn.namespace, "packages", &qn.segments())?;
    let query = [("overwrite", update.to_string())];
    let resp = client
        .send(Method::PUT, url, &query, Some(&Value::Object(body)))
        .await
        .map_err(|e| {
            if update {
                e.failure("Package update failed")
            } else {
                e.failure(&format!("Unable to create package '{}'", qn.entity))
            }
        })?;
    if json_out {
        print_json(&resp.body);
    } else if update {
        println!("ok: updated package {}", qn.entity);
    } else {
        println!("ok: created package {}", qn.entity);
    }
    Ok(())
}

async fn bind(client: &Client, json_out: bool, ns: &str, args: BindArgs) -> anyhow::Result<()> {
    let bound = package_name(&args.package, ns)?;
    let binding = package_name(&args.binding, ns)?;
    let mut body = body_fields(&args.params, &args.annotations)?;
    body.insert(
        "binding".into(),
        json!({"namespace": bound.namespace, "name": bound.entity}),
    );
    let url = client.url(&binding.namespace, "packages", &binding.segments())?;
    let query = [("overwrite", args.overwrite.to_string())];
    let resp = client
        .send(Method::PUT, url, &query, Some(&Value::Object(body)))
        .await
        .map_err(|e| e.failure("Binding creation failed"))?;
    if json_out {
        print_json(&resp.body);
    } else {
        println!("ok: created binding {}", args.binding);
    }
    Ok(())
}

async fn get(client: &Client, json_out: bool, ns: &str, args: GetArgs) -> anyhow::Result<()> {
    let qn = package_name(&args.name, ns)?;
    let url = client.url(&qn.namespace, "packages", &qn.segments())?;
    let resp = client
        .send(Method::GET, url, &[], None)
        .await
        .map_err(|e| e.failure(&format!("Unable to get package '{}'", qn.entity)))?;
    if args.summary && !json_out {
        print!("{}", package_summary(&resp.body));
        return Ok(());
    }
    trigger::show(&resp.body, "package", &qn, &args, json_out)
}

/// `wsk package list`: header `packages`, then `%-70s %s` (name, `private`/`shared`).
pub fn package_table(packages: &[Value]) -> String {
    let mut out = String::from("packages\n");
    for p in packages {
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
        let name = format!("/{}/{}", field("namespace"), field("name"));
        let publish = if p.get("publish").and_then(Value::as_bool) == Some(true) {
            "shared"
        } else {
            "private"
        };
        out.push_str(&format!("{name:<70} {publish}\n"));
    }
    out
}

/// `wsk package get --summary`: the package, then each action and feed, each with a
/// description (its own, or one made from its parameters) and its parameters (bound ones
/// `*`, or `**` when `final`).
pub fn package_summary(pkg: &Value) -> String {
    let field = |k: &str| pkg.get(k).and_then(Value::as_str).unwrap_or("");
    let base = format!("/{}/{}", field("namespace"), field("name"));
    let mut out = entity_summary("package", &base, pkg);
    for (list, kind) in [("actions", " action"), ("feeds", " feed  ")] {
        for a in pkg
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            out.push_str(&entity_summary(kind, &format!("{base}/{name}"), a));
        }
    }
    out
}

fn entity_summary(kind: &str, full_name: &str, entity: &Value) -> String {
    let params = param_union(entity).join(", ");
    let description = annotation(entity, "description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let head = if !description.is_empty() {
        format!("{kind} {full_name}: {description}")
    } else if !params.is_empty() {
        format!("{kind} {full_name}: {}", param_description(&params))
    } else {
        format!("{kind} {full_name}")
    };
    let params = if params.is_empty() {
        "none defined".to_string()
    } else {
        params
    };
    format!("{head}\n   (parameters: {params})\n")
}

/// wsk's `getParamUnion`: bound parameter keys and the names the `parameters` annotation
/// describes, sorted, bound ones prefixed `*` (`**` when the entity is `final`).
fn param_union(entity: &Value) -> Vec<String> {
    let bound: Vec<String> = entity
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("key").and_then(Value::as_str).map(str::to_string))
        .collect();
    let described = annotation(entity, "parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string));
    let mut all: Vec<String> = bound.iter().cloned().chain(described).collect();
    all.sort();
    all.dedup();
    let tag = if annotation(entity, "final").and_then(Value::as_bool) == Some(true) {
        "**"
    } else {
        "*"
    };
    all.into_iter()
        .map(|p| {
            if bound.contains(&p) {
                format!("{tag}{p}")
            } else {
                p
            }
        })
        .collect()
}

/// wsk's `buildParamDescription`.
fn param_description(params: &str) -> String {
    let plain = params.replace('*', "");
    let parts: Vec<&str> = plain.split(',').collect();
    if parts.len() > 1 {
        let last = parts[parts.len() - 1];
        let joined = plain.replacen(&format!(",{last}"), &format!(" and{last}"), 1);
        format!("Returns a result based on parameters {joined}")
    } else {
        format!("Returns a result based on parameter {plain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_flags_like_wsk() {
        let t = package_table(&[
            json!({"namespace": "guest", "name": "p", "publish": false}),
            json!({"namespace": "whisk.system", "name": "utils", "publish": true}),
        ]);
        assert_eq!(
            t,
            format!(
                "packages\n{:<70} private\n{:<70} shared\n",
                "/guest/p", "/whisk.system/utils"
            )
        );
        assert_eq!(package_table(&[]), "packages\n");
        assert_eq!(parse_shared(Some("YES")).unwrap(), Some(true));
        assert_eq!(parse_shared(Some("no")).unwrap(), Some(false));
        assert_eq!(parse_shared(None).unwrap(), None);
        assert_eq!(
            parse_shared(Some("maybe")).unwrap_err().to_string(),
            "Cannot use value 'maybe' for shared."
        );
        assert!(package_name("a/b", "_").is_err());
        assert_eq!(package_name("/ns/p", "_").unwrap().namespace, "ns");
    }

    #[test]
    fn summaries_like_wsk() {
        let pkg = json!({
            "namespace": "whisk.system", "name": "utils",
            "annotations": [{"key": "description", "value": "Building blocks"}],
            "parameters": [],
            "actions": [
                {"name": "head", "annotations": [{"key": "parameters", "value": [{"name": "lines"}, {"name": "num"}]}]},
                {"name": "date", "annotations": []}
            ],
            "feeds": [{"name": "alarm", "annotations": [{"key": "description", "value": "Fire periodically"}]}]
        });
        assert_eq!(
            package_summary(&pkg),
            "package /whisk.system/utils: Building blocks\n   (parameters: none defined)\n \
             action /whisk.system/utils/head: Returns a result based on parameters lines and num\n   (parameters: lines, num)\n \
             action /whisk.system/utils/date\n   (parameters: none defined)\n \
             feed   /whisk.system/utils/alarm: Fire periodically\n   (parameters: none defined)\n"
        );
        let bound = json!({"namespace": "guest", "name": "b",
            "parameters": [{"key": "x", "value": 1}], "annotations": []});
        assert_eq!(
            package_summary(&bound),
            "package /guest/b: Returns a result based on parameter x\n   (parameters: *x)\n"
        );
    }
}
