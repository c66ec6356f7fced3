//! The conformance suite every [`Store`] backend runs (embedded now, CouchDB later): call
//! [`conformance_suite`] on a fresh or shared store, and [`write_fixture`] / [`check_fixture`]
//! around a restart to check durability. Every run works in namespaces of its own (random
//! names), so the suite can share a database with other runs. Failures panic, as tests do.

mod activations;
mod entities;
mod restart;

pub use activations::activations;
pub use entities::{entity_listing, entity_revisions};
pub use restart::{check_fixture, write_fixture, Fixture};

use crate::{ActivationQuery, Store, StoreError};
use serde_json::{json, Value};
use whisk_core::{Activation, ActivationId, ActivationResponse, Identity, KeyValue};

/// Runs every check of the suite.
pub async fn conformance_suite(store: &dyn Store) {
    entity_revisions(store).await;
    entity_listing(store).await;
    activations(store).await;
    identities(store).await;
    flush_is_harmless(store).await;
}

/// A namespace no other run uses.
pub fn unique_namespace(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// An entity document as the controller stores it (only the fields the store looks at).
pub fn entity_doc(namespace: &str, name: &str, updated: i64) -> Value {
    json!({"namespace": namespace, "name": name, "version": "0.0.1", "updated": updated, "exec": {"kind": "nodejs:20", "code": "x"}})
}

/// An activation of `namespace` running `path` (`ns/name` or `ns/pkg/name`) that started at `start`.
pub fn activation(namespace: &str, path: &str, start: i64) -> Activation {
    let name = path.rsplit('/').next().unwrap_or(path).to_string();
    Activation {
        namespace: namespace.to_string(),
        name,
        version: "0.0.1".into(),
        subject: namespace.to_string(),
        activation_id: ActivationId::generate(),
        start,
        end: start.saturating_add(5),
        duration: 5,
        response: ActivationResponse::success(json!({"n": start})),
        logs: vec![format!(
            "2024-01-01T00:00:00.000Z stdout: started at {start}"
        )],
        annotations: vec![KeyValue {
            key: "path".into(),
            value: json!(path),
        }],
        publish: false,
        cause: None,
    }
}

/// Identities by uuid and by namespace; replacing one.
pub async fn identities(store: &dyn Store) {
    let ns = unique_namespace("id");
    assert!(store
        .get_identity(&uuid::Uuid::new_v4().to_string())
        .await
        .unwrap()
        .is_none());
    let alice = Identity::generate("alice", &ns);
    let bob = Identity::generate("bob", &ns);
    let carol = Identity::generate("carol", &format!("{ns}x"));
    for i in [&alice, &bob, &carol] {
        store.put_identity(i).await.unwrap();
    }
    assert_eq!(
        store.get_identity(&alice.uuid).await.unwrap().as_ref(),
        Some(&alice)
    );
    let mut mine = store.identities_of_namespace(&ns).await.unwrap();
    mine.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert_eq!(mine, [alice.clone(), bob.clone()]);
    assert_eq!(
        store
            .identities_of_namespace(&format!("{ns}x"))
            .await
            .unwrap(),
        [carol]
    );
    assert!(store
        .identities_of_namespace(&ns[..ns.len() - 1])
        .await
        .unwrap()
        .is_empty());

    let mut limited = alice.clone();
    limited.limits.invocations_per_minute = Some(7);
    store.put_identity(&limited).await.unwrap();
    assert_eq!(
        store.get_identity(&alice.uuid).await.unwrap(),
        Some(limited)
    );
    assert_eq!(store.identities_of_namespace(&ns).await.unwrap().len(), 2);

    // Listing every identity finds all three; deleting one leaves the others.
    let all = store.list_identities().await.unwrap();
    for i in [&alice, &bob] {
        assert!(all.iter().any(|a| a.uuid == i.uuid), "{} listed", i.subject);
    }
    store.delete_identity(&bob.uuid).await.unwrap();
    assert_eq!(store.get_identity(&bob.uuid).await.unwrap(), None);
    assert!(matches!(
        store.delete_identity(&bob.uuid).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.identities_of_namespace(&ns).await.unwrap().len(), 1);
    assert!(!store
        .list_identities()
        .await
        .unwrap()
        .iter()
        .any(|a| a.uuid == bob.uuid));
}

/// Flushing any number of times, with or without pending writes, succeeds.
pub async fn flush_is_harmless(store: &dyn Store) {
    store.flush().await.unwrap();
    store.flush().await.unwrap();
    let ns = unique_namespace("flush");
    store
        .put_activation(&activation(&ns, &format!("{ns}/f"), 1))
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        store
            .count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        1
    );
}
