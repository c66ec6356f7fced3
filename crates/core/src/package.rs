//! Packages and package bindings as OpenWhisk stores and shows them: the document (a binding is
//! a package whose `binding` names another package; a package has `binding: {}`), the PUT body
//! and the rules by which a create or an update builds the stored document, the list summary
//! (`binding: false` or the bound package), and the view of `GET` with the package's `actions`
//! and `feeds` (actions annotated `feed`).

use crate::entity::{bump_patch, lookup, KeyValue};
use crate::error::WhiskError;
use crate::limits::PAYLOAD_MAX_BYTES;
use crate::names::{EntityName, DEFAULT_NAMESPACE};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

/// OpenWhisk's reserved package names.
pub const RESERVED_NAMES: &[&str] = &["default"];
/// The annotation OpenWhisk sets on bindings (the bound package, as an object).
pub const BINDING_ANNOTATION: &str = "binding";
/// The annotation that makes an action of a package a feed.
pub const FEED_ANNOTATION: &str = "feed";

/// Messages of OpenWhisk's package API.
pub mod messages {
    /// A binding of a package that does not exist (or that the caller may not read).
    pub const BINDING_DOES_NOT_EXIST: &str = "Binding references a package that does not exist.";
    /// An update that would turn a package into a binding.
    pub const PACKAGE_CANNOT_BECOME_BINDING: &str =
        "Resource is a package and cannot be converted into a binding.";
    /// A binding of a binding.
    pub const BINDING_CANNOT_REFERENCE_BINDING: &str = "Cannot bind to another package binding.";
    /// A write of an action through a binding.
    pub const NOT_ALLOWED_ON_BINDING: &str = "Operation not permitted on package binding.";
    /// A binding whose bound package is the binding itself.
    pub fn circular_reference(name: &str) -> String {
        format!("Package binding '{name}' contains a circular reference.")
    }
    /// A reserved package name.
    pub fn reserved(name: &str) -> String {
        format!("Package name '{name}' is reserved.")
    }
    /// A delete of a package that still has actions, without `force`.
    pub fn not_empty(n: usize) -> String {
        let what = if n == 1 { "entity" } else { "entities" };
        format!(
            "Package not empty (contains {n} {what}). Set force param or delete package contents."
        )
    }
}

/// The package a binding refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// Namespace of the bound package.
    pub namespace: String,
    /// Name of the bound package.
    pub name: String,
}

impl Binding {
    /// `namespace/name`: the bound package's store key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// `{}` ⇄ `None`, `{namespace, name}` ⇄ `Some` (OpenWhisk's stored and shown form).
mod binding_object {
    use super::*;

    pub fn serialize<S: Serializer>(b: &Option<Binding>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => b.serialize(s),
            None => Map::new().serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Binding>, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Object(m)) if m.is_empty() => Ok(None),
            Some(other) => serde_json::from_value(other)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A package or binding document, as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The namespace (packages live at the root of a namespace).
    pub namespace: String,
    /// The package's name.
    pub name: String,
    /// The bound package, for a binding.
    #[serde(with = "binding_object", default)]
    pub binding: Option<Binding>,
    /// Parameters every action of the package receives.
    pub parameters: Vec<KeyValue>,
    /// Semantic version, bumped on each update.
    pub version: String,
    /// Shared with every namespace.
    pub publish: bool,
    /// Annotations.
    pub annotations: Vec<KeyValue>,
    /// Last update, epoch ms.
    pub updated: i64,
}

/// The body of `PUT .../packages/{name}`: every field optional, merged over an existing one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackagePut {
    /// The package to bind (`{}` or absent: not a binding).
    #[serde(with = "binding_object", default)]
    pub binding: Option<Binding>,
    /// Replaces the parameters when given.
    pub parameters: Option<Vec<KeyValue>>,
    /// Explicit version.
    pub version: Option<String>,
    /// Shared publicly.
    pub publish: Option<bool>,
    /// Replaces the annotations when given.
    pub annotations: Option<Vec<KeyValue>>,
}

impl PackagePut {
    /// Parses a PUT body (an empty body is `{}`), turning serde's complaint into a 400.
    pub fn from_json(body: &[u8]) -> Result<Self, WhiskError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            WhiskError::bad_request(format!("The request content was malformed:\n{e}"))
        })
    }

    /// The bound package with `_` replaced by `caller_ns` (checked as entity names).
    pub fn resolve_binding(&mut self, caller_ns: &str) -> Result<(), WhiskError> {
        if let Some(b) = &mut self.binding {
            if b.namespace.is_empty() || b.namespace == DEFAULT_NAMESPACE {
                b.namespace = caller_ns.to_string();
            }
            EntityName::new(&b.namespace)?;
            EntityName::new(&b.name)?;
        }
        Ok(())
    }

    /// Builds the document to store for `namespace/name`: a new package or binding when
    /// `existing` is `None`, else the update (a package never becomes a binding: 409).
    pub fn apply(
        self,
        namespace: &str,
        name: &str,
        existing: Option<&Package>,
        now: i64,
    ) -> Result<Package, WhiskError> {
        if RESERVED_NAMES.contains(&name) {
            return Err(WhiskError::bad_request(messages::reserved(name)));
        }
        if let (Some(_), Some(old)) = (&self.binding, existing) {
            if old.binding.is_none() {
                return Err(WhiskError::new(
                    crate::ErrorKind::Conflict,
                    messages::PACKAGE_CANNOT_BECOME_BINDING,
                ));
            }
        }
        let binding = self
            .binding
            .or_else(|| existing.and_then(|p| p.binding.clone()));
        let parameters = match self.parameters {
            Some(p) => p,
            None => existing.map(|p| p.parameters.clone()).unwrap_or_default(),
        };
        if parameters.iter().any(|kv| kv.key.is_empty()) {
            return Err(WhiskError::bad_request(
                "The parameters contain an empty key.",
            ));
        }
        let size = serde_json::to_vec(&parameters).map_or(0, |v| v.len());
        if size > PAYLOAD_MAX_BYTES {
            return Err(WhiskError::too_large(format!(
                "Parameters larger than allowed: {size} > {PAYLOAD_MAX_BYTES} bytes."
            )));
        }
        let mut annotations = match self.annotations {
            Some(a) => a,
            None => existing.map(|p| p.annotations.clone()).unwrap_or_default(),
        };
        annotations.retain(|kv| kv.key != BINDING_ANNOTATION);
        if let Some(b) = &binding {
            annotations.push(KeyValue {
                key: BINDING_ANNOTATION.into(),
                value: json!({"namespace": b.namespace, "name": b.name}),
            });
        }
        let version = match (self.version, existing) {
            (Some(v), _) => v,
            (None, Some(p)) => bump_patch(&p.version),
            (None, None) => "0.0.1".to_string(),
        };
        Ok(Package {
            namespace: namespace.to_string(),
            name: name.to_string(),
            binding,
            parameters,
            version,
            publish: self
                .publish
                .or(existing.map(|p| p.publish))
                .unwrap_or(false),
            annotations,
            updated: now,
        })
    }
}

impl Package {
    /// `namespace/name`: the store key.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The list summary (OpenWhisk's `packages` view): no parameters, `binding` is `false`
    /// or the bound package.
    pub fn summary(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "publish": self.publish,
            "annotations": self.annotations,
            "updated": self.updated,
            "binding": match &self.binding {
                Some(b) => json!(b),
                None => Value::Bool(false),
            },
        })
    }

    /// The document as the API shows it.
    pub fn view(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// `GET`'s answer: the document with `actions` and `feeds` (each `{name, version,
    /// annotations}`; a feed is an action annotated `feed`) of the (bound) package.
    pub fn view_with_actions(&self, actions: &[crate::Action]) -> Value {
        let mut v = self.view();
        let entry = |a: &crate::Action| json!({"name": a.name, "version": a.version, "annotations": a.annotations});
        let (feeds, plain): (Vec<_>, Vec<_>) = actions
            .iter()
            .partition(|a| lookup(&a.annotations, FEED_ANNOTATION).is_some());
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "actions".into(),
                Value::Array(plain.into_iter().map(entry).collect()),
            );
            o.insert(
                "feeds".into(),
                Value::Array(feeds.into_iter().map(entry).collect()),
            );
        }
        v
    }
}

/// `base` with `over`'s entries replacing or following its own (OpenWhisk's `++` on
/// parameters: a key keeps its place when overridden).
pub fn merge_params(base: &[KeyValue], over: &[KeyValue]) -> Vec<KeyValue> {
    let mut out = base.to_vec();
    for kv in over {
        crate::entity::upsert(&mut out, &kv.key, kv.value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(body: &str) -> PackagePut {
        PackagePut::from_json(body.as_bytes()).unwrap()
    }

    #[test]
    fn create_update_and_binding_annotation() {
        let p = put("").apply("guest", "pkg", None, 1).unwrap();
        assert_eq!(p.version, "0.0.1");
        assert!(p.annotations.is_empty() && p.binding.is_none());
        let v = p.view();
        assert_eq!(v["binding"], json!({}));
        assert_eq!(p.summary()["binding"], json!(false));
        let u = put(r#"{"publish":true}"#)
            .apply("guest", "pkg", Some(&p), 2)
            .unwrap();
        assert_eq!((u.version.as_str(), u.publish), ("0.0.2", true));

        let mut b = put(
            r#"{"binding":{"namespace":"_","name":"pkg"},"annotations":[{"key":"binding","value":"x"}]}"#,
        );
        b.resolve_binding("guest").unwrap();
        let b = b.apply("guest", "b", None, 3).unwrap();
        assert_eq!(b.binding.as_ref().unwrap().key(), "guest/pkg");
        assert_eq!(
            b.annotations,
            vec![KeyValue {
                key: "binding".into(),
                value: json!({"namespace": "guest", "name": "pkg"})
            }]
        );
        assert_eq!(
            b.summary()["binding"],
            json!({"namespace": "guest", "name": "pkg"})
        );
        // An update without a binding keeps it.
        let b2 = put("{}").apply("guest", "b", Some(&b), 4).unwrap();
        assert_eq!(b2.binding, b.binding);
        // A package never becomes a binding.
        let e = put(r#"{"binding":{"namespace":"guest","name":"x"}}"#)
            .apply("guest", "pkg", Some(&p), 5)
            .unwrap_err();
        assert_eq!(e.kind.http_status(), 409);
        let stored: Package = serde_json::from_value(b.view()).unwrap();
        assert_eq!(stored, b);
    }

    #[test]
    fn refuses_bad_bodies_and_reserved_names() {
        assert!(PackagePut::from_json(b"{").is_err());
        assert!(PackagePut::from_json(br#"{"binding": 3}"#).is_err());
        // Unknown fields (a client echoing a GET: namespace, name, actions) are ignored.
        assert!(PackagePut::from_json(br#"{"name": "x", "actions": []}"#).is_ok());
        let e = put("{}").apply("guest", "default", None, 0).unwrap_err();
        assert_eq!(e.message, "Package name 'default' is reserved.");
        let mut bad = put(r#"{"binding":{"namespace":"a/b","name":"x"}}"#);
        assert!(bad.resolve_binding("guest").is_err());
    }

    #[test]
    fn merges_in_order_and_lists_feeds_apart() {
        let kv = |k: &str, v: i64| KeyValue {
            key: k.into(),
            value: json!(v),
        };
        let m = merge_params(&[kv("a", 1), kv("b", 1)], &[kv("b", 2), kv("c", 2)]);
        assert_eq!(m, vec![kv("a", 1), kv("b", 2), kv("c", 2)]);
        assert_eq!(
            messages::not_empty(1),
            "Package not empty (contains 1 entity). Set force param or delete package contents."
        );
    }
}
