//! [`Budget`]: how much of the invoker's user memory the activations it took off the bus hold,
//! and the back-pressure that follows. The consumer loop asks [`Budget::admit`] before it runs
//! a delivered message and does not receive the next one until the answer comes: while the
//! activations in flight hold the whole budget the topic is left alone (prefetch stays with the
//! broker), and offsets of finished activations keep being committed meanwhile.
//!
//! What one activation holds ([`charge_of`]): the message's `memory_mb`, the controller's
//! reservation for it (its action's memory, shared by the activations of one container when its
//! kind runs several at once: `limits.concurrency`); from the action document of a message
//! that carries one instead; the smallest action memory when the message says neither (a count
//! bound: budget / 128 MB activations at most).
//!
//! Rules of [`Budget::try_admit`]:
//! - an activation is admitted when it fits in what is left of the budget;
//! - one larger than the whole budget is admitted alone (the pool then answers it with its own
//!   error: the invoker has too little memory in all);
//! - a member of a gang is admitted up to twice the budget: the controller admits a gang only
//!   when all its members fit at once, and its members wait for each other, so one held back
//!   behind other work here would stall the peers already running elsewhere. The container
//!   pool still runs no more than the budget at once; the overdraft waits there for memory.

use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;
use whisk_proto::ActivationMessage;

/// The memory budget of the activations in flight.
pub struct Budget {
    capacity_mb: u64,
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Default)]
struct State {
    held_mb: u64,
    count: usize,
    peak_count: usize,
    peak_mb: u64,
    waited: u64,
}

/// The share of the budget one admitted activation holds; given back when dropped.
pub struct Charge {
    budget: Arc<Budget>,
    mb: u64,
}

impl Drop for Charge {
    fn drop(&mut self) {
        {
            let mut s = self.budget.state.lock();
            s.held_mb -= self.mb;
            s.count -= 1;
        }
        self.budget.freed.notify_waiters();
    }
}

impl Budget {
    /// A budget of `capacity_mb` (at least 1).
    pub fn new(capacity_mb: u64) -> Arc<Self> {
        Arc::new(Self {
            capacity_mb: capacity_mb.max(1),
            state: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// The budget, MB.
    pub fn capacity_mb(&self) -> u64 {
        self.capacity_mb
    }

    /// Memory the activations in flight hold, MB.
    pub fn held_mb(&self) -> u64 {
        self.state.lock().held_mb
    }

    /// Activations in flight (admitted, not yet finished).
    pub fn in_flight(&self) -> usize {
        self.state.lock().count
    }

    /// Most activations in flight at once since start.
    pub fn peak_in_flight(&self) -> usize {
        self.state.lock().peak_count
    }

    /// Most memory held at once since start, MB.
    pub fn peak_mb(&self) -> u64 {
        self.state.lock().peak_mb
    }

    /// How many times an activation had to wait for room (back-pressure episodes).
    pub fn waits(&self) -> u64 {
        self.state.lock().waited
    }

    /// Admits an activation holding `mb` if the rules allow it now.
    pub fn try_admit(self: &Arc<Self>, mb: u64, gang: bool) -> Option<Charge> {
        let mut s = self.state.lock();
        let limit = if gang {
            self.capacity_mb.saturating_mul(2)
        } else {
            self.capacity_mb
        };
        // Saturating: a corrupt share (up to 2^64-1 MB) waits its turn; no overflow panic.
        if s.count > 0 && s.held_mb.saturating_add(mb) > limit {
            return None;
        }
        s.held_mb += mb;
        s.count += 1;
        s.peak_count = s.peak_count.max(s.count);
        s.peak_mb = s.peak_mb.max(s.held_mb);
        Some(Charge {
            budget: self.clone(),
            mb,
        })
    }

    /// Admits an activation holding `mb`, waiting (without polling) for activations in flight
    /// to end until it fits.
    pub async fn admit(self: Arc<Self>, mb: u64, gang: bool) -> Charge {
        let mut counted = false;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(c) = self.try_admit(mb, gang) {
                return c;
            }
            if !counted {
                counted = true;
                self.state.lock().waited += 1;
            }
            freed.await;
        }
    }
}

/// What an activation holds of the budget, MB: see the module's documentation.
pub fn charge_of(msg: &ActivationMessage) -> u64 {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Exec {
        kind: String,
        image: Option<String>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Limits {
        memory: u64,
        concurrency: u64,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Doc {
        exec: Exec,
        limits: Limits,
    }
    let min = whisk_core::limits::MEMORY_MIN_MB;
    // Messages name their action and say its share (`memory_mb`); the document is not there.
    if msg.memory_mb > 0 {
        return msg.memory_mb;
    }
    if msg.action.is_empty() {
        return min;
    }
    match serde_json::from_slice::<Doc>(&msg.action) {
        Ok(d) if d.limits.memory > 0 => whisk_core::limits::activation_share_mb(
            d.limits.memory,
            d.limits.concurrency,
            &d.exec.kind,
            d.exec.image.as_deref(),
        ),
        _ => min,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn admits_within_the_budget_and_frees_on_drop() {
        let b = Budget::new(512);
        let one = b.try_admit(256, false).unwrap();
        let two = b.try_admit(256, false).unwrap();
        assert!(b.try_admit(128, false).is_none());
        assert_eq!((b.in_flight(), b.held_mb()), (2, 512));
        // A gang member may overdraw up to twice the budget.
        let g = b.try_admit(256, true).unwrap();
        drop((one, two, g));
        assert_eq!((b.in_flight(), b.held_mb(), b.peak_in_flight()), (0, 0, 3));
        // Larger than the whole budget: admitted alone.
        let big = b.try_admit(2048, false).unwrap();
        assert!(b.try_admit(128, false).is_none());
        drop(big);
    }

    #[tokio::test]
    async fn admit_waits_for_room() {
        let b = Budget::new(256);
        let held = b.try_admit(256, false).unwrap();
        let waiter = tokio::spawn(b.clone().admit(256, false));
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert!(!waiter.is_finished());
        drop(held);
        let c = tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.in_flight(), b.waits()), (1, 1));
        drop(c);
    }

    #[test]
    fn charges_from_the_message() {
        let msg = |action: serde_json::Value| ActivationMessage {
            action: serde_json::to_vec(&action).unwrap(),
            ..Default::default()
        };
        let python = json!({"exec": {"kind": "python:3", "code": "x"}, "limits": {"memory": 512, "concurrency": 4}});
        assert_eq!(charge_of(&msg(python)), 512);
        let node =
            json!({"exec": {"kind": "nodejs:20"}, "limits": {"memory": 256, "concurrency": 3}});
        assert_eq!(charge_of(&msg(node)), 86);
        assert_eq!(charge_of(&ActivationMessage::default()), 128);
        let reserved = ActivationMessage {
            memory_mb: 300,
            ..Default::default()
        };
        assert_eq!(charge_of(&reserved), 300);
        assert_eq!(charge_of(&msg(json!({"exec": 1}))), 128);
    }
}
