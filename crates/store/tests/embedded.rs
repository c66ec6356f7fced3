//! The embedded store through its public API: the conformance suite, and a restart.

use whisk_store::testsuite::{check_fixture, conformance_suite, write_fixture};
use whisk_store::{EmbeddedStore, Store};

#[tokio::test]
async fn embedded_store_conforms() {
    let store = EmbeddedStore::temporary().unwrap();
    conformance_suite(&store).await;
}

#[tokio::test]
async fn embedded_store_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("whisk.redb");
    let fixture = {
        let store = EmbeddedStore::open(&path).unwrap();
        conformance_suite(&store).await;
        write_fixture(&store).await
    };
    let store = EmbeddedStore::open(&path).unwrap();
    check_fixture(&store, &fixture).await;
    // A flushed store reopens the same way.
    let again = write_fixture(&store).await;
    store.flush().await.unwrap();
    drop(store);
    let store: Box<dyn Store> = Box::new(EmbeddedStore::open(&path).unwrap());
    check_fixture(store.as_ref(), &fixture).await;
    check_fixture(store.as_ref(), &again).await;
}
