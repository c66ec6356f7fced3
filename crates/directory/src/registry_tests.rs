//! Unit tests of [`Registry`] over the in-memory backend.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};

use super::*;

/// A registry whose implicit lease (of a register without heartbeats) is long.
fn registry() -> Registry {
    Registry::in_memory(RegistryOptions {
        default_lease: Duration::from_secs(60),
        ..Default::default()
    })
}

fn peer(id: &str, ip: &str, invoker: u32) -> Peer {
    Peer {
        id: id.into(),
        ip: ip.into(),
        invoker_id: invoker,
        ..Default::default()
    }
}

async fn next(s: &mut PeerMapStream) -> PeerMap {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("no map within 5 s")
        .expect("stream ended")
}

fn ids(m: &PeerMap) -> Vec<&str> {
    m.peers.iter().map(|p| p.id.as_str()).collect()
}

#[tokio::test]
async fn validation_errors_are_clear() {
    let r = registry();
    let long_ns = "n".repeat(300);
    let cases: Vec<(&str, &str, Peer, &str)> = vec![
        (
            "",
            "g",
            peer("a", "10.0.0.1", 0),
            "namespace must not be empty",
        ),
        (
            "ns",
            "",
            peer("a", "10.0.0.1", 0),
            "group must not be empty",
        ),
        (
            "ns",
            "g",
            peer("", "10.0.0.1", 0),
            "instance id must not be empty",
        ),
        (
            "ns",
            "g",
            peer(&"x".repeat(10_000), "10.0.0.1", 0),
            "longer than 256",
        ),
        ("ns", "g", peer("a=b", "10.0.0.1", 0), "'='"),
        ("ns", "g", peer("a&b", "10.0.0.1", 0), "'&'"),
        ("ns", "g", peer("a\nb", "10.0.0.1", 0), "control"),
        ("ns", "g", peer("a", "not-an-ip", 0), "not an IP address"),
        (&long_ns, "g", peer("a", "10.0.0.1", 0), "longer than 256"),
    ];
    for (ns, g, p, want) in cases {
        let e = r.register(ns, g, p).await.unwrap_err();
        assert!(matches!(e, DirectoryError::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e} lacks {want:?}");
    }
    assert!(r.deregister("ns", "g", "a=b", "").await.is_err());
    assert!(r.watch("", "g").await.is_err());
    // Nothing was stored by the failed calls.
    assert_eq!(r.snapshot("ns", "g").await.unwrap().version, 0);
}

#[tokio::test]
async fn duplicate_id_replaces_and_versions_grow() {
    let r = registry();
    let v1 = r
        .register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    let v2 = r
        .register("ns", "g", peer("b", "10.0.0.2", 1))
        .await
        .unwrap();
    let v3 = r
        .register("ns", "g", peer("a", "10.0.0.9", 2))
        .await
        .unwrap();
    assert!(v1 < v2 && v2 < v3, "{v1} {v2} {v3}");
    let m = r.snapshot("ns", "g").await.unwrap();
    assert_eq!(ids(&m), ["a", "b"]);
    assert_eq!(m.peers[0].ip, "10.0.0.9");
    assert_eq!(m.peers[0].invoker_id, 2);
    assert!(m.peers[0].since_ms > 0);
    assert_eq!(m.version, v3);

    // Deregister: only with a matching activation, idempotent, no version change when nothing
    // was removed; the version never goes back even when the group empties.
    let mut p = peer("c", "10.0.0.3", 1);
    p.activation_id = "act1".into();
    let v4 = r.register("ns", "g", p).await.unwrap();
    let d = r.deregister("ns", "g", "c", "other").await.unwrap();
    assert_eq!((d.removed, d.version), (false, v4));
    let d = r.deregister("ns", "g", "c", "act1").await.unwrap();
    assert!(d.removed && d.version > v4);
    let again = r.deregister("ns", "g", "c", "").await.unwrap();
    assert_eq!((again.removed, again.version), (false, d.version));
    r.deregister("ns", "g", "a", "").await.unwrap();
    let last = r.deregister("ns", "g", "b", "").await.unwrap();
    assert!(r.snapshot("ns", "g").await.unwrap().peers.is_empty());
    let v = r
        .register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    assert!(v > last.version);
    // Unknown group: idempotent too.
    let d = r.deregister("ns", "nope", "a", "").await.unwrap();
    assert_eq!((d.removed, d.version), (false, 0));
}

#[tokio::test]
async fn watch_snapshot_then_every_change() {
    let r = registry();
    r.register("ns", "g", peer("b", "10.0.0.2", 1))
        .await
        .unwrap();
    r.register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    let mut w = r.watch("ns", "g").await.unwrap();
    let m = next(&mut w).await;
    assert_eq!((m.version, ids(&m)), (2, vec!["a", "b"]));
    assert_eq!((m.namespace.as_str(), m.group.as_str()), ("ns", "g"));
    r.register("ns", "g", peer("c", "10.0.0.3", 1))
        .await
        .unwrap();
    let m = next(&mut w).await;
    assert_eq!((m.version, ids(&m)), (3, vec!["a", "b", "c"]));
    r.deregister("ns", "g", "a", "").await.unwrap();
    let m = next(&mut w).await;
    assert_eq!((m.version, ids(&m)), (4, vec!["b", "c"]));

    // A group that does not exist yet: empty at version 0, then its first registration.
    let mut w = r.watch("ns", "later").await.unwrap();
    let m = next(&mut w).await;
    assert_eq!((m.version, m.peers.len()), (0, 0));
    r.register("ns", "later", peer("x", "10.0.0.7", 1))
        .await
        .unwrap();
    let m = next(&mut w).await;
    assert_eq!((m.version, ids(&m)), (1, vec!["x"]));
}

#[tokio::test]
async fn namespaces_and_groups_are_isolated() {
    let r = registry();
    let mut wa = r.watch("A", "g").await.unwrap();
    assert_eq!(next(&mut wa).await.version, 0);
    r.register("B", "g", peer("secret", "10.0.0.66", 1))
        .await
        .unwrap();
    r.register("A", "h", peer("other", "10.0.0.67", 1))
        .await
        .unwrap();
    assert!(
        wa.next().now_or_never().is_none(),
        "saw another group's change"
    );
    r.register("A", "g", peer("mine", "10.0.0.1", 1))
        .await
        .unwrap();
    let m = next(&mut wa).await;
    assert_eq!((m.namespace.as_str(), ids(&m)), ("A", vec!["mine"]));
    assert_eq!(ids(&r.snapshot("B", "g").await.unwrap()), ["secret"]);
}

#[tokio::test]
async fn slow_watcher_ends_on_latest() {
    let r = registry();
    let mut w = r.watch("ns", "g").await.unwrap();
    assert_eq!(next(&mut w).await.version, 0);
    for i in 0..100 {
        r.register("ns", "g", peer(&format!("i{i}"), "10.0.0.1", 1))
            .await
            .unwrap();
    }
    let m = next(&mut w).await;
    assert_eq!((m.version, m.peers.len()), (100, 100));
    assert!(w.next().now_or_never().is_none(), "stale intermediate map");
}

#[tokio::test]
async fn lapsed_lease_removes_that_invokers_instances() {
    let r = Registry::in_memory(RegistryOptions::default());
    let lease = r.heartbeat(7, Duration::from_millis(100)).await.unwrap();
    assert!(lease.new_lease);
    assert_eq!(lease.ttl, Duration::from_millis(100));
    // Zero asks for the default; too long is capped.
    assert_eq!(
        r.heartbeat(8, Duration::ZERO).await.unwrap().ttl,
        Duration::from_millis(300)
    );
    assert_eq!(
        r.heartbeat(8, Duration::from_secs(3600)).await.unwrap().ttl,
        Duration::from_secs(60)
    );
    assert!(
        !r.heartbeat(7, Duration::from_millis(100))
            .await
            .unwrap()
            .new_lease
    );

    r.register("ns", "g", peer("a", "10.0.0.1", 7))
        .await
        .unwrap();
    r.register("ns", "g", peer("b", "10.0.0.2", 7))
        .await
        .unwrap();
    r.register("ns", "h", peer("c", "10.0.0.3", 7))
        .await
        .unwrap();
    // Invoker 8 keeps its lease alive below; invoker 9 never heartbeats: its register starts
    // a lease of the default 300 ms.
    r.register("ns", "g", peer("d", "10.0.0.4", 8))
        .await
        .unwrap();
    r.register("ns", "g", peer("e", "10.0.0.5", 9))
        .await
        .unwrap();
    let mut w = r.watch("ns", "g").await.unwrap();
    assert_eq!(ids(&next(&mut w).await), ["a", "b", "d", "e"]);
    let started = Instant::now();
    let keep = {
        let r = r.clone();
        tokio::spawn(async move {
            loop {
                r.heartbeat(8, Duration::from_millis(100)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let m = next(&mut w).await;
    eprintln!(
        "lease of 100 ms lapsed; instances removed after {:?}",
        started.elapsed()
    );
    assert_eq!(ids(&m), ["d", "e"]);
    assert!(r.snapshot("ns", "h").await.unwrap().peers.is_empty());
    // Invoker 9's implicit lease lapses too: an entry without heartbeats does not stay.
    let m = next(&mut w).await;
    eprintln!("no heartbeat: entry removed after {:?}", started.elapsed());
    assert_eq!(ids(&m), ["d"]);
    assert!(started.elapsed() >= Duration::from_millis(250));
    keep.abort();
    // The next heartbeat of invoker 7 starts a new lease: it must re-register.
    assert!(r.heartbeat(7, Duration::ZERO).await.unwrap().new_lease);
}

#[tokio::test]
async fn dropped_watchers_are_forgotten() {
    let r = registry();
    let w1 = r.watch("ns", "g").await.unwrap();
    let w2 = r.watch("ns", "g").await.unwrap();
    assert_eq!(r.watcher_count("ns", "g"), 2);
    drop(w1);
    assert_eq!(r.watcher_count("ns", "g"), 1);
    drop(w2);
    assert_eq!(r.watcher_count("ns", "g"), 0);
    // The next change finds nobody and drops the channel; changes still work.
    r.register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    assert!(r.inner.hub.lock().is_empty());
    let mut w = r.watch("ns", "g").await.unwrap();
    assert_eq!(next(&mut w).await.version, 1);
}

#[tokio::test]
async fn streams_end_when_the_registry_is_dropped() {
    let r = registry();
    let mut w = r.watch("ns", "g").await.unwrap();
    next(&mut w).await;
    drop(r);
    let end = tokio::time::timeout(Duration::from_secs(5), w.next()).await;
    assert!(matches!(end, Ok(None)), "stream outlived its registry");
}

/// Not an assertion: prints how long a change takes to reach a watcher in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_to_watcher_latency() {
    let r = registry();
    let mut w = r.watch("ns", "g").await.unwrap();
    next(&mut w).await;
    let mut samples = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        r.register("ns", "g", peer(&format!("i{i}"), "10.0.0.1", 1))
            .await
            .unwrap();
        next(&mut w).await;
        samples.push(t.elapsed());
    }
    samples.sort();
    eprintln!(
        "in-process register -> watcher: median {:?}, p99 {:?}, max {:?} (200 changes)",
        samples[100], samples[198], samples[199]
    );
}
