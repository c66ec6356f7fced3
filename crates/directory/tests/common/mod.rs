//! Shared helpers of the integration tests: a directory served on 127.0.0.1:0, its config over a
//! test's own `redis-server` (`whisk_test_support::services::Redis`), and one conformance suite
//! run on every [`PeerDirectory`].

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use whisk_directory::{
    BackendKind, DirectoryConfig, Peer, PeerDirectory, PeerMap, PeerMapStream, Registry,
    RegistryOptions, TlsFiles,
};
pub use whisk_test_support::services::Redis;

pub fn peer(id: &str, ip: &str, invoker: u32) -> Peer {
    Peer {
        id: id.into(),
        ip: ip.into(),
        port: 65432,
        invoker_id: invoker,
        ..Default::default()
    }
}

pub fn ids(m: &PeerMap) -> Vec<&str> {
    m.peers.iter().map(|p| p.id.as_str()).collect()
}

/// The next map, or a panic after 10 s.
pub async fn next(s: &mut PeerMapStream) -> PeerMap {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("no map within 10 s")
        .expect("watch stream ended")
}

/// Reads maps until one satisfies `want` (or panics after 10 s).
pub async fn until(s: &mut PeerMapStream, want: impl Fn(&PeerMap) -> bool) -> PeerMap {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, s.next())
            .await
            .expect("the expected map did not come within 10 s")
            .expect("watch stream ended");
        if want(&m) {
            return m;
        }
    }
}

/// Waits for `cond` (polling every 10 ms, panics after 10 s).
pub async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    whisk_test_support::wait_until(what, Duration::from_secs(10), cond).await
}

/// Registry timings whose implicit lease (of a register without heartbeats) is long.
pub fn long_lease() -> RegistryOptions {
    RegistryOptions {
        default_lease: Duration::from_secs(60),
        ..Default::default()
    }
}

/// A directory served over gRPC on 127.0.0.1.
pub struct Served {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Served {
    pub async fn start(registry: Registry) -> Served {
        Self::start_on("127.0.0.1:0".parse().unwrap(), registry).await
    }

    pub async fn start_on(addr: SocketAddr, registry: Registry) -> Served {
        Self::start_tls(addr, registry, None).await
    }

    pub async fn start_tls(addr: SocketAddr, registry: Registry, tls: Option<TlsFiles>) -> Served {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let (r, stop) = (registry.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            whisk_directory::serve_with(listener, r, stop, tls.as_ref())
                .await
                .expect("serve failed")
        });
        Served {
            addr,
            registry,
            shutdown,
            task,
        }
    }

    /// Stops the server and waits until it is done.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server did not stop within 10 s")
            .unwrap();
    }
}

/// A Redis directory on `redis` whose implicit lease (of a register without heartbeats) is
/// long, so that tests registering without heartbeats keep their entries.
pub fn redis_config(redis: &Redis) -> DirectoryConfig {
    DirectoryConfig {
        backend: BackendKind::Redis,
        redis_url: redis.url(),
        lease_ms: 60_000,
        ..Default::default()
    }
}

/// The same behaviour, whatever the directory: in-process or gRPC, memory or Redis. `ns` keeps
/// runs apart when they share a backend.
pub async fn conformance(dir: &dyn PeerDirectory, ns: &str) {
    // Register four and a watcher sees all of them, sorted by id.
    let mut w = dir.watch(ns, "g").await.unwrap();
    assert_eq!(next(&mut w).await.peers.len(), 0);
    for (i, id) in ["d", "b", "a", "c"].iter().enumerate() {
        dir.register(ns, "g", peer(id, &format!("10.0.0.{}", i + 1), 1))
            .await
            .unwrap();
    }
    let m = until(&mut w, |m| m.peers.len() == 4).await;
    assert_eq!(ids(&m), ["a", "b", "c", "d"]);
    let v4 = m.version;

    // Duplicate id replaces.
    let v = dir
        .register(ns, "g", peer("a", "10.0.0.99", 1))
        .await
        .unwrap();
    assert!(v > v4);
    let m = until(&mut w, |m| m.version == v).await;
    assert_eq!((m.peers.len(), m.peers[0].ip.as_str()), (4, "10.0.0.99"));

    // Deregister; a second time is a no-op.
    let d = dir.deregister(ns, "g", "b", "").await.unwrap();
    assert!(d.removed && d.version > v);
    let m = until(&mut w, |m| m.version == d.version).await;
    assert_eq!(ids(&m), ["a", "c", "d"]);
    let again = dir.deregister(ns, "g", "b", "").await.unwrap();
    assert_eq!((again.removed, again.version), (false, d.version));

    // Another namespace with the same group is invisible.
    dir.register(&format!("{ns}-other"), "g", peer("x", "10.1.0.1", 1))
        .await
        .unwrap();

    // A namespace's groups with instances, sorted by group; another namespace's are not there,
    // and a group is gone once its last instance left.
    dir.register(ns, "a-group", peer("only", "10.0.2.1", 1))
        .await
        .unwrap();
    let groups = dir.groups(ns).await.unwrap();
    let names: Vec<&str> = groups.iter().map(|m| m.group.as_str()).collect();
    assert_eq!(names, ["a-group", "g"]);
    assert_eq!(ids(&groups[1]), ["a", "c", "d"]);
    assert!(groups.iter().all(|m| m.namespace == ns));
    dir.deregister(ns, "a-group", "only", "").await.unwrap();
    let names: Vec<String> = dir
        .groups(ns)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.group)
        .collect();
    assert_eq!(names, ["g"]);

    // A lapsed lease removes its invoker's instances only.
    let invoker = 1000 + (ns.len() as u32);
    assert!(
        dir.heartbeat(invoker, Duration::from_millis(150))
            .await
            .unwrap()
            .new_lease
    );
    dir.register(ns, "g", peer("leased1", "10.0.1.1", invoker))
        .await
        .unwrap();
    dir.register(ns, "g", peer("leased2", "10.0.1.2", invoker))
        .await
        .unwrap();
    until(&mut w, |m| m.peers.len() == 5).await;
    let t = Instant::now();
    let m = until(&mut w, |m| m.peers.len() == 3).await;
    eprintln!(
        "[{ns}] lease of 150 ms: instances removed {:?} after the last register",
        t.elapsed()
    );
    assert_eq!(ids(&m), ["a", "c", "d"]);
    assert!(
        dir.heartbeat(invoker, Duration::ZERO)
            .await
            .unwrap()
            .new_lease
    );

    // Bad input is refused with a clear error.
    let e = dir
        .register(ns, "g", peer("a=b", "10.0.0.1", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(e, whisk_directory::DirectoryError::Invalid(ref m) if m.contains("'='")),
        "{e:?}"
    );
}

/// `e` is `Unavailable` with a message containing `words`.
pub fn unavailable(e: whisk_directory::DirectoryError, words: &str) {
    match e {
        whisk_directory::DirectoryError::Unavailable(m) => assert!(m.contains(words), "{m}"),
        other => panic!("not unavailable: {other:?}"),
    }
}

/// The caps of a registry of at most 2 groups of 2 instances, whatever its backend: groups g1
/// and g2 of namespace `ns` made, a third group refused, g1 filled (a third instance refused,
/// replacing one is not a new one).
pub async fn fill_two_groups_of_two(r: &Registry) {
    r.register("ns", "g1", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    r.register("ns", "g2", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    let e = r
        .register("ns", "g3", peer("a", "10.0.0.1", 1))
        .await
        .unwrap_err();
    unavailable(e, "most groups (2)");
    r.register("ns", "g1", peer("b", "10.0.0.2", 1))
        .await
        .unwrap();
    let e = r
        .register("ns", "g1", peer("c", "10.0.0.3", 1))
        .await
        .unwrap_err();
    unavailable(e, "most instances (2)");
    r.register("ns", "g1", peer("b", "10.0.0.9", 1))
        .await
        .unwrap();
}

/// After [`fill_two_groups_of_two`]: empties g2; answers the version it reached.
pub async fn empty_g2(r: &Registry) -> u64 {
    let gone = r.deregister("ns", "g2", "a", "").await.unwrap();
    assert!(gone.removed);
    gone.version
}

/// After [`empty_g2`]: the forgotten group left room for g3, and g2 made again moves its version
/// on from `gone` (it never goes back).
pub async fn reuse_forgotten_room(r: &Registry, gone: u64) {
    r.register("ns", "g3", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    r.deregister("ns", "g3", "a", "").await.unwrap();
    let v = r
        .register("ns", "g2", peer("z", "10.0.0.1", 1))
        .await
        .unwrap();
    assert!(v > gone, "{v} after {gone}");
}
