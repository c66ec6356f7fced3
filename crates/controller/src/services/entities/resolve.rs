//! The action resolver: from a name a caller gave (`ns/action`, `ns/pkg/action`, `ns/binding/
//! action`) to the action it means, with OpenWhisk's entitlement and parameter merge.
//!
//! - **Entitlement** (upstream `PackageCollection`): a caller reads or invokes actions of its
//!   own namespace; in another namespace only those of a published package (never through
//!   another namespace's binding). A package of another namespace that does not exist is 403,
//!   not 404, so that nothing leaks about other namespaces.
//! - **Bindings**: `ns/binding/action` is the action of the bound package; the record names the
//!   binding (`binding` annotation) and the action where it lives (`path`).
//! - **Parameters**: package → binding → action, each overriding the one before; the invoke's
//!   own come last ([`Resolved::merge`]), except that an action annotated `final: true` keeps
//!   every parameter the merge defined (not null).

use super::Entities;
use crate::auth::entitle;
use serde_json::{Map, Value};
use std::sync::Arc;
use whisk_core::entity::{lookup, to_object, KeyValue};
use whisk_core::package::{merge_params, messages};
use whisk_core::{
    Action, EntityName, ErrorKind, FullyQualifiedName, Identity, Package, WhiskError,
};
use whisk_store::Revisioned;

/// OpenWhisk's answer to an invoke that redefines a final parameter.
pub const PARAMETERS_NOT_ALLOWED: &str =
    "Request defines parameters that are not allowed (e.g., reserved properties).";

/// An action as a caller's name resolved it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Where the action lives (through a binding: in the bound package).
    pub fqn: FullyQualifiedName,
    /// The stored action (from the action cache on the invoke path).
    pub action: Arc<Revisioned<Action>>,
    /// Package → binding → action parameters, in that order of precedence.
    pub parameters: Vec<KeyValue>,
    /// The binding it was named through (`ns/binding`), if any.
    pub binding: Option<String>,
}

impl Resolved {
    /// The action document.
    pub fn action(&self) -> &Action {
        &self.action.doc
    }

    /// The invoke's `payload` over the merged parameters; 400 when the action is `final` and
    /// the payload redefines a parameter the merge defined.
    pub fn merge(&self, payload: Map<String, Value>) -> Result<Map<String, Value>, WhiskError> {
        let mut merged = to_object(&self.parameters);
        let is_final = lookup(&self.action.doc.annotations, "final") == Some(&Value::Bool(true));
        if is_final
            && payload
                .keys()
                .any(|k| merged.get(k).is_some_and(|v| !v.is_null()))
        {
            return Err(WhiskError::bad_request(PARAMETERS_NOT_ALLOWED));
        }
        merged.extend(payload);
        Ok(merged)
    }

    /// The action as `GET` shows it: its document with the merged parameters.
    pub fn merged_action(&self) -> Action {
        let mut a = self.action.doc.clone();
        a.parameters = self.parameters.clone();
        a
    }
}

/// A package a caller may read, and the package it binds (for a binding).
#[derive(Debug, Clone)]
pub struct ReadablePackage {
    /// The package or binding named.
    pub package: Arc<Revisioned<Package>>,
    /// The bound package, when `package` is a binding.
    pub bound: Option<Arc<Revisioned<Package>>>,
}

impl ReadablePackage {
    /// The package whose actions this one offers (the bound one for a binding).
    pub fn provider(&self) -> &Package {
        self.bound.as_ref().map_or(&self.package.doc, |b| &b.doc)
    }

    /// Bound package → binding parameters (a package's own otherwise).
    pub fn parameters(&self) -> Vec<KeyValue> {
        match &self.bound {
            Some(b) => merge_params(&b.doc.parameters, &self.package.doc.parameters),
            None => self.package.doc.parameters.clone(),
        }
    }
}

/// 403 for `caller` on `ns/what`, in the words of [`entitle`].
pub(crate) fn forbidden(caller: &Identity, ns: &str, what: &str) -> WhiskError {
    match entitle(caller, ns, what) {
        Err(e) => e,
        Ok(_) => WhiskError::new(
            ErrorKind::Forbidden,
            format!("The supplied authentication is not authorized to access '{ns}/{what}'."),
        ),
    }
}

impl Entities {
    /// The action `fqn` names for `caller`, through the action cache (the invoke path).
    pub async fn resolve_action(
        &self,
        caller: &Identity,
        fqn: &FullyQualifiedName,
    ) -> Result<Resolved, WhiskError> {
        self.resolve(caller, fqn, true).await
    }

    /// [`Entities::resolve_action`] reading the store, never the cache (`GET` of an action).
    pub async fn resolve_action_stored(
        &self,
        caller: &Identity,
        fqn: &FullyQualifiedName,
    ) -> Result<Resolved, WhiskError> {
        self.resolve(caller, fqn, false).await
    }

    async fn resolve(
        &self,
        caller: &Identity,
        fqn: &FullyQualifiedName,
        cached: bool,
    ) -> Result<Resolved, WhiskError> {
        let ns = fqn.namespace.as_str();
        let Some(pkg) = &fqn.package else {
            if ns != caller.namespace {
                return Err(forbidden(caller, ns, &format!("actions/{}", fqn.name)));
            }
            let action = self.load_action(fqn, cached).await?;
            let parameters = action.doc.parameters.clone();
            return Ok(Resolved {
                fqn: fqn.clone(),
                action,
                parameters,
                binding: None,
            });
        };
        let readable = self.readable(caller, ns, pkg.as_str(), cached).await?;
        let provider = readable.provider();
        let real = FullyQualifiedName {
            namespace: EntityName::new(&provider.namespace)?,
            package: Some(EntityName::new(&provider.name)?),
            name: fqn.name.clone(),
        };
        let action = self.load_action(&real, cached).await?;
        let parameters = merge_params(&readable.parameters(), &action.doc.parameters);
        let binding = readable.bound.is_some().then(|| readable.package.doc.key());
        Ok(Resolved {
            fqn: real,
            action,
            parameters,
            binding,
        })
    }

    async fn load_action(
        &self,
        fqn: &FullyQualifiedName,
        cached: bool,
    ) -> Result<Arc<Revisioned<Action>>, WhiskError> {
        if cached {
            self.cached_action(fqn)
                .await?
                .ok_or_else(WhiskError::not_found)
        } else {
            Ok(Arc::new(self.action(fqn).await?))
        }
    }

    /// Package `ns/name` if `caller` may read it: its own (a binding of its own when the
    /// bound package is readable too), or a published package of another namespace; 404 for
    /// its own missing package, 403 otherwise.
    pub async fn readable_package(
        &self,
        caller: &Identity,
        ns: &str,
        name: &str,
    ) -> Result<ReadablePackage, WhiskError> {
        self.readable(caller, ns, name, false).await
    }

    /// [`Entities::readable_package`], through the package cache when `cached`.
    async fn readable(
        &self,
        caller: &Identity,
        ns: &str,
        name: &str,
        cached: bool,
    ) -> Result<ReadablePackage, WhiskError> {
        let owner = ns == caller.namespace;
        let what = format!("packages/{name}");
        let Some(package) = self.load_package(ns, name, cached).await? else {
            return Err(if owner {
                WhiskError::not_found()
            } else {
                forbidden(caller, ns, &what)
            });
        };
        let Some(binding) = package.doc.binding.clone() else {
            if owner || package.doc.publish {
                return Ok(ReadablePackage {
                    package,
                    bound: None,
                });
            }
            return Err(forbidden(caller, ns, &what));
        };
        if !owner {
            return Err(forbidden(caller, ns, &what));
        }
        if binding.key() == package.doc.key() {
            return Err(WhiskError::bad_request(messages::circular_reference(
                &binding.key(),
            )));
        }
        let bound_owner = binding.namespace == caller.namespace;
        let bound_what = format!("packages/{}", binding.name);
        match self
            .load_package(&binding.namespace, &binding.name, cached)
            .await?
        {
            None if bound_owner => Err(WhiskError::not_found()),
            None => Err(forbidden(caller, &binding.namespace, &bound_what)),
            Some(b) if b.doc.binding.is_some() => Err(WhiskError::bad_request(
                messages::BINDING_CANNOT_REFERENCE_BINDING,
            )),
            Some(b) if bound_owner || b.doc.publish => Ok(ReadablePackage {
                package,
                bound: Some(b),
            }),
            Some(_) => Err(forbidden(caller, &binding.namespace, &bound_what)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use whisk_core::entity::ActionPut;

    fn resolved(annotations: Value, params: Value) -> Resolved {
        let fqn = FullyQualifiedName::parse("p/a", "guest").unwrap();
        let body = json!({"exec": {"kind": "python:3", "code": "x"}, "annotations": annotations});
        let action = ActionPut::from_json(body.to_string().as_bytes())
            .unwrap()
            .apply(&fqn, None, 0)
            .unwrap();
        Resolved {
            fqn,
            action: Arc::new(Revisioned {
                rev: "1".into(),
                doc: action,
            }),
            parameters: serde_json::from_value(params).unwrap(),
            binding: None,
        }
    }

    #[test]
    fn payload_overrides_unless_final() {
        let r = resolved(
            json!([]),
            json!([{"key": "a", "value": 1}, {"key": "n", "value": null}]),
        );
        let payload = json!({"a": 2, "b": 3}).as_object().unwrap().clone();
        assert_eq!(
            Value::Object(r.merge(payload.clone()).unwrap()),
            json!({"a": 2, "n": null, "b": 3})
        );
        let f = resolved(
            json!([{"key": "final", "value": true}]),
            json!([{"key": "a", "value": 1}, {"key": "n", "value": null}]),
        );
        assert_eq!(
            f.merge(payload).unwrap_err().message,
            PARAMETERS_NOT_ALLOWED
        );
        // A parameter left null may still be given.
        let n = json!({"n": 5}).as_object().unwrap().clone();
        assert_eq!(f.merge(n).unwrap()["n"], json!(5));
    }
}
