//! Tests of what only the embedded backend has: files, corrupt bytes, odd keys, the writer.
//! The backend-independent checks are in [`crate::testsuite`].

use super::*;
use crate::testsuite::{
    activation, check_fixture, conformance_suite, entity_doc, unique_namespace, write_fixture,
};
use serde_json::json;
use std::time::Instant;

#[tokio::test]
async fn passes_the_conformance_suite() {
    let store = EmbeddedStore::temporary().unwrap();
    conformance_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite_on_a_multi_thread_runtime() {
    let store = EmbeddedStore::temporary().unwrap();
    conformance_suite(&store).await;
}

#[tokio::test]
async fn survives_a_restart_and_creates_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/whisk.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    let fixture = write_fixture(&store).await;
    drop(store);
    assert!(path.exists());
    let store = EmbeddedStore::open(&path).unwrap();
    check_fixture(&store, &fixture).await;
    // And again, after writing more.
    let second = write_fixture(&store).await;
    drop(store);
    let store = EmbeddedStore::open(&path).unwrap();
    check_fixture(&store, &fixture).await;
    check_fixture(&store, &second).await;
}

/// A crash is simulated by copying the file while the store is open: an activation record is
/// in the file as soon as `put_activation` returns, without a flush or a close.
#[tokio::test]
async fn activation_records_are_durable_when_stored() {
    let store = EmbeddedStore::temporary().unwrap();
    let ns = unique_namespace("crash");
    let a = activation(&ns, &format!("{ns}/f"), 7);
    store.put_activation(&a).await.unwrap();
    let dir = store._temp_dir.as_ref().unwrap().path().to_path_buf();
    let copy = dir.join("copy.redb");
    std::fs::copy(dir.join("whisk.redb"), &copy).unwrap();
    let crashed = EmbeddedStore::open(&copy).unwrap();
    assert_eq!(
        crashed.get_activation(&ns, &a.activation_id).await.unwrap(),
        Some(a)
    );
    // After a flush the record is in the file at once.
    let b = activation(&ns, &format!("{ns}/f"), 8);
    store.put_activation(&b).await.unwrap();
    store.flush().await.unwrap();
    let copy = dir.join("flushed.redb");
    std::fs::copy(dir.join("whisk.redb"), &copy).unwrap();
    let crashed = EmbeddedStore::open(&copy).unwrap();
    assert_eq!(
        crashed.get_activation(&ns, &b.activation_id).await.unwrap(),
        Some(b)
    );
}

#[tokio::test]
async fn temporary_files_are_removed_on_drop() {
    let store = EmbeddedStore::temporary().unwrap();
    let dir = store
        ._temp_dir
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap();
    assert!(dir.join("whisk.redb").exists());
    drop(store);
    assert!(!dir.exists());
}

#[tokio::test]
async fn bad_files_are_unavailable_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.redb");
    std::fs::write(
        &path,
        b"this is not a redb file, not at all, but long enough to look at it",
    )
    .unwrap();
    assert!(matches!(
        EmbeddedStore::open(&path),
        Err(StoreError::Unavailable(_))
    ));
    // A directory where the file should be.
    assert!(matches!(
        EmbeddedStore::open(dir.path()),
        Err(StoreError::Unavailable(_))
    ));
    // The same file twice in one process.
    let ok = dir.path().join("ok.redb");
    let _store = EmbeddedStore::open(&ok).unwrap();
    assert!(matches!(
        EmbeddedStore::open(&ok),
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn odd_keys_and_namespaces() {
    let store = EmbeddedStore::temporary().unwrap();
    let kind = EntityKind::Action;
    for key in [
        "",
        "/",
        "\0",
        "ns/\0/x",
        "ns\0x/y",
        "ns/\u{10FFFF}",
        "ns0/z",
        "ns//x",
    ] {
        let rev = store
            .put_entity(kind, key, &json!({"k": key}), None)
            .await
            .unwrap();
        assert_eq!(store.get_entity(kind, key).await.unwrap().unwrap().rev, rev);
    }
    // `ns/\0/x`, `ns/\u{10FFFF}` and `ns//x` are in namespace `ns`; `ns\0x/y` and `ns0/z` are not.
    assert_eq!(store.count_entities(kind, "ns").await.unwrap(), 3);
    assert_eq!(
        store.list_entities(kind, "ns", 0, 10).await.unwrap().len(),
        3
    );
    assert_eq!(store.count_entities(kind, "").await.unwrap(), 1);
    for ns in ["", "\0", "\u{10FFFF}", "a/b"] {
        store
            .list_entities(kind, ns, usize::MAX, usize::MAX)
            .await
            .unwrap();
        let q = ActivationQuery {
            since: Some(i64::MIN),
            upto: Some(i64::MAX),
            skip: usize::MAX,
            limit: usize::MAX,
            ..Default::default()
        };
        store.list_activations(ns, &q).await.unwrap();
        store.count_activations(ns, &q).await.unwrap();
        store.identities_of_namespace(ns).await.unwrap();
    }
    // Negative and extreme start times.
    let ns = unique_namespace("odd");
    for start in [i64::MIN, -1, 0, i64::MAX] {
        store
            .put_activation(&activation(&ns, &format!("{ns}/a"), start))
            .await
            .unwrap();
    }
    let all = ActivationQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_activations(&ns, &all)
            .await
            .unwrap()
            .first()
            .map(|a| a.start),
        Some(i64::MAX)
    );
    assert_eq!(store.count_activations(&ns, &all).await.unwrap(), 4);
}

#[tokio::test]
async fn undecodable_documents_are_corrupt() {
    let store = EmbeddedStore::temporary().unwrap();
    let ns = unique_namespace("bad");
    let good = activation(&ns, &format!("{ns}/f"), 5);
    store.put_activation(&good).await.unwrap();
    let id = good.activation_id.as_str().to_string();
    let txn = store.db.get().unwrap().begin_write().unwrap();
    {
        let key = entity_key(EntityKind::Action, &format!("{ns}/x"));
        txn.open_table(tables::ENTITIES)
            .unwrap()
            .insert(key.as_str(), ("1-a", b"{nope".as_slice()))
            .unwrap();
        txn.open_table(tables::ACTIVATIONS)
            .unwrap()
            .insert(id.as_str(), b"\xff\x00".as_slice())
            .unwrap();
        txn.open_table(tables::IDENTITIES)
            .unwrap()
            .insert("u", b"[]".as_slice())
            .unwrap();
    }
    txn.commit().unwrap();

    let corrupt =
        |r: Result<(), StoreError>| assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    corrupt(
        store
            .get_entity(EntityKind::Action, &format!("{ns}/x"))
            .await
            .map(drop),
    );
    corrupt(
        store
            .list_entities(EntityKind::Action, &ns, 0, 10)
            .await
            .map(drop),
    );
    assert_eq!(
        store.count_entities(EntityKind::Action, &ns).await.unwrap(),
        1
    );
    corrupt(
        store
            .get_activation(&ns, &good.activation_id)
            .await
            .map(drop),
    );
    corrupt(
        store
            .list_activations(
                &ns,
                &ActivationQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .map(drop),
    );
    assert_eq!(
        store
            .count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        1
    );
    corrupt(store.get_identity("u").await.map(drop));
    corrupt(store.identities_of_namespace(&ns).await.map(drop));
    // Writes still work, and a re-put repairs the record.
    store.put_activation(&good).await.unwrap();
    assert_eq!(
        store
            .get_activation(&ns, &good.activation_id)
            .await
            .unwrap(),
        Some(good)
    );
}

#[tokio::test]
async fn concurrent_writes_all_land() {
    let store = Arc::new(EmbeddedStore::temporary().unwrap());
    let ns = unique_namespace("conc");
    let key = format!("{ns}/counter");
    let rev = store
        .put_entity(
            EntityKind::Action,
            &key,
            &entity_doc(&ns, "counter", 0),
            None,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, ns, rev, key) = (Arc::clone(&store), ns.clone(), rev.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .put_activation(&activation(&ns, &format!("{ns}/f"), t * 1000 + i))
                    .await
                    .unwrap();
            }
            // Eight racing updates from the same revision: exactly one wins.
            store
                .put_entity(
                    EntityKind::Action,
                    &key,
                    &entity_doc(&ns, "counter", t),
                    Some(&rev),
                )
                .await
                .is_ok()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(
        store
            .count_activations(&ns, &ActivationQuery::default())
            .await
            .unwrap(),
        400
    );
    let got = store
        .get_entity(EntityKind::Action, &key)
        .await
        .unwrap()
        .unwrap();
    assert!(got.rev.starts_with("2-"));
}

/// Rough costs, printed (run with `--release --nocapture`); nothing is asserted about time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rough_costs() {
    let store = Arc::new(EmbeddedStore::temporary().unwrap());
    let ns = unique_namespace("perf");
    let n: i64 = if cfg!(debug_assertions) { 500 } else { 2000 };
    let records: Vec<_> = (0..n)
        .map(|i| activation(&ns, &format!("{ns}/f"), i))
        .collect();

    let t = Instant::now();
    for a in &records {
        store.put_activation(a).await.unwrap();
    }
    eprintln!(
        "put_activation, one caller: {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    let t = Instant::now();
    let mut tasks = Vec::new();
    for chunk in records.chunks(n as usize / 32) {
        let (store, chunk) = (Arc::clone(&store), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for a in chunk {
                store.put_activation(&a).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eprintln!(
        "put_activation, 32 callers: {:.1} µs each (throughput)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    let t = Instant::now();
    for a in &records {
        store
            .get_activation(&ns, &a.activation_id)
            .await
            .unwrap()
            .unwrap();
    }
    eprintln!(
        "get_activation: {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );

    let q = ActivationQuery {
        limit: 30,
        ..Default::default()
    };
    let t = Instant::now();
    for _ in 0..200 {
        store.list_activations(&ns, &q).await.unwrap();
    }
    eprintln!(
        "list_activations (limit 30): {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / 200.0
    );

    let t = Instant::now();
    store
        .count_activations(&ns, &ActivationQuery::default())
        .await
        .unwrap();
    eprintln!(
        "count_activations over {n}: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6
    );

    let t = Instant::now();
    for i in 0..50 {
        store
            .put_entity(
                EntityKind::Action,
                &format!("{ns}/e{i}"),
                &entity_doc(&ns, "e", i),
                None,
            )
            .await
            .unwrap();
    }
    eprintln!(
        "put_entity (durable): {:.1} µs each",
        t.elapsed().as_secs_f64() * 1e6 / 50.0
    );

    let t = Instant::now();
    store.flush().await.unwrap();
    eprintln!("flush: {:.1} µs", t.elapsed().as_secs_f64() * 1e6);
}

/// Rough costs of bare redb commits, printed (run with `--release --nocapture`).
#[test]
fn raw_redb_costs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("raw.redb")).unwrap();
    let json = serde_json::to_vec(&activation("raw", "raw/y", 1)).unwrap();
    let commit = |durability: redb::Durability, ids: std::ops::Range<usize>| {
        let t = Instant::now();
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability);
        {
            let mut table = txn.open_table(tables::ACTIVATIONS).unwrap();
            for i in ids {
                let id = format!("{i:032}");
                table.insert(id.as_str(), json.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        t.elapsed().as_secs_f64() * 1e6
    };
    for round in 0..3 {
        let n = 400;
        let none: f64 = (0..n)
            .map(|i| commit(redb::Durability::None, round * n + i..round * n + i + 1))
            .sum();
        let durable = commit(redb::Durability::Immediate, 0..0);
        let again = commit(redb::Durability::Immediate, 0..0);
        eprintln!(
            "raw: {:.1} µs per 1-record non-durable commit; durable commit after {n}: {durable:.0} µs, then {again:.0} µs",
            none / n as f64
        );
    }
    let batch = commit(redb::Durability::None, 10_000..10_100);
    eprintln!("raw: one non-durable commit of 100 records: {batch:.0} µs");
}
