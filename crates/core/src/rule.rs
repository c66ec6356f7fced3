//! Rules as OpenWhisk stores and shows them: a trigger and an action (each a `{"path",
//! "name"}` reference), version, annotations; the API view adds the `status` read from the
//! trigger's `rules` map. The PUT body, whose `trigger` and `action` are fully qualified names
//! (`/ns/t`, `/_/pkg/a`; `_` is the caller's namespace), and how an update merges.

use crate::entity::{bump_patch, check_keys, KeyValue};
use crate::error::WhiskError;
use crate::names::{EntityName, FullyQualifiedName, DEFAULT_NAMESPACE};
use crate::trigger::{EntityRef, RuleStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// OpenWhisk's complaint about a name without a namespace.
pub const MALFORMED_FQN: &str = "The request content was malformed:\nrequirement failed: The fully qualified name of the entity must contain at least the namespace and the name of the entity.";

/// A rule document, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// The namespace.
    pub namespace: String,
    /// The rule's name.
    pub name: String,
    /// Semantic version, bumped on each update.
    pub version: String,
    /// Shared publicly.
    #[serde(default)]
    pub publish: bool,
    /// Annotations.
    #[serde(default)]
    pub annotations: Vec<KeyValue>,
    /// The trigger it listens to.
    pub trigger: EntityRef,
    /// The action it invokes.
    pub action: EntityRef,
    /// Last update, epoch ms.
    pub updated: i64,
}

impl Rule {
    /// `namespace/name`: the key of this rule in its trigger's `rules` map.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The API view: the document with `status`.
    pub fn view(&self, status: RuleStatus) -> Value {
        serde_json::json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "status": status.as_str(),
            "trigger": self.trigger,
            "action": self.action,
            "updated": self.updated,
        })
    }
}

/// The body of `PUT .../rules/{name}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RulePut {
    /// `/ns/t` (or `{"path", "name"}`); required on create.
    pub trigger: Option<Value>,
    /// `/ns/[pkg/]a` (or `{"path", "name"}`); required on create.
    pub action: Option<Value>,
    /// Explicit version.
    pub version: Option<String>,
    /// Shared publicly.
    pub publish: Option<bool>,
    /// Replaces the annotations when given.
    pub annotations: Option<Vec<KeyValue>>,
}

/// A [`RulePut`] whose names are resolved in the caller's namespace.
#[derive(Debug, Clone)]
pub struct ResolvedRulePut {
    /// The trigger, when given.
    pub trigger: Option<FullyQualifiedName>,
    /// The action, when given.
    pub action: Option<FullyQualifiedName>,
    /// The rest of the body.
    pub put: RulePut,
}

impl RulePut {
    /// Parses a PUT body (empty = `{}`), turning serde's complaint into a 400.
    pub fn from_json(body: &[u8]) -> Result<Self, WhiskError> {
        crate::trigger::put_body(body)
    }

    /// Resolves `trigger` and `action` (`_` = `namespace`); 400 when one is not a fully
    /// qualified name.
    pub fn resolve(self, namespace: &str) -> Result<ResolvedRulePut, WhiskError> {
        let trigger = self
            .trigger
            .as_ref()
            .map(|v| reference(v, namespace))
            .transpose()?;
        let action = self
            .action
            .as_ref()
            .map(|v| reference(v, namespace))
            .transpose()?;
        if let Some(a) = &self.annotations {
            check_keys(a, "annotations")?;
        }
        Ok(ResolvedRulePut {
            trigger,
            action,
            put: self,
        })
    }
}

impl ResolvedRulePut {
    /// The document to store for rule `name` of `namespace`, over `existing` when updating.
    /// The caller has checked that the trigger and action exist.
    pub fn apply(
        &self,
        namespace: &EntityName,
        name: &EntityName,
        existing: Option<&Rule>,
        now: i64,
    ) -> Result<Rule, WhiskError> {
        let missing =
            || WhiskError::bad_request("rule requires a valid trigger and a valid action");
        let trigger = match (&self.trigger, existing) {
            (Some(t), _) => EntityRef::from(t),
            (None, Some(r)) => r.trigger.clone(),
            (None, None) => return Err(missing()),
        };
        let action = match (&self.action, existing) {
            (Some(a), _) => EntityRef::from(a),
            (None, Some(r)) => r.action.clone(),
            (None, None) => return Err(missing()),
        };
        let version = match (&self.put.version, existing) {
            (Some(v), _) => v.clone(),
            (None, Some(r)) => bump_patch(&r.version),
            (None, None) => "0.0.1".to_string(),
        };
        Ok(Rule {
            namespace: namespace.to_string(),
            name: name.to_string(),
            version,
            publish: self
                .put
                .publish
                .or(existing.map(|r| r.publish))
                .unwrap_or(false),
            annotations: match (&self.put.annotations, existing) {
                (Some(a), _) => a.clone(),
                (None, Some(r)) => r.annotations.clone(),
                (None, None) => Vec::new(),
            },
            trigger,
            action,
            updated: now,
        })
    }
}

/// A fully qualified name from a rule body: `/ns/name`, `ns/name`, `/ns/pkg/name`, or a
/// `{"path", "name"}` object; a bare `name` is refused as OpenWhisk refuses it.
fn reference(v: &Value, namespace: &str) -> Result<FullyQualifiedName, WhiskError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match (o.get("path"), o.get("name")) {
            (Some(Value::String(p)), Some(Value::String(n))) => format!("/{p}/{n}"),
            _ => return Err(WhiskError::bad_request(MALFORMED_FQN)),
        },
        _ => return Err(WhiskError::bad_request(MALFORMED_FQN)),
    };
    let segments: Vec<&str> = text.trim_start_matches('/').split('/').collect();
    if segments.len() < 2 {
        return Err(WhiskError::bad_request(MALFORMED_FQN));
    }
    let ns = match segments[0] {
        DEFAULT_NAMESPACE => namespace,
        other => other,
    };
    FullyQualifiedName::from_route(ns, &segments[1..].join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(s: &str) -> EntityName {
        EntityName::new(s).unwrap()
    }

    #[test]
    fn resolves_names_like_openwhisk() {
        let p = RulePut::from_json(br#"{"trigger":"/_/t","action":"/_/pkg/a"}"#)
            .unwrap()
            .resolve("guest")
            .unwrap();
        assert_eq!(p.trigger.as_ref().unwrap().to_string(), "guest/t");
        assert_eq!(p.action.as_ref().unwrap().to_string(), "guest/pkg/a");
        let r = p.apply(&n("guest"), &n("r"), None, 5).unwrap();
        let v = r.view(RuleStatus::Active);
        assert_eq!(v["trigger"], json!({"path": "guest", "name": "t"}));
        assert_eq!(v["action"], json!({"path": "guest/pkg", "name": "a"}));
        assert_eq!(v["status"], "active");
        assert_eq!(v["version"], "0.0.1");
        assert_eq!(r.key(), "guest/r");

        let obj = RulePut::from_json(br#"{"action":{"path":"guest","name":"b"}}"#)
            .unwrap()
            .resolve("guest")
            .unwrap();
        let u = obj.apply(&n("guest"), &n("r"), Some(&r), 6).unwrap();
        assert_eq!(u.version, "0.0.2");
        assert_eq!(u.trigger, r.trigger);
        assert_eq!(u.action.to_string(), "guest/b");
    }

    #[test]
    fn refuses_bare_names_and_missing_parts() {
        let e = RulePut::from_json(br#"{"trigger":"t","action":"/_/a"}"#)
            .unwrap()
            .resolve("guest")
            .unwrap_err();
        assert_eq!(e.message, MALFORMED_FQN);
        assert!(RulePut::from_json(br#"{"trigger":3}"#)
            .unwrap()
            .resolve("guest")
            .is_err());
        let only_trigger = RulePut::from_json(br#"{"trigger":"/_/t"}"#)
            .unwrap()
            .resolve("guest")
            .unwrap();
        let e = only_trigger
            .apply(&n("guest"), &n("r"), None, 0)
            .unwrap_err();
        assert_eq!(
            e.message,
            "rule requires a valid trigger and a valid action"
        );
    }
}
