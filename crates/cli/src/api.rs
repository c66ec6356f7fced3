//! `whisk api create|get|delete|list`, as `wsk api`: the route management calls
//! `{apihost}/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}.http` with the
//! key (query `basepath`, `relpath`, `operation`, `responsetype`, `limit`, `skip`; the
//! `apidoc` body of a new route), and `wsk`'s lines and tables over their answers.

use crate::client::Client;
use crate::error::Failure;
use crate::output::{annotation, print_json};
use crate::params::QualifiedName;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

const VERBS: [&str; 7] = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// Flags of `api create`.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// [BASE_PATH] API_PATH API_VERB ACTION.
    #[arg(num_args = 0..=4)]
    pub args: Vec<String>,
    /// Friendly name of the API (default BASE_PATH).
    #[arg(short = 'n', long = "apiname")]
    pub apiname: Option<String>,
    /// CFG_FILE containing the API configuration in swagger JSON format.
    #[arg(short = 'c', long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// The web action response TYPE: html, http, json, text or svg.
    #[arg(long = "response-type", default_value = "json")]
    pub response_type: String,
}

/// Flags of `api get`.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    /// BASE_PATH or API_NAME.
    pub name: String,
    /// Display the full API configuration.
    #[arg(short = 'f', long)]
    pub full: bool,
    /// Output format (json).
    #[arg(long, default_value = "json")]
    pub format: String,
}

/// Flags of `api delete`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// BASE_PATH or API_NAME.
    pub basepath: String,
    /// API_PATH to delete from the API.
    pub relpath: Option<String>,
    /// API_VERB of API_PATH to delete.
    pub verb: Option<String>,
}

/// Flags of `api list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// [BASE_PATH | API_NAME] [API_PATH] [API_VERB].
    #[arg(num_args = 0..=3)]
    pub args: Vec<String>,
    /// Only return LIMIT APIs.
    #[arg(short = 'l', long, default_value_t = 30)]
    pub limit: u32,
    /// Skip the first SKIP APIs.
    #[arg(short = 's', long, default_value_t = 0)]
    pub skip: u32,
    /// Sort by base path, path and verb.
    #[arg(short = 'n', long = "name-sort")]
    pub name_sort: bool,
    /// Display the full description of each API.
    #[arg(short = 'f', long)]
    pub full: bool,
}

/// `whisk api ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ApiCommand {
    /// Create a new API.
    Create(CreateArgs),
    /// Get API details.
    Get(GetArgs),
    /// Delete an API.
    Delete(DeleteArgs),
    /// List APIs.
    List(ListArgs),
}

/// Runs an api command.
pub async fn run(client: &Client, cmd: ApiCommand) -> anyhow::Result<()> {
    match cmd {
        ApiCommand::Create(a) => create(client, a).await,
        ApiCommand::Get(a) => get(client, a).await,
        ApiCommand::Delete(a) => delete(client, a).await,
        ApiCommand::List(a) => list(client, a).await,
    }
}

async fn call(
    client: &Client,
    method: Method,
    op: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Value, crate::error::ApiError> {
    let url = client.root_url(&[
        "api",
        "v1",
        "web",
        "whisk.system",
        "apimgmt",
        &format!("{op}.http"),
    ])?;
    Ok(client.send(method, url, query, body).await?.body)
}

fn check_path(path: &str) -> Result<(), Failure> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(Failure::usage(format!("'{path}' must begin with '/'.")))
    }
}

fn check_verb(verb: &str) -> Result<String, Failure> {
    let v = verb.to_ascii_uppercase();
    if VERBS.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(Failure::usage(format!(
            "'{verb}' is not a valid API verb.  Valid values are: {}",
            VERBS.join(", ")
        )))
    }
}

/// The `{name}` parameters of a path.
fn path_parameters(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seg in path.split('/') {
        if let Some(p) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
    }
    out
}

async fn create(client: &Client, a: CreateArgs) -> anyhow::Result<()> {
    if let Some(file) = &a.config_file {
        return create_from_swagger(client, file, &a.response_type).await;
    }
    if !(3..=4).contains(&a.args.len()) {
        return Err(Failure::usage(
            "Invalid argument(s). Specify a swagger file or specify an API base path with an API path, an API verb, and an action name.",
        )
        .into());
    }
    let (basepath, rest) = if a.args.len() == 4 {
        (a.args[0].clone(), &a.args[1..])
    } else {
        ("/".to_string(), &a.args[..])
    };
    let by_name = !basepath.starts_with('/');
    if basepath.contains('{') {
        return Err(Failure::usage(format!(
            "The base path '{basepath}' cannot have parameters. Only the relative path supports path parameters."
        ))
        .into());
    }
    let relpath = rest[0].clone();
    check_path(&relpath)?;
    let params = path_parameters(&relpath);
    if !params.is_empty() && a.response_type != "http" {
        return Err(Failure::usage(
            "A response type of 'http' is required when using path parameters.",
        )
        .into());
    }
    let verb = check_verb(&rest[1])?;
    let settings = client.settings();
    let qn = QualifiedName::parse(&rest[2], &settings.namespace)?;
    let full = format!("/{}/{}", qn.namespace, qn.segments().join("/"));
    let url = client.url(&qn.namespace, "actions", &qn.segments())?;
    let action = client
        .send(Method::GET, url, &[("code", "false".into())], None)
        .await
        .map_err(|e| e.failure(&format!("Unable to get action '{full}'")))?
        .body;
    if annotation(&action, "web-export").and_then(Value::as_bool) != Some(true) {
        return Err(Failure::general(format!(
            "Action '{full}' is not a web action. Issue 'wsk action update \"{full}\" --web true' to convert the action to a web action."
        ))
        .into());
    }
    let segs = qn.segments();
    let (pkg, name) = match segs.as_slice() {
        [p, n] => (*p, *n),
        [n] => ("default", *n),
        _ => ("default", qn.entity.as_str()),
    };
    let apihost = if settings.apihost.starts_with("http") {
        settings.apihost.clone()
    } else {
        format!("https://{}", settings.apihost)
    };
    let mut action_doc = json!({
        "name": segs.join("/"),
        "namespace": qn.namespace,
        "backendMethod": verb,
        "backendUrl": format!("{apihost}/api/v1/web/{}/{pkg}/{name}.http", qn.namespace),
        "authkey": settings.auth,
    });
    if let Some(secret) = annotation(&action, "require-whisk-auth") {
        action_doc["secureKey"] = secret.clone();
    }
    let mut apidoc = json!({
        "namespace": settings.namespace,
        "gatewayBasePath": basepath,
        "gatewayPath": relpath,
        "gatewayMethod": verb,
        "action": action_doc,
    });
    if !by_name {
        apidoc["id"] = json!(format!("API:{}:{basepath}", settings.namespace));
    }
    if let Some(n) = a.apiname.as_ref().or(by_name.then_some(&basepath)) {
        apidoc["apiName"] = json!(n);
    }
    if !params.is_empty() {
        let list: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p, "in": "path", "description": format!("Default description for '{p}'"), "required": true, "type": "string"}))
            .collect();
        apidoc["pathParameters"] = Value::Array(list);
    }
    let answer = call(
        client,
        Method::POST,
        "createApi",
        &[("responsetype", a.response_type.clone())],
        Some(&json!({ "apidoc": apidoc })),
    )
    .await
    .map_err(|e| e.failure("Unable to create API"))?;
    let base = answer["gwApiUrl"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/');
    println!(
        "ok: created API {}{relpath} {verb} for action {full}\n{base}{relpath}",
        basepath.trim_end_matches('/')
    );
    Ok(())
}

async fn create_from_swagger(client: &Client, file: &PathBuf, rtype: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::general(format!(
            "Error reading swagger file '{}': {e}",
            file.display()
        ))
    })?;
    let swagger: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::general(format!(
            "Error parsing swagger file '{}': {e}",
            file.display()
        ))
    })?;
    for k in ["basePath", "info", "paths", "swagger"] {
        if swagger.get(k).is_none() {
            return Err(Failure::general(
                "Swagger file is invalid (missing basePath, info, paths, or swagger fields)",
            )
            .into());
        }
    }
    let apidoc = json!({"namespace": client.settings().namespace, "swagger": text});
    let answer = call(
        client,
        Method::POST,
        "createApi",
        &[("responsetype", rtype.to_string())],
        Some(&json!({ "apidoc": apidoc })),
    )
    .await
    .map_err(|e| e.failure("Unable to create API"))?;
    for row in rows(&answer) {
        println!(
            "ok: created API {}{} {} for action {}\n{}",
            row.basepath.trim_end_matches('/'),
            row.relpath,
            row.verb,
            row.action,
            row.url
        );
    }
    Ok(())
}

async fn get(client: &Client, a: GetArgs) -> anyhow::Result<()> {
    if a.format != "json" {
        return Err(Failure::usage(format!("Invalid format type: {}", a.format)).into());
    }
    let answer = call(
        client,
        Method::GET,
        "getApi",
        &[("basepath", a.name.clone())],
        None,
    )
    .await
    .map_err(|e| e.failure(&format!("Unable to get API '{}'", a.name)))?;
    let Some(first) = answer["apis"].as_array().and_then(|l| l.first()) else {
        let what = if a.name.starts_with('/') {
            format!("API does not exist for basepath {}", a.name)
        } else {
            format!("API does not exist for API name {}", a.name)
        };
        return Err(Failure::general(what).into());
    };
    if a.full {
        print_json(&first["value"]);
    } else {
        print_json(&first["value"]["apidoc"]);
    }
    Ok(())
}

async fn delete(client: &Client, a: DeleteArgs) -> anyhow::Result<()> {
    let mut query = vec![("basepath", a.basepath.clone()), ("force", "true".into())];
    if let Some(r) = &a.relpath {
        check_path(r)?;
        query.push(("relpath", r.clone()));
    }
    let verb = a.verb.as_deref().map(check_verb).transpose()?;
    if let Some(v) = &verb {
        query.push(("operation", v.clone()));
    }
    call(client, Method::DELETE, "deleteApi", &query, None)
        .await
        .map_err(|e| e.failure("Unable to delete API"))?;
    match (&a.relpath, &verb) {
        (None, _) => println!("ok: deleted API {}", a.basepath),
        (Some(r), None) => println!("ok: deleted {r} from {}", a.basepath),
        (Some(r), Some(v)) => println!("ok: deleted {r} {v} from {}", a.basepath),
    }
    Ok(())
}

/// One operation of an API, as `wsk api list` shows it.
#[derive(Debug, Clone)]
struct Row {
    action: String,
    verb: String,
    name: String,
    basepath: String,
    relpath: String,
    url: String,
}

/// The operations of the APIs in a getApi (`{apis: [...]}`) or createApi (`value`) answer.
fn rows(answer: &Value) -> Vec<Row> {
    let values: Vec<&Value> = match answer.get("apis").and_then(Value::as_array) {
        Some(list) => list.iter().map(|a| &a["value"]).collect(),
        None => vec![answer],
    };
    let mut out = Vec::new();
    for v in values {
        let doc = &v["apidoc"];
        let base = v["gwApiUrl"].as_str().unwrap_or("").trim_end_matches('/');
        let name = doc["info"]["title"].as_str().unwrap_or("").to_string();
        let basepath = doc["basePath"].as_str().unwrap_or("").to_string();
        let Some(paths) = doc["paths"].as_object() else {
            continue;
        };
        for (relpath, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (verb, op) in ops {
                let x = &op["x-openwhisk"];
                let ns = x["namespace"].as_str().unwrap_or("");
                let action = match (x["package"].as_str(), x["action"].as_str()) {
                    (_, None) => String::new(),
                    (Some(p), Some(a)) if !p.is_empty() => format!("/{ns}/{p}/{a}"),
                    (_, Some(a)) => format!("/{ns}/{a}"),
                };
                out.push(Row {
                    action,
                    verb: verb.clone(),
                    name: name.clone(),
                    basepath: basepath.clone(),
                    relpath: relpath.clone(),
                    url: format!("{base}{relpath}"),
                });
            }
        }
    }
    out
}

async fn list(client: &Client, a: ListArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    let (mut relpath, mut verb) = (None, None);
    if a.args.is_empty() {
        query.push(("limit", a.limit.to_string()));
        query.push(("skip", a.skip.to_string()));
    } else {
        query.push(("basepath", a.args[0].clone()));
        if let Some(r) = a.args.get(1) {
            check_path(r)?;
            relpath = Some(r.clone());
            query.push(("relpath", r.clone()));
        }
        if let Some(v) = a.args.get(2) {
            let v = check_verb(v)?;
            verb = Some(v.to_ascii_lowercase());
            query.push(("operation", v));
        }
    }
    let answer = call(client, Method::GET, "getApi", &query, None)
        .await
        .map_err(|e| e.failure("Unable to obtain the API list"))?;
    let mut rows: Vec<Row> = rows(&answer)
        .into_iter()
        .filter(|r| relpath.as_ref().is_none_or(|p| &r.relpath == p))
        .filter(|r| {
            verb.as_ref()
                .is_none_or(|v| &r.verb.to_ascii_lowercase() == v)
        })
        .collect();
    if a.name_sort {
        let key = |r: &Row| format!("{}{}{}", r.basepath, r.relpath, r.verb).to_lowercase();
        rows.sort_by_key(key);
    }
    println!("ok: APIs");
    if a.full {
        for r in &rows {
            println!(
                "Action: {}\n  API Name: {}\n  Base path: {}\n  Path: {}\n  Verb: {}\n  URL: {}",
                r.action, r.name, r.basepath, r.relpath, r.verb, r.url
            );
        }
        return Ok(());
    }
    let action_w = rows
        .iter()
        .map(|r| r.action.len())
        .max()
        .unwrap_or(0)
        .clamp(6, 40);
    let name_w = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .clamp(8, 30);
    let line = |a: &str, v: &str, n: &str, u: &str| {
        let a: String = a.chars().take(action_w).collect();
        let n: String = n.chars().take(name_w).collect();
        format!("{a:<action_w$} {v:>7} {n:>w$}  {u}", w = name_w + 1)
    };
    println!("{}", line("Action", "Verb", "API Name", "URL"));
    for r in &rows {
        println!("{}", line(&r.action, &r.verb, &r.name, &r.url));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_answers() {
        let answer = json!({"apis": [{"value": {"gwApiUrl": "http://h/api/u/hello", "apidoc": {
            "basePath": "/hello", "info": {"title": "hi"},
            "paths": {"/world": {"get": {"x-openwhisk": {"namespace": "guest", "package": "", "action": "a"}}}}}}}]});
        let r = rows(&answer);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].action, "/guest/a");
        assert_eq!(r[0].url, "http://h/api/u/hello/world");
        assert_eq!(path_parameters("/b/{id}/{x}"), vec!["id", "x"]);
        assert!(check_verb("fetch").is_err());
    }
}
