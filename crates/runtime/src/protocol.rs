//! The bodies of `/init` and `/run`, and the messages sent to the launcher.
//!
//! `/init`: `{"value": {"name", "main", "code", "binary", "env"}}`.
//! `/run`: `{"value": {...}, "namespace", "action_name", ...}`; every key but
//! `value` becomes the env var `__OW_<KEY>` for that run; `traceparent` (the invoker's `/run`
//! span) is also `TRACEPARENT`, the name OpenTelemetry SDKs read a parent context from.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ProxyError;

/// A parsed `/init` request.
#[derive(Debug, Clone, PartialEq)]
pub struct InitRequest {
    /// The action's name (informational).
    pub name: String,
    /// The function to call (default `main`).
    pub main: String,
    /// Source text, or base64 of a zip when `binary`.
    pub code: String,
    /// Whether `code` is a base64-encoded zip.
    pub binary: bool,
    /// Extra environment for the function, values stringified.
    pub env: Map<String, Value>,
}

/// A parsed `/run` request, ready to be sent to the launcher.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRequest {
    /// The function's argument.
    pub value: Value,
    /// `__OW_*` variables for this run.
    pub env: Map<String, Value>,
}

impl RunRequest {
    /// The request as one JSON line for the launcher's stdin.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a JSON value always serializes");
        line.push(b'\n');
        line
    }
}

/// Env var values are strings; anything else is sent as its JSON text.
pub fn stringify(value: Value) -> Value {
    match value {
        Value::String(_) => value,
        other => Value::String(other.to_string()),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ProxyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ProxyError::BadRequest(
            "The request body is not a JSON object.".into(),
        )),
        Err(err) => Err(ProxyError::BadRequest(format!(
            "The request body is not valid JSON: {err}"
        ))),
    }
}

/// Parses a `/init` body.
pub fn parse_init(body: &[u8]) -> Result<InitRequest, ProxyError> {
    let mut outer = parse_object(body)?;
    let Some(Value::Object(mut value)) = outer.remove("value") else {
        return Err(ProxyError::BadRequest(
            "Missing \"value\" object in the init request.".into(),
        ));
    };
    let code = match value.remove("code") {
        Some(Value::String(code)) if !code.is_empty() => code,
        _ => {
            return Err(ProxyError::BadRequest(
                "Missing main/no code to execute.".into(),
            ))
        }
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let binary = match value.remove("binary") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let env = match value.remove("env") {
        Some(Value::Object(env)) => env.into_iter().map(|(k, v)| (k, stringify(v))).collect(),
        _ => Map::new(),
    };
    Ok(InitRequest {
        name: text(value.remove("name")).unwrap_or_default(),
        main: text(value.remove("main")).unwrap_or_else(|| "main".into()),
        code,
        binary,
        env,
    })
}

/// The environment variable OpenTelemetry SDKs read a parent context from.
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";

/// Parses a `/run` body; keys other than `value` become `__OW_<KEY>` (`traceparent` also
/// [`TRACEPARENT_ENV`]).
pub fn parse_run(body: &[u8]) -> Result<RunRequest, ProxyError> {
    let outer = parse_object(body)?;
    let mut value = Value::Object(Map::new());
    let mut env = Map::new();
    for (key, v) in outer {
        if key == "value" {
            value = v;
        } else {
            if key == "traceparent" {
                env.insert(TRACEPARENT_ENV.to_string(), stringify(v.clone()));
            }
            env.insert(format!("__OW_{}", key.to_ascii_uppercase()), stringify(v));
        }
    }
    Ok(RunRequest { value, env })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn init_defaults_and_env_stringified() {
        let body = json!({"value": {"code": "x", "env": {"A": 1, "B": "b"}}});
        let init = parse_init(body.to_string().as_bytes()).unwrap();
        assert_eq!(init.main, "main");
        assert!(!init.binary);
        assert_eq!(init.env["A"], json!("1"));
        assert_eq!(init.env["B"], json!("b"));
    }

    #[test]
    fn init_rejects_missing_value_or_code() {
        assert!(matches!(
            parse_init(b"nope"),
            Err(ProxyError::BadRequest(_))
        ));
        assert!(matches!(parse_init(b"{}"), Err(ProxyError::BadRequest(_))));
        let no_code = json!({"value": {"main": "main"}}).to_string();
        assert!(matches!(
            parse_init(no_code.as_bytes()),
            Err(ProxyError::BadRequest(_))
        ));
    }

    #[test]
    fn run_exports_other_keys() {
        let body = json!({"value": {"x": 1}, "activation_id": "a1", "deadline": 5});
        let run = parse_run(body.to_string().as_bytes()).unwrap();
        assert_eq!(run.value, json!({"x": 1}));
        assert_eq!(run.env["__OW_ACTIVATION_ID"], json!("a1"));
        assert_eq!(run.env["__OW_DEADLINE"], json!("5"));
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let body =
            json!({"value": {}, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "traceparent": tp});
        let run = parse_run(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            run.env["__OW_TRACE_ID"],
            json!("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(run.env["__OW_TRACEPARENT"], json!(tp));
        assert_eq!(run.env[TRACEPARENT_ENV], json!(tp));
        let line = run.to_line();
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
