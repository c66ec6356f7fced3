//! The Redis backend against a real `redis-server` started by each test (these tests fail,
//! with a message saying so, when `redis-server` is not installed).

mod common;

use std::time::Duration;

use common::*;
use whisk_core::health::Health;
use whisk_directory::{DirectoryClient, DirectoryError, RedisHealth, Registry};

#[tokio::test]
async fn conformance_in_process_redis() {
    let redis = Redis::start();
    let r = Registry::open(&redis_config(&redis)).await.unwrap();
    conformance(&r, "inproc-redis").await;
}

#[tokio::test]
async fn conformance_grpc_redis() {
    let redis = Redis::start();
    let s = Served::start(Registry::open(&redis_config(&redis)).await.unwrap()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    conformance(&c, "grpc-redis").await;
    s.stop().await;
}

#[tokio::test]
async fn state_survives_a_directory_restart() {
    let redis = Redis::start();
    let first = Registry::open(&redis_config(&redis)).await.unwrap();
    for (id, ip) in [("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.3")] {
        first
            .register("ns:x", "g:y", peer(id, ip, 1))
            .await
            .unwrap();
    }
    first.deregister("ns:x", "g:y", "b", "").await.unwrap();
    // Invoker 9 holds a lease through the first directory, then stops renewing it.
    first
        .heartbeat(9, Duration::from_millis(300))
        .await
        .unwrap();
    first
        .register("ns:x", "g:y", peer("leased", "10.0.0.9", 9))
        .await
        .unwrap();
    let before = first.snapshot("ns:x", "g:y").await.unwrap();
    assert_eq!(
        (before.version, ids(&before)),
        (5, vec!["a", "c", "leased"])
    );
    drop(first);

    let second = Registry::open(&redis_config(&redis)).await.unwrap();
    let mut w = second.watch("ns:x", "g:y").await.unwrap();
    let m = next(&mut w).await;
    assert_eq!(m, before, "the restarted directory serves the same map");
    // The lease taken through the first directory lapses under the second.
    let m = until(&mut w, |m| m.peers.len() == 2).await;
    assert_eq!((m.version, ids(&m)), (6, vec!["a", "c"]));
    // Versions continue.
    let v = second
        .register("ns:x", "g:y", peer("d", "10.0.0.4", 1))
        .await
        .unwrap();
    assert_eq!(v, 7);
    // "ns:x"/"g:y" and "ns"/"x:g:y" are different groups.
    assert_eq!(second.snapshot("ns", "x:g:y").await.unwrap().version, 0);
}

#[tokio::test]
async fn two_directories_see_each_others_changes() {
    let redis = Redis::start();
    let a = Served::start(Registry::open(&redis_config(&redis)).await.unwrap()).await;
    let b = Served::start(Registry::open(&redis_config(&redis)).await.unwrap()).await;
    let ca = DirectoryClient::connect(&a.addr.to_string()).await.unwrap();
    let cb = DirectoryClient::connect(&b.addr.to_string()).await.unwrap();
    use whisk_directory::PeerDirectory;
    let mut wa = ca.watch("ns", "g").await.unwrap();
    let mut wb = cb.watch("ns", "g").await.unwrap();
    next(&mut wa).await;
    next(&mut wb).await;

    ca.register("ns", "g", peer("from-a", "10.0.0.1", 1))
        .await
        .unwrap();
    assert_eq!(ids(&until(&mut wb, |m| m.version == 1).await), ["from-a"]);
    cb.register("ns", "g", peer("from-b", "10.0.0.2", 2))
        .await
        .unwrap();
    assert_eq!(
        ids(&until(&mut wa, |m| m.version == 2).await),
        ["from-a", "from-b"]
    );
    cb.deregister("ns", "g", "from-a", "").await.unwrap();
    assert_eq!(ids(&until(&mut wa, |m| m.version == 3).await), ["from-b"]);
    // A lease held through B lapses; A's watchers see the removal.
    cb.heartbeat(2, Duration::from_millis(100)).await.unwrap();
    let m = until(&mut wa, |m| m.peers.is_empty()).await;
    assert_eq!(m.version, 4);
    assert_eq!(until(&mut wb, |m| m.version == 4).await.peers.len(), 0);
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn redis_down_is_unavailable_then_recovers() {
    let redis = Redis::start();
    let config = redis_config(&redis);
    let s = Served::start(Registry::open(&config).await.unwrap()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    use whisk_directory::PeerDirectory;
    c.register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    let mut w = c.watch("ns", "g").await.unwrap();
    assert_eq!(ids(&next(&mut w).await), ["a"]);
    // A second directory that will make a change while the first is cut off.
    let other = Registry::open(&config).await.unwrap();

    // `whisk status`'s probe of this Redis: its version while up, the reason once down.
    let probe = RedisHealth::new(&redis.url(), Duration::from_secs(2));
    let up = probe.check().await.unwrap();
    assert!(up.starts_with("redis "), "{up}");

    let port = redis.kill();
    let down = probe.check().await.unwrap_err();
    assert!(!down.is_empty());
    for result in [
        c.register("ns", "g", peer("b", "10.0.0.2", 1))
            .await
            .map(|_| ()),
        c.heartbeat(1, Duration::ZERO).await.map(|_| ()),
        c.deregister("ns", "g", "a", "").await.map(|_| ()),
    ] {
        match result {
            Err(DirectoryError::Unavailable(m)) => assert!(m.contains("redis"), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    // A directory cannot start without its Redis.
    match Registry::open(&config).await {
        Err(DirectoryError::Unavailable(m)) => assert!(m.contains("not reachable"), "{m}"),
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("opened a registry on a dead redis"),
    }

    // Redis comes back (empty: it kept nothing): both directories reconnect by themselves.
    let _redis = Redis::start_on(port);
    let mut attempts = 0;
    let v = loop {
        match other.register("ns", "g", peer("c", "10.0.0.3", 1)).await {
            Ok(v) => break v,
            Err(DirectoryError::Unavailable(_)) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery: {e:?}"),
        }
    };
    assert_eq!(v, 1);
    // The first directory's watcher follows the restarted Redis (pub/sub resubscribed, the
    // watched group reloaded) although its versions started again from 0.
    let m = until(&mut w, |m| ids(m) == ["c"]).await;
    assert_eq!(m.version, 1);
    c.register("ns", "g", peer("d", "10.0.0.4", 1))
        .await
        .unwrap();
    assert_eq!(ids(&until(&mut w, |m| m.version == 2).await), ["c", "d"]);
    s.stop().await;
}

#[tokio::test]
async fn redis_groups_and_their_instances_are_capped_and_emptied_groups_forgotten() {
    let redis = Redis::start();
    let config = whisk_directory::DirectoryConfig {
        max_groups: 2,
        max_group_peers: 2,
        ..redis_config(&redis)
    };
    let r = Registry::open(&config).await.unwrap();
    fill_two_groups_of_two(&r).await;
    // Emptying g2 forgets it in Redis (no key left behind): room for g3.
    let gone = empty_g2(&r).await;
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let groups: Vec<String> = redis::cmd("SMEMBERS")
        .arg("whisk:dir:groups")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(groups, vec!["ns:g1".to_string()]);
    let version: Option<u64> = redis::cmd("GET")
        .arg("whisk:dir:version:ns:g2")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(version, None);
    // A forgotten group reads at the floor, and created again moves on from there.
    assert!(r.snapshot("ns", "g2").await.unwrap().version >= gone);
    reuse_forgotten_room(&r, gone).await;
}
