//! Helpers of this crate's unit tests: actions written straight into a store, behind every
//! controller's back.

use serde_json::json;
use whisk_core::entity::ActionPut;
use whisk_core::{Action, FullyQualifiedName};
use whisk_store::{ActionStore, EntityKind, Revisioned, Store};

/// `name` in namespace `guest`.
pub fn fqn(name: &str) -> FullyQualifiedName {
    FullyQualifiedName::parse(name, "guest").unwrap()
}

/// Writes `guest/name` with `code` straight into the store (no controller sees it).
pub async fn write(store: &dyn Store, name: &str, code: &str) {
    let fqn = fqn(name);
    let existing = store.get_action(&fqn).await.unwrap();
    let body = json!({"exec": {"kind": "python:3", "code": code}}).to_string();
    let action = ActionPut::from_json(body.as_bytes())
        .unwrap()
        .apply(&fqn, existing.as_ref().map(|r| &r.doc), 0)
        .unwrap();
    let doc = serde_json::to_value(&action).unwrap();
    store
        .put_entity(
            EntityKind::Action,
            &fqn.to_string(),
            &doc,
            existing.as_ref().map(|r| r.rev.as_str()),
        )
        .await
        .unwrap();
}

/// The code of `a`.
pub fn code(a: &Revisioned<Action>) -> String {
    serde_json::to_value(&a.doc.exec).unwrap()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
