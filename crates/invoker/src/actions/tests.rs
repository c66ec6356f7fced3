//! The action cache over a real embedded store, behind a wrapper that counts action reads and
//! can slow them down (to hold concurrent misses together) or fail them.

use super::*;
use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use whisk_core::{Activation, ActivationId, Identity};
use whisk_store::{ActivationQuery, EmbeddedStore, Revisioned};

struct Counting {
    inner: EmbeddedStore,
    reads: AtomicU64,
    delay: Duration,
    fail: AtomicBool,
}

#[async_trait]
impl Store for Counting {
    async fn get_entity(
        &self,
        kind: EntityKind,
        key: &str,
    ) -> Result<Option<Revisioned<Value>>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is down".into()));
        }
        self.inner.get_entity(kind, key).await
    }
    async fn put_entity(
        &self,
        kind: EntityKind,
        key: &str,
        doc: &Value,
        rev: Option<&str>,
    ) -> Result<String, StoreError> {
        self.inner.put_entity(kind, key, doc, rev).await
    }
    async fn delete_entity(
        &self,
        kind: EntityKind,
        key: &str,
        rev: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.delete_entity(kind, key, rev).await
    }
    async fn list_entities(
        &self,
        kind: EntityKind,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        self.inner.list_entities(kind, namespace, skip, limit).await
    }
    async fn count_entities(&self, kind: EntityKind, namespace: &str) -> Result<usize, StoreError> {
        self.inner.count_entities(kind, namespace).await
    }
    async fn put_activation(&self, activation: &Activation) -> Result<(), StoreError> {
        self.inner.put_activation(activation).await
    }
    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        self.inner.get_activation(namespace, id).await
    }
    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>, StoreError> {
        self.inner.list_activations(namespace, query).await
    }
    async fn count_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<usize, StoreError> {
        self.inner.count_activations(namespace, query).await
    }
    async fn get_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        self.inner.get_identity(uuid).await
    }
    async fn put_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.inner.put_identity(identity).await
    }
    async fn identities_of_namespace(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        self.inner.identities_of_namespace(namespace).await
    }
    async fn delete_identity(&self, uuid: &str) -> Result<(), StoreError> {
        self.inner.delete_identity(uuid).await
    }
    async fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.inner.list_identities().await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

fn store(delay_ms: u64) -> Arc<Counting> {
    Arc::new(Counting {
        inner: EmbeddedStore::temporary().unwrap(),
        reads: AtomicU64::new(0),
        delay: Duration::from_millis(delay_ms),
        fail: AtomicBool::new(false),
    })
}

/// Stores action `guest/<name>` with `code` (over revision `rev` if given); its new revision.
async fn put(s: &Counting, name: &str, code: &str, rev: Option<&str>) -> String {
    let doc = json!({
        "namespace": "guest",
        "name": name,
        "version": "0.0.1",
        "publish": false,
        "exec": {"kind": "python:3", "code": code, "binary": false},
        "parameters": [],
        "annotations": [],
        "limits": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1},
        "updated": 0,
    });
    let key = format!("guest/{name}");
    s.put_entity(EntityKind::Action, &key, &doc, rev)
        .await
        .unwrap()
}

fn code_of(f: &Fetched) -> &str {
    f.action.exec.code.as_deref().unwrap()
}

#[tokio::test]
async fn a_second_get_of_one_revision_is_a_hit_sharing_the_document() {
    let s = store(0);
    let rev = put(&s, "a", "def main(a): return a", None).await;
    let cache = Actions::new(s.clone(), DEFAULT_MAX_BYTES);
    let first = cache.get("guest/a", &rev).await.unwrap();
    let second = cache.get("guest/a", &rev).await.unwrap();
    assert!(Arc::ptr_eq(&first.action, &second.action));
    assert_eq!(second.revision, rev);
    assert_eq!(s.reads.load(Ordering::SeqCst), 1);
    let st = cache.stats();
    assert_eq!((st.hits, st.misses, st.fetches, st.entries), (1, 1, 1, 1));
}

#[tokio::test]
async fn a_new_revision_is_a_miss_and_an_old_one_runs_what_the_store_holds() {
    let s = store(0);
    let rev1 = put(&s, "a", "v1", None).await;
    let cache = Actions::new(s.clone(), DEFAULT_MAX_BYTES);
    assert_eq!(code_of(&cache.get("guest/a", &rev1).await.unwrap()), "v1");
    let rev2 = put(&s, "a", "v2", Some(&rev1)).await;
    assert_ne!(rev1, rev2);
    let updated = cache.get("guest/a", &rev2).await.unwrap();
    assert_eq!(
        (code_of(&updated), updated.revision.as_str()),
        ("v2", rev2.as_str())
    );
    assert_eq!(s.reads.load(Ordering::SeqCst), 2);
    // A message accepted before the update: the store holds only the new revision.
    let late = cache.get("guest/a", &rev1).await.unwrap();
    assert_eq!(
        (code_of(&late), late.revision.as_str()),
        ("v2", rev2.as_str())
    );
    // One entry per action: the new revision replaced the old.
    assert_eq!(cache.stats().entries, 1);
    assert!(cache.get("guest/a", &rev2).await.is_ok());
    assert_eq!(cache.stats().hits, 1);
    // The old revision is known superseded now: later messages naming it hit the new one.
    let again = cache.get("guest/a", &rev1).await.unwrap();
    assert_eq!(again.revision, rev2);
    assert_eq!(s.reads.load(Ordering::SeqCst), 3);
    assert_eq!(cache.stats().hits, 2);
    // A third revision replaces the entry and forgets what it superseded.
    let rev3 = put(&s, "a", "v3", Some(&rev2)).await;
    assert_eq!(code_of(&cache.get("guest/a", &rev3).await.unwrap()), "v3");
    assert_eq!(code_of(&cache.get("guest/a", &rev1).await.unwrap()), "v3");
    assert_eq!(s.reads.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn bytes_bound_the_cache_and_the_least_recently_used_go_first() {
    let s = store(0);
    let code = "x".repeat(10_000);
    let mut revs = vec![];
    for name in ["a", "b", "c", "d"] {
        revs.push(put(&s, name, &code, None).await);
    }
    let one = 10_000 + ENTRY_OVERHEAD;
    let cache = Actions::new(s.clone(), 3 * one + 100);
    for (name, rev) in ["a", "b", "c"].iter().zip(&revs) {
        cache.get(&format!("guest/{name}"), rev).await.unwrap();
    }
    assert_eq!(cache.stats().entries, 3);
    // `a` used again: `b` is now the least recently used, and `d` pushes it out.
    cache.get("guest/a", &revs[0]).await.unwrap();
    cache.get("guest/d", &revs[3]).await.unwrap();
    let st = cache.stats();
    assert_eq!(st.entries, 3);
    assert!(st.bytes <= cache.max_bytes(), "{st:?}");
    let reads = s.reads.load(Ordering::SeqCst);
    cache.get("guest/a", &revs[0]).await.unwrap();
    cache.get("guest/d", &revs[3]).await.unwrap();
    assert_eq!(s.reads.load(Ordering::SeqCst), reads, "a and d are kept");
    cache.get("guest/b", &revs[1]).await.unwrap();
    assert_eq!(s.reads.load(Ordering::SeqCst), reads + 1, "b was evicted");

    // An action heavier than the whole bound runs but is not kept (nor evicts the others).
    let big = put(&s, "big", &"y".repeat(50_000), None).await;
    assert_eq!(
        code_of(&cache.get("guest/big", &big).await.unwrap()).len(),
        50_000
    );
    assert_eq!(cache.stats().entries, 3);
}

#[tokio::test]
async fn concurrent_misses_of_one_revision_read_the_store_once() {
    let s = store(100);
    let rev = put(&s, "a", &"z".repeat(1_500_000), None).await;
    let cache = Actions::new(s.clone(), DEFAULT_MAX_BYTES);
    let all = futures::future::join_all((0..20).map(|_| cache.get("guest/a", &rev))).await;
    let first = all[0].as_ref().unwrap();
    for f in &all {
        assert!(Arc::ptr_eq(&f.as_ref().unwrap().action, &first.action));
    }
    assert_eq!(s.reads.load(Ordering::SeqCst), 1);
    let st = cache.stats();
    assert_eq!((st.misses, st.fetches, st.entries), (20, 1, 1));
    assert!(cache.get("guest/a", &rev).await.is_ok());
    assert_eq!(s.reads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deleted_and_unreachable_actions_are_errors_that_say_why() {
    let s = store(0);
    let rev = put(&s, "a", "v1", None).await;
    let cache = Actions::new(s.clone(), DEFAULT_MAX_BYTES);
    s.delete_entity(EntityKind::Action, "guest/a", None)
        .await
        .unwrap();
    let e = cache.get("guest/a", &rev).await.unwrap_err();
    assert_eq!(e, FetchError::NotFound("guest/a".into()));
    assert!(!e.is_system());
    assert!(e.to_string().contains("deleted"), "{e}");
    assert_eq!(cache.stats().entries, 0);

    let rev = put(&s, "b", "v1", None).await;
    s.fail.store(true, Ordering::SeqCst);
    let before = s.reads.load(Ordering::SeqCst);
    let e = cache.get("guest/b", &rev).await.unwrap_err();
    assert!(matches!(e, FetchError::Store(..)) && e.is_system(), "{e:?}");
    assert_eq!(
        s.reads.load(Ordering::SeqCst) - before,
        u64::from(FETCH_ATTEMPTS)
    );
    // Failures are not kept: the store back, the next get reads it.
    s.fail.store(false, Ordering::SeqCst);
    assert_eq!(code_of(&cache.get("guest/b", &rev).await.unwrap()), "v1");
}
