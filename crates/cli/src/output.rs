//! Printing as `wsk` prints: pretty JSON with four-space indentation, `ok:` lines, and the
//! plain tables of `list` commands. The formatting functions return strings so they can be
//! tested; callers print them.

use serde::Serialize;
use serde_json::Value;

/// JSON with four-space indentation (Go's `json.MarshalIndent(v, "", "    ")`), no trailing
/// newline.
pub fn pretty(value: &Value) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => value.to_string(),
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    println!("{}", pretty(value));
}

/// Prints `value` as pretty JSON on stderr.
pub fn eprint_json(value: &Value) {
    eprintln!("{}", pretty(value));
}

/// The value of annotation `key` in an entity's `annotations` array.
pub fn annotation<'a>(entity: &'a Value, key: &str) -> Option<&'a Value> {
    entity
        .get("annotations")?
        .as_array()?
        .iter()
        .find(|kv| kv.get("key").and_then(Value::as_str) == Some(key))
        .and_then(|kv| kv.get("value"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `wsk action list`: header `actions`, then `%-70s %s %s` (fully qualified name,
/// `private`/`shared`, kind from the `exec` annotation).
pub fn action_table(actions: &[Value]) -> String {
    let mut out = String::from("actions\n");
    for a in actions {
        let name = format!("/{}/{}", str_field(a, "namespace"), str_field(a, "name"));
        let publish = if a.get("publish").and_then(Value::as_bool).unwrap_or(false) {
            "shared"
        } else {
            "private"
        };
        let kind = annotation(a, "exec")
            .and_then(Value::as_str)
            .or_else(|| {
                a.get("exec")
                    .and_then(|e| e.get("kind"))
                    .and_then(Value::as_str)
            })
            .unwrap_or("");
        out.push_str(&format!("{name:<70} {publish} {kind}\n"));
    }
    out
}

/// `wsk activation list`: header `activations`, then `<id> <name>` lines.
pub fn activation_table(activations: &[Value]) -> String {
    let mut out = String::from("activations\n");
    for a in activations {
        out.push_str(&format!(
            "{} {:<20}\n",
            str_field(a, "activationId"),
            str_field(a, "name")
        ));
    }
    out
}

/// `wsk namespace list`: header `namespaces`, then one per line.
pub fn namespace_table(namespaces: &[Value]) -> String {
    let mut out = String::from("namespaces\n");
    for ns in namespaces {
        match ns {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    out
}

/// A log line without its `<time> stdout: ` / `<time> stderr: ` prefix (`--strip`).
pub fn strip_log_line(line: &str) -> &str {
    for marker in [" stdout:", " stderr:"] {
        if let Some(i) = line.find(marker) {
            let rest = &line[i + marker.len()..];
            return rest.strip_prefix(' ').unwrap_or(rest);
        }
    }
    line
}

/// The `logs` array of an activation (or of a `{"logs": [...]}` answer) as lines.
pub fn log_lines(v: &Value) -> Vec<String> {
    v.get("logs")
        .and_then(Value::as_array)
        .map(|logs| {
            logs.iter()
                .map(|l| match l {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_uses_four_spaces_and_keeps_order() {
        let v: Value = serde_json::from_str(r#"{"z": 1, "a": [true]}"#).unwrap();
        assert_eq!(
            pretty(&v),
            "{\n    \"z\": 1,\n    \"a\": [\n        true\n    ]\n}"
        );
        assert_eq!(pretty(&json!({})), "{}");
    }

    #[test]
    fn action_table_like_wsk() {
        let actions = vec![
            json!({"namespace": "guest", "name": "fib", "publish": false,
                   "annotations": [{"key": "exec", "value": "python:3"}]}),
            json!({"namespace": "guest", "name": "pkg/x", "publish": true, "exec": {"kind": "blackbox"}}),
        ];
        let t = action_table(&actions);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "actions");
        assert_eq!(lines[1], format!("{:<70} private python:3", "/guest/fib"));
        assert_eq!(lines[2], format!("{:<70} shared blackbox", "/guest/pkg/x"));
        assert_eq!(action_table(&[]), "actions\n");
    }

    #[test]
    fn activation_and_namespace_tables() {
        let t = activation_table(&[json!({"activationId": "abc", "name": "fib"})]);
        assert_eq!(t, format!("activations\nabc {:<20}\n", "fib"));
        assert_eq!(namespace_table(&[json!("guest")]), "namespaces\nguest\n");
    }

    #[test]
    fn strips_log_prefixes() {
        assert_eq!(
            strip_log_line("2019-05-10T12:00:00.1Z stdout: hello: x"),
            "hello: x"
        );
        assert_eq!(
            strip_log_line("2019-05-10T12:00:00.1Z stderr: oops"),
            "oops"
        );
        assert_eq!(strip_log_line("2019-05-10T12:00:00.1Z stdout:"), "");
        assert_eq!(strip_log_line("plain"), "plain");
        assert_eq!(
            log_lines(&json!({"logs": ["a", 1]})),
            vec!["a".to_string(), "1".to_string()]
        );
        assert!(log_lines(&json!({})).is_empty());
    }
}
