//! Entity checks: revisions, listing order, namespace isolation.

use super::{entity_doc, unique_namespace};
use crate::{EntityKind, Store, StoreError};
use serde_json::{json, Value};

/// Create, read, update with the right and a stale revision, delete.
pub async fn entity_revisions(store: &dyn Store) {
    let ns = unique_namespace("rev");
    let key = format!("{ns}/hello");
    let kind = EntityKind::Action;
    assert!(store.get_entity(kind, &key).await.unwrap().is_none());

    let doc1 = entity_doc(&ns, "hello", 1);
    let rev1 = store.put_entity(kind, &key, &doc1, None).await.unwrap();
    assert!(rev1.starts_with("1-"), "first revision {rev1}");
    let got = store
        .get_entity(kind, &key)
        .await
        .unwrap()
        .expect("created");
    assert_eq!(got.rev, rev1);
    assert_eq!(got.doc, doc1);
    // Same key under another kind is another document.
    assert!(store
        .get_entity(EntityKind::Trigger, &key)
        .await
        .unwrap()
        .is_none());

    // Create again: conflict.
    assert!(matches!(
        store.put_entity(kind, &key, &doc1, None).await,
        Err(StoreError::Conflict)
    ));

    let doc2 = entity_doc(&ns, "hello", 2);
    let rev2 = store
        .put_entity(kind, &key, &doc2, Some(&rev1))
        .await
        .unwrap();
    assert!(rev2.starts_with("2-"), "second revision {rev2}");
    assert_ne!(rev1, rev2);
    let got = store
        .get_entity(kind, &key)
        .await
        .unwrap()
        .expect("updated");
    assert_eq!((got.rev.as_str(), &got.doc), (rev2.as_str(), &doc2));

    // Stale revision: conflict, document unchanged.
    assert!(matches!(
        store.put_entity(kind, &key, &doc1, Some(&rev1)).await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store.delete_entity(kind, &key, Some(&rev1)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .get_entity(kind, &key)
            .await
            .unwrap()
            .expect("still there")
            .doc,
        doc2
    );
    // Update of an absent document: conflict.
    let absent = format!("{ns}/absent");
    assert!(matches!(
        store.put_entity(kind, &absent, &doc1, Some(&rev1)).await,
        Err(StoreError::Conflict)
    ));

    store.delete_entity(kind, &key, Some(&rev2)).await.unwrap();
    assert!(store.get_entity(kind, &key).await.unwrap().is_none());
    assert!(matches!(
        store.delete_entity(kind, &key, None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_entity(kind, &absent, Some(&rev2)).await,
        Err(StoreError::NotFound)
    ));

    // Re-create after delete; delete without a revision.
    store.put_entity(kind, &key, &doc1, None).await.unwrap();
    store.delete_entity(kind, &key, None).await.unwrap();

    // Odd keys and a large document.
    let odd = format!("{ns}/we ird\u{e9}\u{1F600}/..%2F?#");
    let big = json!({"name": "big", "updated": 1, "code": "x".repeat(2 << 20)});
    let rev = store.put_entity(kind, &odd, &big, None).await.unwrap();
    assert_eq!(
        store
            .get_entity(kind, &odd)
            .await
            .unwrap()
            .expect("odd key")
            .doc,
        big
    );
    store.delete_entity(kind, &odd, Some(&rev)).await.unwrap();
}

/// Listing: namespace isolation (`guest` vs `guestx`), packaged entities, ordering by
/// `updated` descending then name, skip/limit, counts.
pub async fn entity_listing(store: &dyn Store) {
    let ns = unique_namespace("list");
    let nsx = format!("{ns}x");
    let kind = EntityKind::Action;
    for (key, name, updated) in [
        (format!("{ns}/a"), "a", 10),
        (format!("{ns}/pkg/b"), "b", 30),
        (format!("{ns}/c"), "c", 20),
        (format!("{ns}/d"), "d", 20),
        (format!("{nsx}/e"), "e", 40),
    ] {
        let owner = key.split('/').next().unwrap_or_default().to_string();
        store
            .put_entity(kind, &key, &entity_doc(&owner, name, updated), None)
            .await
            .unwrap();
    }
    store
        .put_entity(
            EntityKind::Package,
            &format!("{ns}/pkg"),
            &entity_doc(&ns, "pkg", 50),
            None,
        )
        .await
        .unwrap();

    let names = |docs: Vec<Value>| {
        docs.iter()
            .map(|d| d["name"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_entities(kind, &ns, 0, 100).await.unwrap()),
        ["b", "c", "d", "a"]
    );
    assert_eq!(
        names(store.list_entities(kind, &ns, 1, 2).await.unwrap()),
        ["c", "d"]
    );
    assert_eq!(
        names(store.list_entities(kind, &ns, 3, 10).await.unwrap()),
        ["a"]
    );
    assert!(store
        .list_entities(kind, &ns, 4, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_entities(kind, &ns, 0, 0)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        names(store.list_entities(kind, &nsx, 0, 100).await.unwrap()),
        ["e"]
    );
    assert_eq!(
        names(
            store
                .list_entities(EntityKind::Package, &ns, 0, 100)
                .await
                .unwrap()
        ),
        ["pkg"]
    );
    assert!(store
        .list_entities(EntityKind::Rule, &ns, 0, 100)
        .await
        .unwrap()
        .is_empty());
    // A prefix of a namespace is not that namespace.
    let prefix = &ns[..ns.len() - 1];
    assert!(store
        .list_entities(kind, prefix, 0, 100)
        .await
        .unwrap()
        .is_empty());

    assert_eq!(store.count_entities(kind, &ns).await.unwrap(), 4);
    assert_eq!(store.count_entities(kind, &nsx).await.unwrap(), 1);
    assert_eq!(store.count_entities(kind, prefix).await.unwrap(), 0);
    assert_eq!(
        store
            .count_entities(EntityKind::Trigger, &ns)
            .await
            .unwrap(),
        0
    );

    // An update moves the entity to the front.
    let key = format!("{ns}/a");
    let rev = store.get_entity(kind, &key).await.unwrap().expect("a").rev;
    store
        .put_entity(kind, &key, &entity_doc(&ns, "a", 99), Some(&rev))
        .await
        .unwrap();
    assert_eq!(
        names(store.list_entities(kind, &ns, 0, 1).await.unwrap()),
        ["a"]
    );
}
