//! Actions as OpenWhisk stores and shows them: exec, limits, parameters, annotations, version;
//! the PUT body and the rules by which an update merges into the stored document.

use crate::error::WhiskError;
use crate::kinds;
use crate::limits::*;
use crate::names::{EntityName, FullyQualifiedName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One `{key, value}` pair of parameters or annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
}

/// Looks `key` up in a `[{key, value}]` list.
pub fn lookup<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    list.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

/// Sets `key` in a `[{key, value}]` list, replacing an existing entry in place.
pub fn upsert(list: &mut Vec<KeyValue>, key: &str, value: Value) {
    match list.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => list.push(KeyValue {
            key: key.to_string(),
            value,
        }),
    }
}

/// Turns a `[{key, value}]` list into a JSON object.
pub fn to_object(list: &[KeyValue]) -> Map<String, Value> {
    list.iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

/// What an action runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exec {
    /// `python:3`, `nodejs:20`, `blackbox`, ...
    pub kind: String,
    /// Source code (or base64 when `binary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Docker image of a blackbox action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Entry function name (default `main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
    /// Whether `code` is base64 of a zip.
    #[serde(default)]
    pub binary: bool,
    /// A sequence's actions, `/ns[/pkg]/name` each (see [`crate::sequence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
}

/// Per-action limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// Milliseconds.
    pub timeout: u64,
    /// MB.
    pub memory: u64,
    /// MB of logs.
    pub logs: u64,
    /// Activations one container runs at once.
    pub concurrency: u64,
}

impl Default for ActionLimits {
    fn default() -> Self {
        Self {
            timeout: TIMEOUT_DEFAULT_MS,
            memory: MEMORY_DEFAULT_MB,
            logs: LOGS_DEFAULT_MB,
            concurrency: CONCURRENCY_DEFAULT,
        }
    }
}

/// Limits as they may appear in a PUT body: every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LimitsPut {
    /// Milliseconds.
    pub timeout: Option<u64>,
    /// MB.
    pub memory: Option<u64>,
    /// MB.
    pub logs: Option<u64>,
    /// Activations at once.
    pub concurrency: Option<u64>,
}

impl ActionLimits {
    /// Merges `put` over `self`, checking every bound.
    pub fn merged(self, put: &LimitsPut) -> Result<Self, WhiskError> {
        let l = Self {
            timeout: put.timeout.unwrap_or(self.timeout),
            memory: put.memory.unwrap_or(self.memory),
            logs: put.logs.unwrap_or(self.logs),
            concurrency: put.concurrency.unwrap_or(self.concurrency),
        };
        check_range(
            "timeout",
            l.timeout,
            TIMEOUT_MIN_MS,
            TIMEOUT_MAX_MS,
            "milliseconds",
        )?;
        check_range("memory", l.memory, MEMORY_MIN_MB, MEMORY_MAX_MB, "MB")?;
        check_range("logs", l.logs, 0, LOGS_MAX_MB, "MB")?;
        check_range(
            "concurrency",
            l.concurrency,
            1,
            concurrency_max(),
            "activations",
        )?;
        Ok(l)
    }
}

fn check_range(what: &str, v: u64, min: u64, max: u64, unit: &str) -> Result<(), WhiskError> {
    if v < min || v > max {
        return Err(WhiskError::bad_request(format!(
            "{what} {v} exceeds allowed threshold of {min}..{max} {unit}."
        )));
    }
    Ok(())
}

/// An action document, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `namespace[/package]`.
    pub namespace: String,
    /// The action's own name.
    pub name: String,
    /// Semantic version, bumped on each update.
    pub version: String,
    /// Shared publicly.
    pub publish: bool,
    /// What it runs.
    pub exec: Exec,
    /// Default parameters.
    pub parameters: Vec<KeyValue>,
    /// Annotations.
    pub annotations: Vec<KeyValue>,
    /// Limits.
    pub limits: ActionLimits,
    /// Last update, epoch ms.
    pub updated: i64,
}

/// The body of `PUT .../actions/{name}`: every field optional, merged over an existing action.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionPut {
    /// What it runs (required on create).
    pub exec: Option<Exec>,
    /// Replaces the parameters when given.
    pub parameters: Option<Vec<KeyValue>>,
    /// Replaces the annotations when given.
    pub annotations: Option<Vec<KeyValue>>,
    /// Annotation keys to remove.
    #[serde(rename = "delAnnotations")]
    pub del_annotations: Option<Vec<String>>,
    /// Merged per field.
    pub limits: Option<LimitsPut>,
    /// Explicit version.
    pub version: Option<String>,
    /// Shared publicly.
    pub publish: Option<bool>,
}

impl ActionPut {
    /// Parses a PUT body, turning serde's complaint into a 400.
    pub fn from_json(body: &[u8]) -> Result<Self, WhiskError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            WhiskError::bad_request(format!("The request content was malformed:\n{e}"))
        })
    }

    /// Builds the document to store: a new action when `existing` is `None`, else the update.
    pub fn apply(
        self,
        fqn: &FullyQualifiedName,
        existing: Option<&Action>,
        now: i64,
    ) -> Result<Action, WhiskError> {
        let (exec_given, parameters_given) = (self.exec.is_some(), self.parameters.is_some());
        let exec = match (self.exec, existing) {
            (Some(e), _) => validate_exec(e)?,
            (None, Some(a)) => a.exec.clone(),
            (None, None) => return Err(WhiskError::bad_request("exec undefined")),
        };
        let base_limits = existing.map(|a| a.limits).unwrap_or_default();
        let limits = base_limits.merged(&self.limits.unwrap_or_default())?;
        check_concurrent(&exec, &limits)?;
        let parameters = match self.parameters {
            Some(p) => p,
            None => existing.map(|a| a.parameters.clone()).unwrap_or_default(),
        };
        check_keys(&parameters, "parameters")?;
        let parameters = crate::sequence::parameters(&exec, exec_given, parameters_given, existing)
            .unwrap_or(parameters);
        let mut annotations = match self.annotations {
            Some(a) => a,
            None => existing.map(|a| a.annotations.clone()).unwrap_or_default(),
        };
        check_keys(&annotations, "annotations")?;
        if let Some(del) = &self.del_annotations {
            annotations.retain(|kv| !del.contains(&kv.key));
        }
        if existing.is_none() && lookup(&annotations, "provide-api-key").is_none() {
            annotations.push(KeyValue {
                key: "provide-api-key".into(),
                value: Value::Bool(false),
            });
        }
        upsert(
            &mut annotations,
            "exec",
            Value::String(exec_annotation(&exec.kind)),
        );
        let version = match (self.version, existing) {
            (Some(v), _) => v,
            (None, Some(a)) => bump_patch(&a.version),
            (None, None) => "0.0.1".to_string(),
        };
        Ok(Action {
            namespace: fqn.path(),
            name: fqn.name.to_string(),
            version,
            publish: self
                .publish
                .or(existing.map(|a| a.publish))
                .unwrap_or(false),
            exec,
            parameters,
            annotations,
            limits,
            updated: now,
        })
    }
}

/// 400 when a `[{key, value}]` list has an empty key.
pub(crate) fn check_keys(list: &[KeyValue], what: &str) -> Result<(), WhiskError> {
    if list.iter().any(|kv| kv.key.is_empty()) {
        return Err(WhiskError::bad_request(format!(
            "The {what} contain an empty key."
        )));
    }
    Ok(())
}

/// 400 when `limits.concurrency` is above 1 for a kind whose containers run one activation at
/// a time (the kinds table's `concurrent` flag); sequences run in no container of their own.
fn check_concurrent(exec: &Exec, limits: &ActionLimits) -> Result<(), WhiskError> {
    if limits.concurrency <= 1
        || exec.kind == crate::sequence::SEQUENCE
        || kinds::concurrent(&exec.kind, exec.image.as_deref())
    {
        return Ok(());
    }
    Err(WhiskError::bad_request(format!(
        "The kind '{}' does not support concurrent activations: limits.concurrency must be 1, \
         not {}.",
        exec.kind, limits.concurrency
    )))
}

/// The `exec` annotation OpenWhisk adds: the whole kind (`python:3`, `blackbox`).
fn exec_annotation(kind: &str) -> String {
    kind.to_string()
}

fn validate_exec(mut e: Exec) -> Result<Exec, WhiskError> {
    if e.kind == crate::sequence::SEQUENCE {
        return crate::sequence::validate_exec(e);
    }
    e.components = None;
    // As OpenWhisk: a code string decides `binary` itself, whatever the client said.
    e.binary = e.code.as_deref().is_some_and(is_binary_code);
    if e.kind == kinds::BLACKBOX {
        match &e.image {
            Some(img) if !img.trim().is_empty() => {}
            _ => {
                return Err(WhiskError::bad_request(
                    "exec image undefined for blackbox action",
                ))
            }
        }
    } else {
        e.kind = kinds::resolve(&e.kind).ok_or_else(|| {
            WhiskError::bad_request(format!("kind '{}' not in Set({})", e.kind, kinds::names()))
        })?;
        if e.code.as_deref().map(str::is_empty).unwrap_or(true) {
            return Err(WhiskError::bad_request("exec malformed: code undefined"));
        }
    }
    if let Some(m) = &e.main {
        if m.is_empty()
            || !m
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(WhiskError::bad_request(format!(
                "exec malformed: main '{m}' is not a valid function name"
            )));
        }
    }
    Ok(e)
}

/// Whether an action's code is base64 (of a zip, a jar or an executable), as OpenWhisk's
/// `Exec.isBinaryCode` decides: trimmed, non-empty, a length that is a multiple of 4 and
/// only the base64 alphabet, with at most two `=` of padding at the end.
pub fn is_binary_code(code: &str) -> bool {
    let t = code.trim().as_bytes();
    if t.is_empty() || !t.len().is_multiple_of(4) {
        return false;
    }
    let padding = t.iter().rev().take_while(|&&b| b == b'=').count();
    let alphabet = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
    padding <= 2 && t[..t.len() - padding].iter().all(alphabet)
}

/// `0.0.1` → `0.0.2`; anything unparsable restarts at `0.0.1`.
pub fn bump_patch(v: &str) -> String {
    let parts: Vec<u64> = v.split('.').filter_map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        // A patch (or minor) number at its largest carries into the next part, never overflows.
        [a, b, c] => match (c.checked_add(1), b.checked_add(1), a.checked_add(1)) {
            (Some(c), _, _) => format!("{a}.{b}.{c}"),
            (None, Some(b), _) => format!("{a}.{b}.0"),
            (None, None, Some(a)) => format!("{a}.0.0"),
            (None, None, None) => "0.0.1".to_string(),
        },
        _ => "0.0.1".to_string(),
    }
}

#[cfg(test)]
mod bump_tests {
    use super::bump_patch;

    #[test]
    fn versions_bump_without_overflow() {
        assert_eq!(bump_patch("0.0.1"), "0.0.2");
        assert_eq!(bump_patch("1.2.18446744073709551615"), "1.3.0");
        assert_eq!(bump_patch("0.0.18446744073709551615"), "0.1.0");
        assert_eq!(
            bump_patch("7.18446744073709551615.18446744073709551615"),
            "8.0.0"
        );
        let max = u64::MAX;
        assert_eq!(bump_patch(&format!("{max}.{max}.{max}")), "0.0.1");
        assert_eq!(bump_patch("x.y"), "0.0.1");
        assert_eq!(bump_patch("1.2.99999999999999999999999"), "0.0.1");
    }
}

impl Action {
    /// The fully qualified name of this action.
    pub fn fqn(&self) -> Result<FullyQualifiedName, WhiskError> {
        let mut parts = self.namespace.splitn(2, '/');
        let ns = EntityName::new(parts.next().unwrap_or_default())?;
        let package = parts.next().map(EntityName::new).transpose()?;
        Ok(FullyQualifiedName {
            namespace: ns,
            package,
            name: EntityName::new(&self.name)?,
        })
    }

    /// The list summary: no code, `exec: {binary}` only.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "limits": self.limits,
            "exec": {"binary": self.exec.binary},
            "updated": self.updated,
        })
    }

    /// The full view; without code when `code` is false.
    pub fn view(&self, code: bool) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if !code {
            if let Some(exec) = v.get_mut("exec").and_then(Value::as_object_mut) {
                exec.remove("code");
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fqn() -> FullyQualifiedName {
        FullyQualifiedName::parse("fib", "guest").unwrap()
    }

    #[test]
    fn create_then_update_bumps_version_and_keeps_fields() {
        let put = ActionPut::from_json(br#"{"exec":{"kind":"python:default","code":"def main(a): return a"},"parameters":[{"key":"n","value":3}]}"#).unwrap();
        let a = put.apply(&fqn(), None, 1).unwrap();
        assert_eq!(a.version, "0.0.1");
        assert_eq!(a.exec.kind, "python:3");
        assert_eq!(
            lookup(&a.annotations, "exec"),
            Some(&Value::String("python:3".into()))
        );
        assert_eq!(
            lookup(&a.annotations, "provide-api-key"),
            Some(&Value::Bool(false))
        );
        let upd = ActionPut::from_json(br#"{"limits":{"timeout":1000}}"#).unwrap();
        let b = upd.apply(&fqn(), Some(&a), 2).unwrap();
        assert_eq!(b.version, "0.0.2");
        assert_eq!(b.limits.timeout, 1000);
        assert_eq!(b.limits.memory, 256);
        assert_eq!(b.parameters, a.parameters);
    }

    #[test]
    fn binary_is_inferred_from_the_code() {
        assert!(is_binary_code("UEsDBAoAAAAAAA=="));
        assert!(is_binary_code(" UEsD\n"));
        assert!(is_binary_code("abcd"));
        assert!(!is_binary_code(""));
        assert!(!is_binary_code("   "));
        assert!(!is_binary_code("abc"));
        assert!(!is_binary_code("ab=c"));
        assert!(!is_binary_code("a==="));
        assert!(!is_binary_code("def main(args): return args"));
        let zip = br#"{"exec":{"kind":"python:3","code":"UEsDBAoAAAAAAA=="}}"#;
        let a = ActionPut::from_json(zip)
            .unwrap()
            .apply(&fqn(), None, 0)
            .unwrap();
        assert!(a.exec.binary);
        let claimed =
            br#"{"exec":{"kind":"python:3","code":"def main(a): return a","binary":true}}"#;
        let a = ActionPut::from_json(claimed)
            .unwrap()
            .apply(&fqn(), None, 0)
            .unwrap();
        assert!(!a.exec.binary);
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(ActionPut::from_json(b"{").is_err());
        assert!(ActionPut::from_json(br#"{"exec": 3}"#).is_err());
        assert!(ActionPut::from_json(b"{}")
            .unwrap()
            .apply(&fqn(), None, 0)
            .is_err());
        let bad_kind = ActionPut::from_json(br#"{"exec":{"kind":"cobol:1","code":"x"}}"#).unwrap();
        assert!(bad_kind.apply(&fqn(), None, 0).is_err());
        let bad_limit = ActionPut::from_json(
            br#"{"exec":{"kind":"python:3","code":"x"},"limits":{"timeout":50}}"#,
        )
        .unwrap();
        assert!(bad_limit.apply(&fqn(), None, 0).is_err());
        let no_image = ActionPut::from_json(br#"{"exec":{"kind":"blackbox"}}"#).unwrap();
        assert!(no_image.apply(&fqn(), None, 0).is_err());
    }
}
