//! The directory's caps, counted and refused with a clear error: groups and instances per group
//! (in-memory backend; an emptied group is forgotten, and one created again still moves its
//! version forward), and watch streams open at once — in process and over gRPC.

mod common;

use std::time::Duration;

use common::*;
use whisk_directory::{DirectoryClient, DirectoryError, PeerDirectory, Registry, RegistryOptions};

fn registry(max_groups: usize, max_group_peers: usize, max_watchers: usize) -> Registry {
    Registry::in_memory(RegistryOptions {
        max_groups,
        max_group_peers,
        max_watchers,
        ..long_lease()
    })
}

fn unavailable(e: DirectoryError, words: &str) {
    match e {
        DirectoryError::Unavailable(m) => assert!(m.contains(words), "{m}"),
        other => panic!("not unavailable: {other:?}"),
    }
}

#[tokio::test]
async fn groups_and_their_instances_are_capped_and_emptied_groups_forgotten() {
    let r = registry(2, 2, 100);
    r.register("ns", "g1", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    r.register("ns", "g2", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    assert_eq!(r.groups(), Some(2));
    let e = r
        .register("ns", "g3", peer("a", "10.0.0.1", 1))
        .await
        .unwrap_err();
    unavailable(e, "most groups (2)");
    // Instances per group: a third is refused, replacing one is not.
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
    // Emptying g2 forgets it: room for g3.
    let gone = r.deregister("ns", "g2", "a", "").await.unwrap();
    assert!(gone.removed);
    assert_eq!(r.groups(), Some(1));
    r.register("ns", "g3", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    // g2 again: its version moves on from where it was forgotten.
    r.deregister("ns", "g3", "a", "").await.unwrap();
    let v = r
        .register("ns", "g2", peer("z", "10.0.0.1", 1))
        .await
        .unwrap();
    assert!(v > gone.version, "{v} after {}", gone.version);
}

#[tokio::test]
async fn watch_streams_are_capped_in_process_and_over_grpc() {
    let r = registry(100, 100, 2);
    let w1 = r.watch("ns", "g").await.unwrap();
    let w2 = r.watch("ns", "other").await.unwrap();
    assert_eq!(r.watchers(), 2);
    let e = match r.watch("ns", "g").await {
        Err(e) => e,
        Ok(_) => panic!("a third watcher was accepted"),
    };
    unavailable(e, "most watchers open (2)");
    assert_eq!(r.refused_watchers(), 1);
    drop(w1);
    let w3 = r.watch("ns", "g").await.unwrap();
    drop((w2, w3));
    assert_eq!(r.watchers(), 0);

    // Over gRPC: the refusal reaches the client as unavailable, with the message.
    let s = Served::start(r.clone()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    let mut a = c.watch("ns", "g").await.unwrap();
    let mut b = c.watch("ns", "g").await.unwrap();
    next(&mut a).await;
    next(&mut b).await;
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        match c.watch("ns", "g").await {
            Err(e) => e,
            Ok(mut s) => {
                use futures::StreamExt;
                match s.next().await {
                    None => DirectoryError::Unavailable("stream ended".into()),
                    Some(m) => panic!("a third watcher got {m:?}"),
                }
            }
        }
    })
    .await
    .expect("the refusal comes");
    match refused {
        DirectoryError::Unavailable(m) => assert!(m.contains("most watchers"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(r.refused_watchers() >= 2, "{}", r.refused_watchers());
    drop((a, b));
    s.stop().await;
}
