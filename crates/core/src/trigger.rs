//! Triggers as OpenWhisk stores and shows them: parameters, annotations, `limits: {}`, version,
//! and the `rules` map that links the trigger to its rules (`{"ns/r": {"action": {"path",
//! "name"}, "status": "active"}}`) — where a rule's status lives. The PUT body and how an
//! update merges into the stored document; the status of a rule; a reference to an entity
//! (`{"path", "name"}`, OpenWhisk's fully qualified entity name).

use crate::entity::{bump_patch, check_keys, KeyValue};
use crate::error::WhiskError;
use crate::names::{is_valid_name, EntityName, FullyQualifiedName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// `{"path": "ns[/pkg]", "name": "n"}`: how rules and trigger links name an entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityRef {
    /// `namespace[/package]`.
    pub path: String,
    /// The entity's own name.
    pub name: String,
}

impl EntityRef {
    /// The fully qualified name this reference stands for (400 when it is not valid).
    pub fn fqn(&self) -> Result<FullyQualifiedName, WhiskError> {
        let (ns, rest) = match self.path.split_once('/') {
            Some((ns, pkg)) => (ns, format!("{pkg}/{}", self.name)),
            None => (self.path.as_str(), self.name.clone()),
        };
        FullyQualifiedName::from_route(ns, &rest)
    }
}

impl From<&FullyQualifiedName> for EntityRef {
    fn from(f: &FullyQualifiedName) -> Self {
        Self {
            path: f.path(),
            name: f.name.to_string(),
        }
    }
}

impl fmt::Display for EntityRef {
    /// `path/name`, without a leading slash (OpenWhisk's `asString`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.path, self.name)
    }
}

/// A rule's status, kept in its trigger's `rules` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Firing the trigger invokes the rule's action.
    Active,
    /// The rule is kept but does nothing.
    Inactive,
}

impl RuleStatus {
    /// `active` or `inactive`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Active => "active",
            RuleStatus::Inactive => "inactive",
        }
    }

    /// The body of `POST .../rules/{name}`: `{"status": "active" | "inactive"}`; anything else
    /// is a 400 as OpenWhisk words it.
    pub fn from_request(body: &Map<String, Value>) -> Result<Self, WhiskError> {
        let malformed =
            |m: String| WhiskError::bad_request(format!("The request content was malformed:\n{m}"));
        match body.get("status") {
            None => Err(malformed("key not found: status".into())),
            Some(Value::String(s)) if s == "active" => Ok(RuleStatus::Active),
            Some(Value::String(s)) if s == "inactive" => Ok(RuleStatus::Inactive),
            Some(other) => {
                let shown = other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_string);
                Err(malformed(format!(
                    "'{shown}' is not a recognized rule state, must be one of ['active', 'inactive']"
                )))
            }
        }
    }
}

/// One entry of a trigger's `rules` map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReducedRule {
    /// The action the rule invokes.
    pub action: EntityRef,
    /// Whether it does.
    pub status: RuleStatus,
}

/// A trigger document, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The namespace.
    pub namespace: String,
    /// The trigger's name.
    pub name: String,
    /// Semantic version, bumped on each update.
    pub version: String,
    /// Shared publicly.
    #[serde(default)]
    pub publish: bool,
    /// Annotations (`feed` names the trigger's feed action).
    #[serde(default)]
    pub annotations: Vec<KeyValue>,
    /// Default parameters, merged under every fire's payload.
    #[serde(default)]
    pub parameters: Vec<KeyValue>,
    /// Always `{}` (OpenWhisk's trigger limits have no fields).
    #[serde(default)]
    pub limits: Map<String, Value>,
    /// Rules linked to this trigger, by `ns/rule`; absent until the first rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<BTreeMap<String, ReducedRule>>,
    /// Last update, epoch ms.
    pub updated: i64,
}

impl Trigger {
    /// The status of rule `rule` (`ns/r`) in this trigger: inactive when it is not linked.
    pub fn rule_status(&self, rule: &str) -> RuleStatus {
        self.rules
            .as_ref()
            .and_then(|r| r.get(rule))
            .map_or(RuleStatus::Inactive, |r| r.status)
    }

    /// Links rule `rule` (`ns/r`) to `action` with `status`, replacing an earlier link.
    pub fn add_rule(&mut self, rule: &str, action: EntityRef, status: RuleStatus) {
        self.rules
            .get_or_insert_with(BTreeMap::new)
            .insert(rule.to_string(), ReducedRule { action, status });
    }

    /// Unlinks rule `rule`; true when it was linked.
    pub fn remove_rule(&mut self, rule: &str) -> bool {
        self.rules
            .as_mut()
            .is_some_and(|r| r.remove(rule).is_some())
    }

    /// True when at least one linked rule is active.
    pub fn has_active_rule(&self) -> bool {
        self.rules
            .as_ref()
            .is_some_and(|r| r.values().any(|l| l.status == RuleStatus::Active))
    }
}

/// The body of `PUT .../triggers/{name}`: every field optional, merged over an existing
/// trigger (whose rules are always kept).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TriggerPut {
    /// Replaces the parameters when given.
    pub parameters: Option<Vec<KeyValue>>,
    /// Accepted and ignored: trigger limits have no fields.
    pub limits: Option<Map<String, Value>>,
    /// Explicit version.
    pub version: Option<String>,
    /// Shared publicly.
    pub publish: Option<bool>,
    /// Replaces the annotations when given.
    pub annotations: Option<Vec<KeyValue>>,
}

impl TriggerPut {
    /// Parses a PUT body (empty = `{}`), turning serde's complaint into a 400.
    pub fn from_json(body: &[u8]) -> Result<Self, WhiskError> {
        put_body(body)
    }

    /// The document to store for trigger `name` of `namespace`: new when `existing` is
    /// `None`, else the update (version bumped unless given, rules kept).
    pub fn apply(
        self,
        namespace: &EntityName,
        name: &EntityName,
        existing: Option<&Trigger>,
        now: i64,
    ) -> Result<Trigger, WhiskError> {
        let parameters = match self.parameters {
            Some(p) => p,
            None => existing.map(|t| t.parameters.clone()).unwrap_or_default(),
        };
        check_keys(&parameters, "parameters")?;
        let annotations = match self.annotations {
            Some(a) => a,
            None => existing.map(|t| t.annotations.clone()).unwrap_or_default(),
        };
        check_keys(&annotations, "annotations")?;
        check_feed(&annotations)?;
        let version = match (self.version, existing) {
            (Some(v), _) => v,
            (None, Some(t)) => bump_patch(&t.version),
            (None, None) => "0.0.1".to_string(),
        };
        Ok(Trigger {
            namespace: namespace.to_string(),
            name: name.to_string(),
            version,
            publish: self
                .publish
                .or(existing.map(|t| t.publish))
                .unwrap_or(false),
            annotations,
            parameters,
            limits: Map::new(),
            rules: existing.and_then(|t| t.rules.clone()),
            updated: now,
        })
    }
}

/// A PUT body of type `T`: empty is `T::default()`, bad JSON a 400 as OpenWhisk words it.
pub(crate) fn put_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, WhiskError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| WhiskError::bad_request(format!("The request content was malformed:\n{e}")))
}

/// OpenWhisk's check of a `feed` annotation: a string naming an entity path.
fn check_feed(annotations: &[KeyValue]) -> Result<(), WhiskError> {
    let Some(feed) = crate::entity::lookup(annotations, "feed") else {
        return Ok(());
    };
    let valid = feed.as_str().is_some_and(|f| {
        let segments: Vec<&str> = f.trim_start_matches('/').split('/').collect();
        !f.is_empty() && segments.len() <= 3 && segments.iter().all(|s| is_valid_name(s))
    });
    if valid {
        Ok(())
    } else {
        Err(WhiskError::bad_request("Feed name is not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> (EntityName, EntityName) {
        (
            EntityName::new("guest").unwrap(),
            EntityName::new("t").unwrap(),
        )
    }

    #[test]
    fn create_update_keeps_rules_and_bumps_version() {
        let (ns, n) = names();
        let t = TriggerPut::from_json(b"")
            .unwrap()
            .apply(&ns, &n, None, 1)
            .unwrap();
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["version"], "0.0.1");
        assert_eq!(v["limits"], json!({}));
        assert_eq!(v["annotations"], json!([]));
        assert!(v.get("rules").is_none());
        let mut t = t;
        let a = EntityRef {
            path: "guest".into(),
            name: "a".into(),
        };
        t.add_rule("guest/r", a.clone(), RuleStatus::Active);
        assert!(t.has_active_rule());
        let put = TriggerPut::from_json(br#"{"parameters":[{"key":"x","value":1}]}"#).unwrap();
        let u = put.apply(&ns, &n, Some(&t), 2).unwrap();
        assert_eq!(u.version, "0.0.2");
        assert_eq!(u.rule_status("guest/r"), RuleStatus::Active);
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(
            v["rules"],
            json!({"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}})
        );
        let mut u = u;
        assert!(u.remove_rule("guest/r"));
        assert_eq!(u.rule_status("guest/r"), RuleStatus::Inactive);
        assert!(!u.has_active_rule());
    }

    #[test]
    fn rejects_bad_bodies_and_feeds() {
        let (ns, n) = names();
        assert!(TriggerPut::from_json(b"{").is_err());
        assert!(TriggerPut::from_json(br#"{"parameters": 3}"#).is_err());
        let bad_feed =
            TriggerPut::from_json(br#"{"annotations":[{"key":"feed","value":"a b/ /c"}]}"#)
                .unwrap();
        assert!(bad_feed.apply(&ns, &n, None, 0).is_err());
        let feed = TriggerPut::from_json(
            br#"{"annotations":[{"key":"feed","value":"/whisk.system/alarms/alarm"}]}"#,
        )
        .unwrap();
        assert!(feed.apply(&ns, &n, None, 0).is_ok());
    }

    #[test]
    fn statuses_from_requests() {
        let ok = json!({"status": "inactive"});
        assert_eq!(
            RuleStatus::from_request(ok.as_object().unwrap()).unwrap(),
            RuleStatus::Inactive
        );
        for bad in [json!({}), json!({"status": "xxx"}), json!({"status": 1})] {
            let e = RuleStatus::from_request(bad.as_object().unwrap()).unwrap_err();
            assert!(
                e.message.starts_with("The request content was malformed"),
                "{e}"
            );
        }
    }

    #[test]
    fn references_round_trip() {
        let f = FullyQualifiedName::parse("/guest/pkg/a", "x").unwrap();
        let r = EntityRef::from(&f);
        assert_eq!(r.to_string(), "guest/pkg/a");
        assert_eq!(r.fqn().unwrap(), f);
    }
}
