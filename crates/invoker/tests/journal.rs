//! The invoker's started journal: started and finished marks, reading them back after a
//! reopen (as after a crash), the interrupted records of what was left open, redeliveries not
//! run again, and compaction.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use whisk_core::{ActivationId, StatusCode};
use whisk_invoker::journal::{interrupted, Journal, Started, COMPACT_AT, INTERRUPTED};
use whisk_proto::ActivationMessage;
use whisk_store::{EmbeddedStore, Store};

fn message(id: &ActivationId) -> ActivationMessage {
    ActivationMessage {
        activation_id: id.as_str().to_string(),
        namespace: "guest".into(),
        subject: "guest".into(),
        action_path: "guest/pkg/slow".into(),
        action_version: "0.0.3".into(),
        ..Default::default()
    }
}

fn open(dir: &std::path::Path) -> Arc<Journal> {
    Arc::new(Journal::open(dir, 0, CancellationToken::new()).unwrap())
}

#[tokio::test]
async fn started_activations_get_an_interrupted_record_after_a_reopen_and_never_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::temporary().unwrap();
    let (a, b, c) = (
        ActivationId::generate(),
        ActivationId::generate(),
        ActivationId::generate(),
    );
    {
        let j = open(dir.path());
        assert!(j.leftover().is_empty());
        assert!(j.start(&message(&a), 0, 1));
        assert!(j.start(&message(&b), 0, 2));
        assert!(!j.start(&message(&a), 0, 1), "running already");
        // b ends normally: its record is stored.
        let started = Started {
            id: b.as_str().to_string(),
            partition: 0,
            offset: 2,
            start: 1,
            namespace: "guest".into(),
            action_path: "guest/pkg/slow".into(),
            action_version: "0.0.3".into(),
            subject: "guest".into(),
            cause: String::new(),
        };
        assert!(j.store(&store, &interrupted(&started)).await);
        assert!(!j.is_open(b.as_str()));
        assert!(!j.start(&message(&b), 0, 2), "finished already");
        // Dropped without finishing a: as a kill.
    }
    let j = open(dir.path());
    let left = j.leftover();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0.id, a.as_str());
    assert_eq!(left[0].0.action_path, "guest/pkg/slow");
    assert!(left[0].1.is_none(), "a had not ended");
    assert_eq!(j.recover(&store).await, 1);
    assert!(j.leftover().is_empty());
    let rec = store.get_activation("guest", &a).await.unwrap().unwrap();
    assert_eq!(rec.response.status_code, StatusCode::WhiskError);
    assert_eq!(rec.response.result.as_ref().unwrap()["error"], INTERRUPTED);
    assert_eq!((rec.name.as_str(), rec.version.as_str()), ("slow", "0.0.3"));
    // Redeliveries of a and b are not run; a new activation is.
    assert!(!j.start(&message(&a), 0, 1));
    assert!(!j.start(&message(&b), 0, 2));
    assert!(j.start(&message(&c), 0, 3));
    drop(j);
    let j = open(dir.path());
    assert_eq!(j.leftover().len(), 1, "c is open");
    assert!(
        !j.start(&message(&a), 0, 1),
        "still finished after another reopen"
    );
}

/// A record journaled as ended (reported to the controller) but not stored before the crash
/// is stored as it was at the next start, not replaced by the interrupted one.
#[tokio::test]
async fn an_ended_record_not_stored_before_a_crash_is_stored_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::temporary().unwrap();
    let id = ActivationId::generate();
    let record = {
        let j = open(dir.path());
        assert!(j.start(&message(&id), 0, 7));
        let mut record = interrupted(&j.open_entry(id.as_str()).unwrap());
        record.response = whisk_core::ActivationResponse::success(serde_json::json!({"n": 1}));
        // Journaled now; the store future is dropped before it ran (as by a kill).
        drop(j.store(&store, &record));
        record
    };
    let j = open(dir.path());
    let left = j.leftover();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.as_ref(), Some(&record));
    assert_eq!(j.recover(&store).await, 1);
    let stored = store.get_activation("guest", &id).await.unwrap().unwrap();
    assert_eq!(stored.response.status_code, StatusCode::Success);
    assert_eq!(stored, record);
    assert!(!j.start(&message(&id), 0, 7), "not run again");
    drop(j);
    assert!(open(dir.path()).leftover().is_empty());
}

#[tokio::test]
async fn compaction_keeps_what_is_open_or_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::temporary().unwrap();
    let j = open(dir.path());
    let long = ActivationId::generate();
    assert!(j.start(&message(&long), 0, 1));
    let uncommitted = ActivationId::generate();
    // Partition 1 is never committed; partition 0 far ahead.
    assert!(j.start(&message(&uncommitted), 1, 1));
    j.finish(uncommitted.as_str());
    j.committed(0, 1_000_000);
    let mut offset = 2;
    let mut finish = |id: &ActivationId| {
        assert!(j.start(&message(id), 0, offset));
        offset += 1;
        j.finish(id.as_str());
    };
    // Enough finished ones to pass the compaction threshold, all committed.
    let mut ids = vec![];
    let line = 300u64;
    for _ in 0..(2 * COMPACT_AT / line) {
        let id = ActivationId::generate();
        finish(&id);
        ids.push(id);
    }
    let path = dir.path().join("invoker0.journal");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < COMPACT_AT, "compacted: {size} bytes");
    drop(j);
    let j = open(dir.path());
    assert_eq!(j.leftover().len(), 1, "the long one is still open");
    assert!(
        !j.start(&message(&uncommitted), 1, 1),
        "its offset was never committed"
    );
    // The committed ones were dropped: a new delivery of one would run (none comes: its
    // offset is committed).
    assert!(j.start(&message(&ids[0]), 0, 2));
    assert_eq!(j.recover(&store).await, 1);
}

/// Rough cost of the journal per activation (started, ended with its record, finished),
/// printed (run with `--release --nocapture`); nothing is asserted about time.
#[tokio::test]
async fn rough_cost_per_activation() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let store = EmbeddedStore::temporary().unwrap();
    let n = 5000;
    let ids: Vec<_> = (0..n).map(|_| ActivationId::generate()).collect();
    let t = std::time::Instant::now();
    for (i, id) in ids.iter().enumerate() {
        assert!(j.start(&message(id), 0, i as i64));
        let record = interrupted(&j.open_entry(id.as_str()).unwrap());
        // The store future is not awaited: only the journal's own writes are timed.
        drop(j.store(&store, &record));
        j.finish(id.as_str());
        j.committed(0, i as i64);
    }
    eprintln!(
        "journal: {:.1} µs per activation (start, ended, finished)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
