//! The sharding choice of OpenWhisk's `ShardingContainerPoolBalancer`, as pure functions:
//! a home invoker from a hash of namespace and action, a probe step co-prime with the number of
//! invokers, the first healthy invoker with free memory ([`choose`]).
//!
//! Unlike OpenWhisk, which then places the activation on a random healthy invoker anyway
//! (overfilling it), [`choose`] finds nothing when every healthy invoker is full: the caller
//! waits briefly for room or answers 503 "System is overloaded" ([`crate::health::Invokers`]).
//! Only a gang member, whose gang was admitted as a whole, may still go to a random healthy
//! invoker ([`overflow`]) rather than leave its gang incomplete.
//!
//! An invocation may ask for [`Placement::Spread`] (`-p placement spread`): the healthy invoker
//! with the most free memory ([`spread`]) instead of the home invoker, so that the members of a
//! gang, or instances invoked one after another, land on different invokers (nodes) while
//! there is room, as the seed's experiments placed `myname0..3` one per node.

/// What the balancer knows of one invoker when choosing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Healthy and recently seen.
    pub healthy: bool,
    /// Memory (MB) not taken by activations this controller placed there.
    pub free_mb: u64,
}

/// Java's `String.hashCode`, which OpenWhisk's balancer hashes names with.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// `abs(namespace.hashCode ^ fqActionName.hashCode)`.
pub fn shard_hash(namespace: &str, fq_action: &str) -> u64 {
    u64::from((java_hash(namespace) ^ java_hash(fq_action)).unsigned_abs())
}

/// The numbers in `1..=n` co-prime with `n` (`[1]` for n ≤ 1).
pub fn coprime_steps(n: usize) -> Vec<usize> {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    if n <= 1 {
        return vec![1];
    }
    (1..=n).filter(|s| gcd(*s, n) == 1).collect()
}

/// The invokers (a suffix of `0..n`) that may run an action: all for managed kinds, the last
/// `ceil(n * blackbox_fraction)` (at least one) for blackbox ones.
pub fn eligible(n: usize, blackbox: bool, blackbox_fraction: f64) -> std::ops::Range<usize> {
    if !blackbox || n == 0 {
        return 0..n;
    }
    let f = if blackbox_fraction.is_finite() {
        blackbox_fraction.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let count = ((n as f64 * f).ceil() as usize).clamp(1, n);
    n - count..n
}

/// Index (into `slots`) of the invoker to use for an activation needing `memory_mb`: the first
/// healthy one with room along the probe sequence; `None` when every healthy one is full or
/// none is healthy.
pub fn choose(slots: &[Slot], hash: u64, memory_mb: u64) -> Option<usize> {
    probe_order(slots.len(), hash)
        .find(|idx| slots[*idx].healthy && slots[*idx].free_mb >= memory_mb)
}

/// The indexes `0..n` in the probe order of `hash`: its home invoker, then steps co-prime
/// with `n` (empty for n = 0).
fn probe_order(n: usize, hash: u64) -> impl Iterator<Item = usize> {
    let steps = coprime_steps(n);
    let home = (hash % n.max(1) as u64) as usize;
    let step = steps[(hash % steps.len() as u64) as usize];
    (0..n).map(move |i| (home + i * step) % n)
}

/// Where an activation goes: its home invoker (OpenWhisk's sharding) or spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// The first healthy invoker with room along the probe sequence ([`choose`]).
    #[default]
    Home,
    /// The healthy invoker with the most free memory ([`spread`]).
    Spread,
}

/// The invocation parameter that asks for a placement (`-p placement spread`).
pub const PLACEMENT_PARAM: &str = "placement";

impl Placement {
    /// The placement a parameter value asks for (`"spread"`; anything else is the default).
    pub fn of(value: Option<&serde_json::Value>) -> Self {
        match value.and_then(|v| v.as_str()) {
            Some("spread") => Placement::Spread,
            _ => Placement::Home,
        }
    }
}

/// Index of the healthy invoker with room for `memory_mb` and the most free memory; ties go to
/// the earliest along the probe sequence of `hash`. `None` when every healthy one is full.
pub fn spread(slots: &[Slot], hash: u64, memory_mb: u64) -> Option<usize> {
    let mut best: Option<usize> = None;
    for idx in probe_order(slots.len(), hash) {
        let s = slots[idx];
        if s.healthy && s.free_mb >= memory_mb && best.is_none_or(|b| s.free_mb > slots[b].free_mb)
        {
            best = Some(idx);
        }
    }
    best
}

/// A healthy invoker picked by `random` among the healthy ones, full or not (OpenWhisk's
/// overload placement; here only for members of an admitted gang); `None` when none is healthy.
pub fn overflow(slots: &[Slot], random: impl FnOnce(usize) -> usize) -> Option<usize> {
    let healthy: Vec<usize> = (0..slots.len()).filter(|i| slots[*i].healthy).collect();
    if healthy.is_empty() {
        return None;
    }
    Some(healthy[random(healthy.len()) % healthy.len()])
}

/// How many activations of `memory_mb` the healthy invokers can take at once, each on one
/// invoker (what a gang needs: room counted per invoker, not summed across them).
pub fn room(slots: &[Slot], memory_mb: u64) -> u64 {
    slots
        .iter()
        .filter(|s| s.healthy)
        .map(|s| s.free_mb / memory_mb.max(1))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(n: usize, free: u64) -> Vec<Slot> {
        vec![
            Slot {
                healthy: true,
                free_mb: free
            };
            n
        ]
    }

    #[test]
    fn java_hash_matches_java() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("guest"), 98_708_952);
        assert_eq!(java_hash("hello world"), 1_794_106_052);
    }

    #[test]
    fn steps_are_coprime() {
        assert_eq!(coprime_steps(1), vec![1]);
        assert_eq!(coprime_steps(4), vec![1, 3]);
        assert_eq!(coprime_steps(6), vec![1, 5]);
        assert_eq!(coprime_steps(7).len(), 6);
    }

    #[test]
    fn home_invoker_is_stable_and_spread() {
        let s = slots(4, 1024);
        let mut hits = [0usize; 4];
        for i in 0..400 {
            let h = shard_hash("guest", &format!("guest/action{i}"));
            let a = choose(&s, h, 256).unwrap();
            assert_eq!(choose(&s, h, 256), Some(a));
            hits[a] += 1;
        }
        assert!(hits.iter().all(|h| *h > 40), "{hits:?}");
    }

    #[test]
    fn full_and_unhealthy_invokers_are_skipped() {
        let h = 5; // home 1 of 4, step 3 (5 % 2 = 1 → steps[1])
        let mut s = slots(4, 1024);
        assert_eq!(choose(&s, h, 256), Some(1));
        s[1].free_mb = 100;
        assert_eq!(choose(&s, h, 256), Some(0)); // 1 + 3 = 4 ≡ 0
        s[0].healthy = false;
        assert_eq!(choose(&s, h, 256), Some(3)); // 1 + 6 ≡ 3
    }

    #[test]
    fn full_invokers_are_not_chosen_only_overflowed() {
        let mut s = slots(3, 0);
        s[0].healthy = false;
        assert_eq!(choose(&s, 0, 256), None);
        assert_eq!(overflow(&s, |n| n - 1), Some(2));
        assert_eq!(overflow(&s, |_| 0), Some(1));
        s[1].free_mb = 256;
        assert_eq!(choose(&s, 0, 256), Some(1));
        for x in s.iter_mut() {
            x.healthy = false;
        }
        assert_eq!(choose(&s, 0, 0), None);
        assert_eq!(overflow(&s, |_| 0), None);
        assert_eq!(choose(&[], 0, 256), None);
    }

    #[test]
    fn room_counts_per_invoker() {
        let mut s = slots(2, 200);
        // 400 MB free in all, but no single invoker holds 256.
        assert_eq!(room(&s, 256), 0);
        s[0].free_mb = 1024;
        s[1].healthy = false;
        assert_eq!(room(&s, 256), 4);
    }

    #[test]
    fn spread_takes_the_emptiest_invoker() {
        let mut s = slots(4, 1024);
        // Four members placed one after another (each reserving 256) land on four invokers.
        let mut used = vec![];
        for _ in 0..4 {
            let i = spread(&s, 5, 256).unwrap();
            s[i].free_mb -= 256;
            used.push(i);
        }
        used.sort();
        assert_eq!(used, vec![0, 1, 2, 3]);
        // Equal room: the home invoker first, as `choose` would.
        assert_eq!(
            spread(&slots(4, 1024), 5, 256),
            choose(&slots(4, 1024), 5, 256)
        );
        s[2].healthy = false;
        s[0].free_mb = 100;
        assert_eq!(spread(&s, 5, 256), Some(1)); // 1 and 3 tie; 1 comes first from home 1
        s[3].free_mb = 1024;
        assert_eq!(spread(&s, 5, 256), Some(3));
        assert_eq!(spread(&slots(2, 100), 0, 256), None);
        assert_eq!(
            Placement::of(Some(&serde_json::json!("spread"))),
            Placement::Spread
        );
        assert_eq!(Placement::of(Some(&serde_json::json!(1))), Placement::Home);
        assert_eq!(Placement::of(None), Placement::Home);
    }

    #[test]
    fn blackbox_goes_to_the_last_invokers() {
        assert_eq!(eligible(10, false, 0.1), 0..10);
        assert_eq!(eligible(10, true, 0.1), 9..10);
        assert_eq!(eligible(10, true, 0.25), 7..10);
        assert_eq!(eligible(3, true, 1.0), 0..3);
        assert_eq!(eligible(3, true, 0.0), 2..3);
    }
}
