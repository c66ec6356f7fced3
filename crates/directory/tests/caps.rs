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

#[tokio::test]
async fn groups_and_their_instances_are_capped_and_emptied_groups_forgotten() {
    let r = registry(2, 2, 100);
    fill_two_groups_of_two(&r).await;
    assert_eq!(r.groups(), Some(2));
    // Emptying g2 forgets it: room for g3, and g2 again moves its version on.
    let gone = empty_g2(&r).await;
    assert_eq!(r.groups(), Some(1));
    reuse_forgotten_room(&r, gone).await;
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
