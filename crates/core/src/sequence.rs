//! Sequences and conductor actions as OpenWhisk defines them, independent of how they run:
//! the `sequence` exec kind and its components (fully qualified, `_` resolved to the caller's
//! namespace, stored with a leading slash and mirrored in the `_actions` parameter), the
//! `conductor` annotation, a conductor's continuation (`{action, params, state}`), the length
//! limit, and OpenWhisk's messages for every way a sequence or a composition fails.
//!
//! The controller's `Sequences` service runs them; this module only says what they are.

use crate::entity::{lookup, Action, ActionPut, Exec, KeyValue};
use crate::error::WhiskError;
use crate::names::{FullyQualifiedName, DEFAULT_NAMESPACE};
use serde_json::{Map, Value};

/// The exec kind of a sequence.
pub const SEQUENCE: &str = "sequence";
/// The annotation that makes an action a conductor.
pub const CONDUCTOR: &str = "conductor";
/// The parameter OpenWhisk keeps a sequence's components in (a leftover of its first design).
pub const ACTIONS_PARAM: &str = "_actions";
/// OpenWhisk's `limits.actions.sequence.maxLength`: most atomic actions one sequence runs
/// (nested sequences inlined), and most components one composition invokes.
pub const SEQUENCE_LENGTH_DEFAULT: usize = 50;

/// A sequence has more atomic actions than allowed (400 on create, the record at invoke).
pub const TOO_LONG: &str = "Too many actions in the sequence.";
/// A sequence without components.
pub const NO_COMPONENT: &str = "No component specified for the sequence.";
/// A sequence that contains itself, directly or through other sequences.
pub const CYCLIC: &str = "Sequence may not refer to itself.";
/// A component that does not exist (400 on create, an application error at invoke).
pub const COMPONENT_NOT_FOUND: &str = "Sequence component does not exist.";
/// A component could not be invoked at all.
pub const FAILED: &str = "Sequence failed.";
/// A component name with fewer than two segments.
pub const MALFORMED_NAME: &str = "The fully qualified name of the entity must contain at least the namespace and the name of the entity.";
/// A composition invoked more components (or its conductor more often) than allowed.
pub const COMPOSITION_TOO_LONG: &str = "Too many actions in the composition.";
/// A conductor or component of a composition could not be invoked at all.
pub const COMPOSITION_FAILURE: &str = "Activation failure during composition.";

/// A component's record did not arrive within its wait.
pub fn retrieve_timeout(id: &str) -> String {
    format!("Timeout reached when retrieving activation {id} for sequence component.")
}

/// A step of a composition did not complete within its wait.
pub fn composition_timeout(id: &str) -> String {
    format!("Timeout reached when retrieving activation {id} during composition.")
}

/// A conductor named its next action with something that is not an action name.
pub fn component_invalid(value: &Value) -> String {
    format!("Failed to parse action name from json value {value} during composition.")
}

/// A conductor named an action that does not exist.
pub fn component_not_found(name: &FullyQualifiedName) -> String {
    format!("Failed to resolve action with name '{name}' during composition.")
}

/// A conductor named an action the caller may not invoke.
pub fn component_not_accessible(name: &FullyQualifiedName) -> String {
    format!("Failed entitlement check for action with name '{name}' during composition.")
}

/// True when `action` is a sequence.
pub fn is_sequence(action: &Action) -> bool {
    action.exec.kind == SEQUENCE
}

/// True when `action` is a conductor: an action (not a sequence) whose `conductor` annotation
/// is truthy (anything but absent, `false`, `0`, `null` and `""`).
pub fn is_conductor(action: &Action) -> bool {
    !is_sequence(action)
        && match lookup(&action.annotations, CONDUCTOR) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        }
}

/// Parses a component as OpenWhisk's PUT body names it: `/ns/name`, `/ns/pkg/name` (the
/// leading slash optional), `_` standing for `namespace`.
pub fn parse_component(s: &str, namespace: &str) -> Result<FullyQualifiedName, WhiskError> {
    let segments = s.trim_start_matches('/').split('/').count();
    if segments < 2 {
        return Err(WhiskError::bad_request(format!(
            "The request content was malformed:\nrequirement failed: {MALFORMED_NAME}"
        )));
    }
    let absolute = if s.starts_with('/') {
        s.to_string()
    } else {
        format!("/{s}")
    };
    FullyQualifiedName::parse(&absolute, namespace)
}

/// The stored form of a component: `/ns[/pkg]/name`.
pub fn stored_name(fqn: &FullyQualifiedName) -> String {
    format!("/{fqn}")
}

/// Rewrites a sequence's components in `put` to their stored form, `_` resolved to
/// `namespace` (the caller's); checks their count against `max`. Other bodies are untouched.
pub fn resolve_put(put: &mut ActionPut, namespace: &str, max: usize) -> Result<(), WhiskError> {
    let Some(exec) = put.exec.as_mut() else {
        return Ok(());
    };
    if exec.kind.trim().to_ascii_lowercase() != SEQUENCE {
        return Ok(());
    }
    exec.kind = SEQUENCE.to_string();
    let Some(components) = exec.components.as_mut() else {
        return Err(WhiskError::bad_request(
            "The request content was malformed:\n'components' must be defined for sequence kind",
        ));
    };
    for c in components.iter_mut() {
        *c = stored_name(&parse_component(c, namespace)?);
    }
    if components.len() > max {
        return Err(WhiskError::bad_request(TOO_LONG));
    }
    if components.is_empty() {
        return Err(WhiskError::bad_request(NO_COMPONENT));
    }
    Ok(())
}

/// The components of sequence `action`, `_` resolved to `namespace` (empty for other actions).
pub fn components(action: &Action, namespace: &str) -> Result<Vec<FullyQualifiedName>, WhiskError> {
    let Some(list) = action.exec.components.as_deref() else {
        return Ok(Vec::new());
    };
    list.iter().map(|c| parse_component(c, namespace)).collect()
}

/// Checks a sequence exec on its way into the store: components present and well formed;
/// code, image and main dropped.
pub(crate) fn validate_exec(e: Exec) -> Result<Exec, WhiskError> {
    let components = match e.components {
        Some(c) if !c.is_empty() => c,
        Some(_) => return Err(WhiskError::bad_request(NO_COMPONENT)),
        None => return Err(WhiskError::bad_request(
            "The request content was malformed:\n'components' must be defined for sequence kind",
        )),
    };
    for c in &components {
        parse_component(c, DEFAULT_NAMESPACE)?;
    }
    Ok(Exec {
        kind: SEQUENCE.to_string(),
        code: None,
        image: None,
        main: None,
        binary: false,
        components: Some(components),
    })
}

/// The parameters OpenWhisk gives an action on create or update when a sequence is involved,
/// or `None` for the ordinary rules: a sequence's are `_actions` (its components; any given
/// are discarded); an update that keeps a sequence keeps its parameters; turning a sequence
/// into another kind without parameters leaves none.
pub(crate) fn parameters(
    exec: &Exec,
    exec_given: bool,
    parameters_given: bool,
    existing: Option<&Action>,
) -> Option<Vec<KeyValue>> {
    let was_sequence = existing.is_some_and(is_sequence);
    if exec.kind == SEQUENCE && exec_given {
        let list = exec.components.clone().unwrap_or_default();
        return Some(vec![KeyValue {
            key: ACTIONS_PARAM.into(),
            value: Value::from(list),
        }]);
    }
    match (exec_given, was_sequence) {
        (false, true) => existing.map(|a| a.parameters.clone()),
        (true, true) if !parameters_given => Some(Vec::new()),
        _ => None,
    }
}

/// What a conductor's result asks for next.
#[derive(Debug, Clone, PartialEq)]
pub struct Continuation {
    /// The next action's name, as the conductor gave it (absent: the composition ends).
    pub action: Option<Value>,
    /// The next action's parameters (a non-object boxed as `{value}`).
    pub params: Option<Map<String, Value>>,
    /// Carried into the conductor's next input (a non-object boxed as `{state}`).
    pub state: Option<Map<String, Value>>,
}

impl Continuation {
    /// Reads a conductor's result (a non-object reads as `{}`).
    pub fn of(result: &Value) -> Self {
        let empty = Map::new();
        let fields = result.as_object().unwrap_or(&empty);
        let boxed = |key: &str, wrap: &str| {
            fields.get(key).map(|v| match v {
                Value::Object(o) => o.clone(),
                other => Map::from_iter([(wrap.to_string(), other.clone())]),
            })
        };
        Self {
            action: fields.get("action").cloned(),
            params: boxed("params", "value"),
            state: boxed("state", "state"),
        }
    }
}

/// Resolves the action a conductor names, as OpenWhisk does: a string of one to three path
/// segments; one or two without a leading slash are in `namespace` (`pkg/name`), a leading
/// slash needs at least two; `_` stands for `namespace`. `None` when it names no action.
pub fn resolve_name(name: &Value, namespace: &str) -> Option<FullyQualifiedName> {
    let s = name.as_str()?;
    let absolute = s.starts_with('/');
    let segments = s.trim_start_matches('/').split('/').count();
    if !(1..=3).contains(&segments) || (absolute && segments == 1) {
        return None;
    }
    FullyQualifiedName::parse(s, namespace).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(body: Value) -> ActionPut {
        ActionPut::from_json(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn components_are_qualified_and_checked() {
        let mut p = put(
            json!({"exec": {"kind": "sequence", "components": ["/_/a", "guest/pkg/b", "/other/c"]}}),
        );
        resolve_put(&mut p, "guest", 50).unwrap();
        assert_eq!(
            p.exec.as_ref().unwrap().components.as_deref().unwrap(),
            ["/guest/a", "/guest/pkg/b", "/other/c"]
        );
        let mut short = put(json!({"exec": {"kind": "sequence", "components": ["a"]}}));
        let e = resolve_put(&mut short, "guest", 50).unwrap_err();
        assert!(e.message.contains(MALFORMED_NAME), "{}", e.message);
        let mut none = put(json!({"exec": {"kind": "sequence", "components": []}}));
        assert_eq!(
            resolve_put(&mut none, "guest", 50).unwrap_err().message,
            NO_COMPONENT
        );
        let mut long = put(json!({"exec": {"kind": "sequence", "components": ["/_/a", "/_/b"]}}));
        assert_eq!(
            resolve_put(&mut long, "guest", 1).unwrap_err().message,
            TOO_LONG
        );
        let mut missing = put(json!({"exec": {"kind": "sequence"}}));
        assert!(resolve_put(&mut missing, "guest", 50).is_err());
    }

    #[test]
    fn a_sequence_is_stored_with_its_actions_parameter() {
        let fqn = FullyQualifiedName::parse("s", "guest").unwrap();
        let mut p = put(
            json!({"exec": {"kind": "sequence", "components": ["/_/a"]}, "parameters": [{"key": "x", "value": 1}]}),
        );
        resolve_put(&mut p, "guest", 50).unwrap();
        let a = p.apply(&fqn, None, 0).unwrap();
        assert_eq!(a.exec.kind, SEQUENCE);
        assert_eq!(a.exec.code, None);
        assert_eq!(
            lookup(&a.parameters, ACTIONS_PARAM),
            Some(&json!(["/guest/a"]))
        );
        assert_eq!(a.parameters.len(), 1);
        assert_eq!(lookup(&a.annotations, "exec"), Some(&json!("sequence")));
        // An update without exec keeps the components and their parameter.
        let b = put(json!({"parameters": [{"key": "y", "value": 2}]}))
            .apply(&fqn, Some(&a), 1)
            .unwrap();
        assert_eq!(b.parameters, a.parameters);
        // Turned into code: no parameters leak from the sequence.
        let c = put(json!({"exec": {"kind": "python:3", "code": "x"}}))
            .apply(&fqn, Some(&a), 2)
            .unwrap();
        assert!(c.parameters.is_empty());
        assert_eq!(c.exec.components, None);
    }

    #[test]
    fn conductor_annotation_is_truthy() {
        let fqn = FullyQualifiedName::parse("c", "guest").unwrap();
        let with = |v: Value| {
            put(json!({"exec": {"kind": "python:3", "code": "x"}, "annotations": [{"key": "conductor", "value": v}]}))
                .apply(&fqn, None, 0)
                .unwrap()
        };
        for yes in [json!(true), json!("true"), json!(1), json!({})] {
            assert!(is_conductor(&with(yes.clone())), "{yes}");
        }
        for no in [json!(false), json!(0), json!(null), json!("")] {
            assert!(!is_conductor(&with(no.clone())), "{no}");
        }
    }

    #[test]
    fn continuations_box_their_fields() {
        let c = Continuation::of(&json!({"action": "a", "params": 3, "state": "s"}));
        assert_eq!(c.action, Some(json!("a")));
        assert_eq!(Value::Object(c.params.unwrap()), json!({"value": 3}));
        assert_eq!(Value::Object(c.state.unwrap()), json!({"state": "s"}));
        let end = Continuation::of(&json!({"params": {"n": 1}}));
        assert_eq!(end.action, None);
        assert_eq!(end.state, None);
    }

    #[test]
    fn conductor_names_resolve_like_openwhisk() {
        let r = |s: &str| resolve_name(&json!(s), "guest").map(|f| f.to_string());
        assert_eq!(r("step").as_deref(), Some("guest/step"));
        assert_eq!(r("pkg/step").as_deref(), Some("guest/pkg/step"));
        assert_eq!(r("/ns/step").as_deref(), Some("ns/step"));
        assert_eq!(r("/_/step").as_deref(), Some("guest/step"));
        assert_eq!(r("/step"), None);
        assert_eq!(r("invalid#Action"), None);
        assert_eq!(r("a/b/c/d"), None);
        assert_eq!(resolve_name(&json!(3), "guest"), None);
    }
}
