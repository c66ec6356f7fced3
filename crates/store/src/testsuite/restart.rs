//! Durability across a restart: write a fixture, reopen the store, check it.

use super::{activation, entity_doc, unique_namespace};
use crate::{ActivationQuery, EntityKind, Store};
use serde_json::Value;
use whisk_core::{Activation, Identity};

/// What [`write_fixture`] wrote, for [`check_fixture`].
#[derive(Debug, Clone)]
pub struct Fixture {
    namespace: String,
    entity_key: String,
    entity_rev: String,
    entity: Value,
    activations: Vec<Activation>,
    identity: Identity,
}

/// Writes an entity, activation records and an identity (without flushing: closing the store
/// must be enough).
pub async fn write_fixture(store: &dyn Store) -> Fixture {
    let namespace = unique_namespace("restart");
    let entity_key = format!("{namespace}/pkg/kept");
    let entity = entity_doc(&namespace, "kept", 5);
    let entity_rev = store
        .put_entity(EntityKind::Action, &entity_key, &entity, None)
        .await
        .unwrap();
    let mut activations = Vec::new();
    for i in 0..20 {
        let a = activation(&namespace, &format!("{namespace}/kept"), 1_000 + i);
        store.put_activation(&a).await.unwrap();
        activations.push(a);
    }
    activations.reverse();
    let identity = Identity::generate("kept", &namespace);
    store.put_identity(&identity).await.unwrap();
    // Written after the last durable write, so only the close makes it durable.
    let last = activation(&namespace, &format!("{namespace}/kept"), 2_000);
    store.put_activation(&last).await.unwrap();
    activations.insert(0, last);
    Fixture {
        namespace,
        entity_key,
        entity_rev,
        entity,
        activations,
        identity,
    }
}

/// Checks that everything [`write_fixture`] wrote is there.
pub async fn check_fixture(store: &dyn Store, f: &Fixture) {
    let got = store
        .get_entity(EntityKind::Action, &f.entity_key)
        .await
        .unwrap()
        .expect("entity kept");
    assert_eq!((&got.rev, &got.doc), (&f.entity_rev, &f.entity));
    assert_eq!(
        store
            .count_entities(EntityKind::Action, &f.namespace)
            .await
            .unwrap(),
        1
    );
    let all = ActivationQuery {
        limit: 1000,
        ..Default::default()
    };
    assert_eq!(
        store.list_activations(&f.namespace, &all).await.unwrap(),
        f.activations
    );
    for a in &f.activations {
        assert_eq!(
            store
                .get_activation(&f.namespace, &a.activation_id)
                .await
                .unwrap()
                .as_ref(),
            Some(a)
        );
    }
    assert_eq!(
        store.get_identity(&f.identity.uuid).await.unwrap().as_ref(),
        Some(&f.identity)
    );
    assert_eq!(
        store.identities_of_namespace(&f.namespace).await.unwrap(),
        std::slice::from_ref(&f.identity)
    );
}
