//! The CouchDB store against a real pouchdb-server, started by `scripts/couchdb.sh` (which
//! installs it into the cache when missing) on a free port with its own state folder per
//! test: the conformance suite, a reopened store, concurrent updates, a server restart under
//! a live store, and a rough put_activation timing (printed, never asserted).
//!
//! Without pouchdb-server (no Node.js/npm, no registry), these tests fail with the script's
//! message: they never pass silently.

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisk_store::testsuite::{
    activation, check_fixture, conformance_suite, entity_doc, unique_namespace, write_fixture,
};
use whisk_store::{CouchConfig, CouchStore, EntityKind, Store, StoreError};
use whisk_test_support::services::Couch;

/// A config for a database set no other test uses, on `server`.
fn fresh_config(server: &Couch) -> CouchConfig {
    CouchConfig {
        url: server.url(),
        db_prefix: format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        ..CouchConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn couch_store_conforms() {
    let server = Couch::start();
    let store = CouchStore::connect(fresh_config(&server)).await.unwrap();
    conformance_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_sees_everything() {
    let server = Couch::start();
    let config = fresh_config(&server);
    let fixture = {
        let store = CouchStore::connect(config.clone()).await.unwrap();
        write_fixture(&store).await
    };
    // A restarted controller: a new store object on the same databases.
    let store: Box<dyn Store> = Box::new(CouchStore::connect(config.clone()).await.unwrap());
    check_fixture(store.as_ref(), &fixture).await;
    // And a second one alongside (connect finds the schema in place).
    let other = CouchStore::connect(config).await.unwrap();
    check_fixture(&other, &fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_one_revision_have_one_winner() {
    let server = Couch::start();
    let store = Arc::new(CouchStore::connect(fresh_config(&server)).await.unwrap());
    let ns = unique_namespace("race");
    let key = format!("{ns}/hot");
    let kind = EntityKind::Action;

    // Creates: one wins.
    let outcomes = race(&store, 16, |store, i| {
        let key = key.clone();
        let ns = ns.clone();
        async move {
            store
                .put_entity(kind, &key, &entity_doc(&ns, "hot", i), None)
                .await
        }
    })
    .await;
    let rev = winner(outcomes);

    // Updates from the same revision: one wins, and its document is the one stored.
    let outcomes = race(&store, 16, |store, i| {
        let (key, ns, rev) = (key.clone(), ns.clone(), rev.clone());
        async move {
            let doc = entity_doc(&ns, "hot", 100 + i);
            store
                .put_entity(kind, &key, &doc, Some(&rev))
                .await
                .map(|r| (r, doc))
        }
    })
    .await;
    let (rev2, doc2) = winner(outcomes);
    let stored = store.get_entity(kind, &key).await.unwrap().expect("stored");
    assert_eq!((stored.rev, stored.doc), (rev2.clone(), doc2));

    // Deletes from the same revision: one wins.
    let outcomes = race(&store, 8, |store, _| {
        let (key, rev) = (key.clone(), rev2.clone());
        async move { store.delete_entity(kind, &key, Some(&rev)).await }
    })
    .await;
    let wins = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, Ok(()) | Err(StoreError::Conflict | StoreError::NotFound))));
    assert!(store.get_entity(kind, &key).await.unwrap().is_none());
}

async fn race<T, F, Fut>(store: &Arc<CouchStore>, n: i64, f: F) -> Vec<Result<T, StoreError>>
where
    T: Send + 'static,
    F: Fn(Arc<CouchStore>, i64) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n as usize));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let fut = f(Arc::clone(store), i);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                fut.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// The single success among `outcomes`; every other one is a conflict.
fn winner<T: std::fmt::Debug>(outcomes: Vec<Result<T, StoreError>>) -> T {
    let mut wins = Vec::new();
    for o in outcomes {
        match o {
            Ok(v) => wins.push(v),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("expected a conflict, got {e:?}"),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one winner: {wins:?}");
    wins.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_server_restart() {
    let server = Couch::start();
    let store = CouchStore::connect(fresh_config(&server)).await.unwrap();
    let ns = unique_namespace("restart");
    let key = format!("{ns}/kept");
    let kind = EntityKind::Action;
    let doc = entity_doc(&ns, "kept", 1);
    let rev = store.put_entity(kind, &key, &doc, None).await.unwrap();

    server.down();
    for round in 0..3 {
        let t = Instant::now();
        let get = store.get_entity(kind, &key).await;
        assert!(matches!(get, Err(StoreError::Unavailable(_))), "{get:?}");
        let put = store
            .put_activation(&activation(&ns, &format!("{ns}/kept"), round))
            .await;
        assert!(matches!(put, Err(StoreError::Unavailable(_))), "{put:?}");
        let list = store.list_entities(kind, &ns, 0, 10).await;
        assert!(matches!(list, Err(StoreError::Unavailable(_))), "{list:?}");
        eprintln!(
            "server down, round {round}: three calls answered Unavailable in {:?}",
            t.elapsed()
        );
    }
    let ping = CouchStore::ping(&fresh_config(&server)).await;
    assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
    // A store cannot be opened while the server is down, with a clear error.
    let refused = CouchStore::connect(fresh_config(&server)).await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("cannot set up CouchDB")),
        "{refused:?}"
    );

    server.up();
    let ping = CouchStore::ping(&fresh_config(&server)).await.unwrap();
    assert!(ping.starts_with("pouchdb-server "), "{ping}");
    // The same store object works again, and the data survived (it is on disk).
    let got = store.get_entity(kind, &key).await.unwrap().expect("kept");
    assert_eq!((got.rev.as_str(), &got.doc), (rev.as_str(), &doc));
    let a = activation(&ns, &format!("{ns}/kept"), 7);
    store.put_activation(&a).await.unwrap();
    assert_eq!(
        store.get_activation(&ns, &a.activation_id).await.unwrap(),
        Some(a)
    );
    assert_eq!(store.list_entities(kind, &ns, 0, 10).await.unwrap(), [doc]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_clear_error() {
    let server = Couch::start();
    let config = CouchConfig {
        password: "wrong".into(),
        ..fresh_config(&server)
    };
    let ping = CouchStore::ping(&config).await;
    assert!(
        matches!(&ping, Err(StoreError::Unavailable(m)) if m.contains("credentials")),
        "{ping:?}"
    );
    let refused = CouchStore::connect(config).await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("credentials")),
        "{refused:?}"
    );
    // The server is unharmed: the right credentials work.
    let store = CouchStore::connect(fresh_config(&server)).await.unwrap();
    store
        .put_entity(EntityKind::Rule, "ns/r", &json!({"name": "r"}), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_activation_timing() {
    let server = Couch::start();
    let store = Arc::new(CouchStore::connect(fresh_config(&server)).await.unwrap());
    let ns = unique_namespace("bench");
    let path = format!("{ns}/noop");
    // Warm up the connection pool.
    for i in 0..20 {
        store
            .put_activation(&activation(&ns, &path, i))
            .await
            .unwrap();
    }

    let n = 300;
    let records: Vec<_> = (0..n).map(|i| activation(&ns, &path, i)).collect();
    let t = Instant::now();
    for a in &records {
        store.put_activation(a).await.unwrap();
    }
    let sequential = per_op(t.elapsed(), n);
    let t = Instant::now();
    for a in &records {
        store.get_activation(&ns, &a.activation_id).await.unwrap();
    }
    let reads = per_op(t.elapsed(), n);

    let (clients, each) = (32, 60);
    let t = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (store, ns, path) = (Arc::clone(&store), ns.clone(), path.clone());
            tokio::spawn(async move {
                for i in 0..each {
                    let a = activation(&ns, &path, c * 1000 + i);
                    store.put_activation(&a).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = per_op(t.elapsed(), clients * each);
    eprintln!(
        "put_activation on pouchdb-server: sequential {sequential:.0} µs/op; \
         {clients} concurrent {concurrent:.0} µs/op ({:.0} records/s); \
         get_activation sequential {reads:.0} µs/op",
        1e6 / concurrent
    );
    let all = whisk_store::ActivationQuery {
        limit: 1,
        ..Default::default()
    };
    assert_eq!(
        store.count_activations(&ns, &all).await.unwrap(),
        (20 + n + clients * each) as usize
    );
}

fn per_op(elapsed: Duration, ops: i64) -> f64 {
    elapsed.as_secs_f64() * 1e6 / ops as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_databases_are_recreated_by_the_next_write() {
    // As after a restart of an in-memory server: the databases vanish under a live store.
    let server = Couch::start();
    let config = fresh_config(&server);
    let store = CouchStore::connect(config.clone()).await.unwrap();
    let admin = couch_rs::Client::new(&config.url, &config.username, &config.password).unwrap();
    for db in ["whisks", "activations", "subjects"] {
        let name = format!("{}{db}", config.db_prefix);
        assert!(admin.destroy_db(&name).await.unwrap(), "dropped {name}");
    }
    let ns = unique_namespace("lost");
    let key = format!("{ns}/back");
    assert!(store
        .get_entity(EntityKind::Action, &key)
        .await
        .unwrap()
        .is_none());
    let doc = entity_doc(&ns, "back", 1);
    store
        .put_entity(EntityKind::Action, &key, &doc, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .list_entities(EntityKind::Action, &ns, 0, 10)
            .await
            .unwrap(),
        [doc]
    );
    let a = activation(&ns, &format!("{ns}/back"), 1);
    store.put_activation(&a).await.unwrap();
    assert_eq!(
        store.get_activation(&ns, &a.activation_id).await.unwrap(),
        Some(a)
    );
    let who = whisk_core::Identity::generate("back", &ns);
    store.put_identity(&who).await.unwrap();
    assert_eq!(store.identities_of_namespace(&ns).await.unwrap(), [who]);
}
