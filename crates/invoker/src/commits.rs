//! At-least-once consumption with activations handled concurrently: an offset is committed
//! only when it and every offset before it on its partition are handled, so a crash never
//! skips an accepted activation (it may run again after a restart instead).

use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Partition {
    in_flight: BTreeSet<i64>,
    highest_done: Option<i64>,
    committed: Option<i64>,
}

/// Tracks handled offsets per partition.
#[derive(Default)]
pub struct CommitTracker {
    partitions: HashMap<i32, Partition>,
}

impl CommitTracker {
    /// An offset started being handled.
    pub fn start(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        // Nothing before the first offset seen is ours to commit.
        p.committed.get_or_insert(offset - 1);
        p.in_flight.insert(offset);
    }

    /// An offset is handled; returns the offset to commit now, if the committable point moved.
    pub fn done(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.entry(partition).or_default();
        p.in_flight.remove(&offset);
        p.highest_done = Some(p.highest_done.map_or(offset, |h| h.max(offset)));
        let safe = match p.in_flight.first() {
            Some(&lowest) => lowest - 1,
            None => p.highest_done?,
        };
        if p.committed.is_some_and(|c| c >= safe) || p.highest_done.is_none_or(|h| safe > h) {
            return None;
        }
        p.committed = Some(safe);
        Some(safe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_a_handled_prefix() {
        let mut t = CommitTracker::default();
        for o in 1..=3 {
            t.start(0, o);
        }
        assert_eq!(t.done(0, 2), None, "1 still running");
        assert_eq!(t.done(0, 3), None);
        assert_eq!(t.done(0, 1), Some(3));
        t.start(0, 4);
        t.start(1, 10);
        assert_eq!(t.done(1, 10), Some(10));
        assert_eq!(t.done(0, 4), Some(4));
    }
}
