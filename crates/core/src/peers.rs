//! The invocation parameters that make an activation a named peer instance: `instanceID`
//! (a string or a number; the number 3 and the string "3" name the same instance) and the
//! optional `group` that scopes who sees whom.

use crate::error::WhiskError;
use serde_json::{Map, Value};

/// Parameter naming the instance.
pub const INSTANCE_ID_PARAM: &str = "instanceID";
/// Parameter naming the peer group.
pub const GROUP_PARAM: &str = "group";
/// Longest instance id or group.
pub const MAX_LEN: usize = 256;

/// The instance id and group of an activation, when it has an `instanceID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The instance id as text.
    pub id: String,
    /// The group (`default_group` when the parameter is absent).
    pub group: String,
}

/// Reads `instanceID` and `group` from the parameters; `Ok(None)` when there is no
/// `instanceID`. Rejects ids that would break the seed's `name=ip&name=ip` file.
pub fn instance(
    params: &Map<String, Value>,
    default_group: &str,
) -> Result<Option<Instance>, WhiskError> {
    let id = match params.get(INSTANCE_ID_PARAM) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => n.to_string(),
        },
        Some(_) => {
            return Err(WhiskError::bad_request(
                "The parameter 'instanceID' must be a string or a number.",
            ))
        }
    };
    check("instanceID", &id)?;
    if id.contains('=') || id.contains('&') {
        return Err(WhiskError::bad_request(
            "The parameter 'instanceID' must not contain '=' or '&' (they separate entries of addrMap.txt).",
        ));
    }
    let group = match params.get(GROUP_PARAM) {
        None | Some(Value::Null) => default_group.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(WhiskError::bad_request(
                "The parameter 'group' must be a string.",
            ))
        }
    };
    check("group", &group)?;
    if params.contains_key(GROUP_PARAM) && (group == "." || group == ".." || group.contains('/')) {
        return Err(WhiskError::bad_request(
            "The parameter 'group' must not be '.' or '..' or contain '/'.",
        ));
    }
    Ok(Some(Instance { id, group }))
}

fn check(what: &str, v: &str) -> Result<(), WhiskError> {
    if v.is_empty() {
        return Err(WhiskError::bad_request(format!(
            "The parameter '{what}' must not be empty."
        )));
    }
    if v.chars().count() > MAX_LEN {
        return Err(WhiskError::bad_request(format!(
            "The parameter '{what}' is longer than {MAX_LEN} characters."
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(WhiskError::bad_request(format!(
            "The parameter '{what}' must not contain control characters."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_and_strings_name_the_same_instance() {
        let a = instance(&params(json!({"instanceID": 3})), "g")
            .unwrap()
            .unwrap();
        let b = instance(&params(json!({"instanceID": "3"})), "g")
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.group, "g");
        let c = instance(
            &params(json!({"instanceID": "myname0", "group": "ring"})),
            "g",
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.id.as_str(), c.group.as_str()), ("myname0", "ring"));
        assert_eq!(instance(&params(json!({"x": 1})), "g").unwrap(), None);
    }

    #[test]
    fn rejects_groups_that_look_like_paths() {
        for bad in ["..", ".", "../x", "a/b", "/"] {
            let e = instance(&params(json!({"instanceID": "0", "group": bad})), "g").unwrap_err();
            assert!(
                e.message.contains("'group' must not be"),
                "{bad}: {}",
                e.message
            );
        }
        // The default group (the action's path) may hold a '/'; a '.' inside a name is fine.
        let i = instance(&params(json!({"instanceID": "0"})), "pkg/act")
            .unwrap()
            .unwrap();
        assert_eq!(i.group, "pkg/act");
        assert!(instance(&params(json!({"instanceID": "0", "group": "a..b"})), "g").is_ok());
    }

    #[test]
    fn rejects_ids_that_break_the_file_format() {
        for bad in [
            json!(""),
            json!("a=b"),
            json!("a&b"),
            json!("x".repeat(10_000)),
            json!({"a": 1}),
            json!("a\nb"),
        ] {
            assert!(instance(&params(json!({"instanceID": bad})), "g").is_err());
        }
        assert!(instance(&params(json!({"instanceID": "a", "group": 5})), "g").is_err());
    }
}
