//! Turning command-line arguments into request content, as `wsk` does: `-p KEY VALUE` values
//! (JSON when they parse, else strings), `-P FILE` objects, qualified names (`name`,
//! `pkg/name`, `/ns/[pkg/]name`) and the runtime kind implied by a file extension.

use crate::error::Failure;
use serde_json::{Map, Value};
use std::path::Path;

/// `wsk`'s reading of a `-p`/`-a` value: JSON when it parses as JSON, else a JSON string
/// (`39` → 39, `0` → 0, `myname0` → "myname0", `'"0"'` → "0", `true` → true).
pub fn parse_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Builds one JSON object from an optional `-P FILE` (read first) and `KEY VALUE` pairs
/// (flattened, as clap hands them over; later keys win).
pub fn collect(
    pairs: &[String],
    file: Option<&Path>,
    what: &str,
) -> Result<Map<String, Value>, Failure> {
    let mut map = match file {
        Some(path) => read_object_file(path, what)?,
        None => Map::new(),
    };
    for pair in pairs.chunks(2) {
        match pair {
            [k, v] => {
                map.insert(k.clone(), parse_value(v));
            }
            _ => {
                return Err(Failure::usage(format!(
                    "Arguments for '-{what}' must be a key/value pair"
                )))
            }
        }
    }
    Ok(map)
}

/// Reads a JSON object from `path`.
pub fn read_object_file(path: &Path, what: &str) -> Result<Map<String, Value>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("Unable to read '{}': {e}", path.display())))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::usage(format!(
            "Invalid {what} file '{}': the content must be a JSON object",
            path.display()
        ))),
        Err(e) => Err(Failure::usage(format!(
            "Invalid {what} file '{}': {e}",
            path.display()
        ))),
    }
}

/// `[{key, value}]`, the shape of `parameters` and `annotations` in entity documents.
pub fn to_key_values(map: &Map<String, Value>) -> Value {
    Value::Array(
        map.iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
            .collect(),
    )
}

/// The kind `wsk` infers from an artifact's extension (`.zip` needs `--kind`).
pub fn kind_from_extension(file: &Path) -> Result<&'static str, Failure> {
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "py" => Ok("python:default"),
        "js" => Ok("nodejs:default"),
        "jar" => Ok("java:default"),
        "swift" => Ok("swift:default"),
        "php" => Ok("php:default"),
        "go" => Ok("go:default"),
        "rb" => Ok("ruby:default"),
        "rs" => Ok("rust:default"),
        "zip" => Err(Failure::usage(
            "creating an action from a .zip artifact requires specifying the action kind explicitly",
        )),
        other => Err(Failure::usage(format!("'.{other}' is not a supported action runtime"))),
    }
}

/// True when the artifact is sent base64-encoded (`binary: true`).
pub fn is_binary_artifact(file: &Path) -> bool {
    matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("zip" | "jar")
    )
}

/// A name as typed by the user, split into namespace and entity (`pkg/name` or `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName {
    /// Namespace (`_` = the caller's own).
    pub namespace: String,
    /// Entity name, possibly with a package (`pkg/name`).
    pub entity: String,
}

impl QualifiedName {
    /// Parses `name`, `pkg/name`, `/ns/name` or `/ns/pkg/name`; `default_ns` is used when the
    /// name has no leading slash.
    pub fn parse(raw: &str, default_ns: &str) -> Result<Self, Failure> {
        let invalid = || Failure::usage(format!("'{raw}' is not a valid qualified name"));
        if raw.trim().is_empty() {
            return Err(invalid());
        }
        let (namespace, entity) = match raw.strip_prefix('/') {
            Some(rest) => rest.split_once('/').ok_or_else(invalid)?,
            None => (default_ns, raw),
        };
        if namespace.is_empty() || entity.is_empty() || entity.split('/').any(str::is_empty) {
            return Err(invalid());
        }
        if entity.split('/').count() > 2 {
            return Err(invalid());
        }
        Ok(Self {
            namespace: namespace.to_string(),
            entity: entity.to_string(),
        })
    }

    /// Path segments of the entity (`["pkg", "name"]` or `["name"]`).
    pub fn segments(&self) -> Vec<&str> {
        self.entity.split('/').collect()
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}/{}", self.namespace, self.entity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_json_when_they_parse() {
        assert_eq!(parse_value("39"), json!(39));
        assert_eq!(parse_value("0"), json!(0));
        assert_eq!(parse_value("myname0"), json!("myname0"));
        assert_eq!(parse_value("\"0\""), json!("0"));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("{\"a\": [1]}"), json!({"a": [1]}));
        assert_eq!(parse_value("hello world"), json!("hello world"));
        assert_eq!(parse_value(""), json!(""));
        assert_eq!(parse_value("-1"), json!(-1));
    }

    #[test]
    fn collect_merges_file_then_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(&f, r#"{"a": 1, "b": "x"}"#).unwrap();
        let pairs: Vec<String> = ["b", "2", "c", "name"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let map = collect(&pairs, Some(&f), "param").unwrap();
        assert_eq!(
            Value::Object(map.clone()),
            json!({"a": 1, "b": 2, "c": "name"})
        );
        assert_eq!(
            to_key_values(&map),
            json!([{"key":"a","value":1},{"key":"b","value":2},{"key":"c","value":"name"}])
        );
        std::fs::write(&f, "[1]").unwrap();
        assert_eq!(collect(&[], Some(&f), "param").unwrap_err().code, 2);
        std::fs::write(&f, "nope").unwrap();
        assert!(collect(&[], Some(&f), "param").is_err());
        assert!(collect(&["odd".into()], None, "p").is_err());
    }

    #[test]
    fn kinds_from_extensions() {
        assert_eq!(
            kind_from_extension(Path::new("a/fib.py")).unwrap(),
            "python:default"
        );
        assert_eq!(
            kind_from_extension(Path::new("hello.js")).unwrap(),
            "nodejs:default"
        );
        assert!(kind_from_extension(Path::new("x.zip")).is_err());
        assert!(kind_from_extension(Path::new("x.txt")).is_err());
        assert!(kind_from_extension(Path::new("noext")).is_err());
        assert!(is_binary_artifact(Path::new("x.zip")));
        assert!(!is_binary_artifact(Path::new("x.py")));
    }

    #[test]
    fn qualified_names() {
        let q = QualifiedName::parse("fib", "_").unwrap();
        assert_eq!((q.namespace.as_str(), q.entity.as_str()), ("_", "fib"));
        assert_eq!(q.to_string(), "/_/fib");
        let q = QualifiedName::parse("/whisk.system/pkg/my act", "_").unwrap();
        assert_eq!(
            (q.namespace.as_str(), q.entity.as_str()),
            ("whisk.system", "pkg/my act")
        );
        assert_eq!(q.segments(), vec!["pkg", "my act"]);
        assert_eq!(
            QualifiedName::parse("pkg/a", "guest").unwrap().to_string(),
            "/guest/pkg/a"
        );
        for bad in ["", "/ns", "/ns/", "a//b", "/a/b/c/d", "a/b/c"] {
            assert!(QualifiedName::parse(bad, "_").is_err(), "{bad}");
        }
    }
}
