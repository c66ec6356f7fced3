//! The request body of `whisk action create|update`, built as `wsk` builds it: `exec` from a
//! file (kind from its extension unless `--kind`; `.zip`/`.jar` base64 with `binary: true`)
//! or a Docker image (kind `blackbox`), parameters, annotations (`--web` adds the web
//! annotations) and the limits given. Pure functions, tested without a server.

use crate::error::Failure;
use crate::params;
use base64::Engine;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// `-p KEY VALUE` and `-P FILE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParamArgs {
    /// Parameter values in KEY VALUE format (VALUE is JSON when it parses as JSON).
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true)]
    pub param: Vec<String>,
    /// FILE containing parameter values as a JSON object.
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub param_file: Option<PathBuf>,
}

/// Flags of `action create` and `action update`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CreateArgs {
    /// Action name (`name`, `pkg/name` or `/namespace/[pkg/]name`).
    pub name: String,
    /// Code artifact (`.py`, `.js`, ...; `.zip` needs --kind).
    pub file: Option<PathBuf>,
    /// The KIND of the action runtime (e.g. python:3, nodejs:default).
    #[arg(long)]
    pub kind: Option<String>,
    /// The name of the action entry point.
    #[arg(long)]
    pub main: Option<String>,
    /// Run the action in this Docker IMAGE (kind blackbox; FILE, if given, is its code).
    #[arg(long, value_name = "IMAGE")]
    pub docker: Option<String>,
    /// Run FILE as a native executable in openwhisk/dockerskeleton.
    #[arg(long)]
    pub native: bool,
    /// The timeout LIMIT in milliseconds after which the action is terminated.
    #[arg(short = 't', long, value_name = "LIMIT")]
    pub timeout: Option<u64>,
    /// The maximum memory LIMIT in MB for the action.
    #[arg(short = 'm', long, value_name = "LIMIT")]
    pub memory: Option<u64>,
    /// The maximum log size LIMIT in MB for the action.
    #[arg(short = 'l', long, value_name = "LIMIT")]
    pub logsize: Option<u64>,
    /// The maximum number of activations one container runs at once.
    #[arg(short = 'c', long, value_name = "LIMIT")]
    pub concurrency: Option<u64>,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Annotation values in KEY VALUE format.
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true)]
    pub annotation: Vec<String>,
    /// FILE containing annotation values as a JSON object.
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    pub annotation_file: Option<PathBuf>,
    /// Web action: yes|true, raw, or no|false.
    #[arg(long, value_name = "MODE")]
    pub web: Option<String>,
    /// Treat FILE as a comma-separated list of actions: a sequence.
    #[arg(long)]
    pub sequence: bool,
}

/// The PUT body of `action create/update` (without the existing annotations `--web` keeps).
pub fn action_body(args: &CreateArgs, update: bool) -> Result<Value, Failure> {
    let mut body = Map::new();
    if let Some(exec) = exec(args, update)? {
        body.insert("exec".into(), exec);
    }
    let parameters = params::collect(
        &args.params.param,
        args.params.param_file.as_deref(),
        "param",
    )?;
    if !parameters.is_empty() {
        body.insert("parameters".into(), params::to_key_values(&parameters));
    }
    let mut annotations = params::collect(
        &args.annotation,
        args.annotation_file.as_deref(),
        "annotation",
    )?;
    if let Some(mode) = &args.web {
        apply_web(&mut annotations, mode)?;
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), params::to_key_values(&annotations));
    }
    let mut limits = Map::new();
    for (key, value) in [
        ("timeout", args.timeout),
        ("memory", args.memory),
        ("logs", args.logsize),
        ("concurrency", args.concurrency),
    ] {
        if let Some(v) = value {
            limits.insert(key.into(), json!(v));
        }
    }
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    Ok(Value::Object(body))
}

fn exec(args: &CreateArgs, update: bool) -> Result<Option<Value>, Failure> {
    if args.sequence {
        return crate::sequence::exec(args).map(Some);
    }
    let image = match (&args.docker, args.native) {
        (Some(image), _) => Some(image.clone()),
        (None, true) => Some("openwhisk/dockerskeleton".to_string()),
        (None, false) => None,
    };
    let Some(file) = &args.file else {
        return match image {
            Some(image) => Ok(Some(json!({"kind": "blackbox", "image": image}))),
            None if update => Ok(None),
            None => Err(Failure::usage(
                "An action name and code artifact are required.",
            )),
        };
    };
    let bytes = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("Unable to read '{}': {e}", file.display())))?;
    let binary = params::is_binary_artifact(file);
    let code = if binary {
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    } else {
        String::from_utf8(bytes).map_err(|_| {
            Failure::usage(format!(
                "'{}' is not UTF-8 text (zip binary code and use --kind)",
                file.display()
            ))
        })?
    };
    let mut exec = Map::new();
    match (&image, &args.kind) {
        (Some(_), Some(kind)) if kind != "blackbox" => {
            return Err(Failure::usage(
                "--kind cannot be combined with --docker (Docker actions are of kind blackbox)",
            ))
        }
        (Some(image), _) => {
            exec.insert("kind".into(), json!("blackbox"));
            exec.insert("image".into(), json!(image));
        }
        (None, Some(kind)) => {
            exec.insert("kind".into(), json!(kind));
        }
        (None, None) => {
            exec.insert("kind".into(), json!(params::kind_from_extension(file)?));
        }
    }
    exec.insert("code".into(), json!(code));
    if let Some(main) = &args.main {
        exec.insert("main".into(), json!(main));
    }
    if binary {
        exec.insert("binary".into(), json!(true));
    }
    Ok(Some(Value::Object(exec)))
}

/// Sets the `web-export`, `raw-http` and `final` annotations for `--web MODE`.
fn apply_web(annotations: &mut Map<String, Value>, mode: &str) -> Result<(), Failure> {
    let (export, raw) = match mode.to_ascii_lowercase().as_str() {
        "yes" | "true" => (true, false),
        "raw" => (true, true),
        "no" | "false" => (false, false),
        _ => {
            return Err(Failure::usage(format!(
                "Invalid argument '{mode}' for --web flag. Valid input consist of 'yes', 'true', 'raw', 'false', or 'no'."
            )))
        }
    };
    annotations.insert("web-export".into(), json!(export));
    annotations.insert("raw-http".into(), json!(raw));
    annotations.insert("final".into(), json!(export));
    Ok(())
}

/// Adds the stored annotations that `body` does not set (all but `exec`, which the server
/// derives), so that `--web` alone keeps the others.
pub fn merge_existing_annotations(body: &mut Value, existing: &Value) {
    let Some(old) = existing.get("annotations").and_then(Value::as_array) else {
        return;
    };
    let Some(new) = body.get_mut("annotations").and_then(Value::as_array_mut) else {
        return;
    };
    let keys: Vec<Value> = new.iter().filter_map(|kv| kv.get("key").cloned()).collect();
    let kept: Vec<Value> = old
        .iter()
        .filter(|kv| {
            kv.get("key")
                .is_some_and(|k| !keys.contains(k) && k != "exec")
        })
        .cloned()
        .collect();
    new.extend(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, file: Option<PathBuf>) -> CreateArgs {
        CreateArgs {
            name: name.into(),
            file,
            ..Default::default()
        }
    }

    #[test]
    fn python_file_body() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fib.py");
        std::fs::write(&f, "def main(a): return a").unwrap();
        let mut a = args("fib", Some(f));
        a.timeout = Some(300000);
        a.memory = Some(512);
        a.params.param = vec!["number".into(), "39".into(), "id".into(), "myname0".into()];
        a.web = Some("true".into());
        let body = action_body(&a, false).unwrap();
        assert_eq!(
            body,
            json!({
                "exec": {"kind": "python:default", "code": "def main(a): return a"},
                "parameters": [{"key": "number", "value": 39}, {"key": "id", "value": "myname0"}],
                "annotations": [{"key": "web-export", "value": true}, {"key": "raw-http", "value": false},
                                {"key": "final", "value": true}],
                "limits": {"timeout": 300000, "memory": 512}
            })
        );
    }

    #[test]
    fn docker_zip_and_missing_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.py");
        std::fs::write(&f, "x").unwrap();
        let mut a = args("f", Some(f));
        a.docker = Some("yangzhou1997/python3action:mpi".into());
        assert_eq!(
            action_body(&a, true).unwrap(),
            json!({"exec": {"kind": "blackbox", "image": "yangzhou1997/python3action:mpi", "code": "x"}})
        );
        a.kind = Some("python:3".into());
        assert_eq!(action_body(&a, true).unwrap_err().code, 2);

        let z = dir.path().join("a.zip");
        std::fs::write(&z, [0u8, 159, 146, 150]).unwrap();
        assert!(action_body(&args("a", Some(z.clone())), false).is_err());
        let mut a = args("a", Some(z));
        a.kind = Some("python:3".into());
        a.main = Some("go".into());
        assert_eq!(
            action_body(&a, false).unwrap(),
            json!({"exec": {"kind": "python:3", "code": "AJ+Slg==", "main": "go", "binary": true}})
        );

        assert_eq!(action_body(&args("a", None), false).unwrap_err().code, 2);
        assert_eq!(action_body(&args("a", None), true).unwrap(), json!({}));
        let mut a = args("a", None);
        a.docker = Some("img".into());
        assert_eq!(
            action_body(&a, false).unwrap(),
            json!({"exec": {"kind": "blackbox", "image": "img"}})
        );
        let mut a = args("a", None);
        a.web = Some("maybe".into());
        assert!(action_body(&a, true).is_err());
        assert!(action_body(&args("a", Some(dir.path().join("missing.py"))), false).is_err());
    }

    #[test]
    fn web_alone_keeps_other_annotations() {
        let mut body = json!({"annotations": [{"key": "web-export", "value": true}]});
        let existing = json!({"annotations": [{"key": "web-export", "value": false},
                                              {"key": "exec", "value": "python:3"},
                                              {"key": "description", "value": "d"}]});
        merge_existing_annotations(&mut body, &existing);
        assert_eq!(
            body,
            json!({"annotations": [{"key": "web-export", "value": true}, {"key": "description", "value": "d"}]})
        );
    }
}
