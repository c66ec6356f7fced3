//! The directory over gRPC: a real server on 127.0.0.1:0 and the [`DirectoryClient`].

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use whisk_core::health::Health;
use whisk_directory::proto::directory_client::DirectoryClient as RawClient;
use whisk_directory::proto::{RegisterRequest, WatchRequest};
use whisk_directory::{
    DirectoryClient, DirectoryError, DirectoryHealth, PeerDirectory, Registry, RegistryOptions,
};

fn registry() -> Registry {
    Registry::in_memory(long_lease())
}

#[tokio::test]
async fn conformance_in_process_memory() {
    let r = registry();
    conformance(&r, "inproc").await;
}

#[tokio::test]
async fn conformance_grpc_memory() {
    let s = Served::start(registry()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    conformance(&c, "grpc").await;
    // `whisk status`'s probe: a watch, which changes nothing.
    let probe = DirectoryHealth::new(&s.addr.to_string(), None, Duration::from_secs(2));
    assert_eq!(probe.check().await.as_deref(), Ok("answers a watch"));
    let m = s
        .registry
        .snapshot("whisk.system", "whisk-status")
        .await
        .unwrap();
    assert_eq!((m.version, m.peers.len()), (0, 0));
    s.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_invalid_argument() {
    let s = Served::start(registry()).await;
    let mut raw = RawClient::connect(format!("http://{}", s.addr))
        .await
        .unwrap();
    // No peer at all.
    let st = raw
        .register(RegisterRequest {
            namespace: "ns".into(),
            group: "g".into(),
            peer: None,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    assert!(st.message().contains("peer is missing"), "{st:?}");
    // A 10 kB id, an id with '&', a bad IP, an empty namespace.
    for (ns, p, want) in [
        (
            "ns",
            peer(&"x".repeat(10_240), "10.0.0.1", 1),
            "longer than 256",
        ),
        ("ns", peer("a&b", "10.0.0.1", 1), "'&'"),
        ("ns", peer("a", "10.0.0.300", 1), "not an IP address"),
        ("", peer("a", "10.0.0.1", 1), "namespace must not be empty"),
    ] {
        let st = raw
            .register(RegisterRequest {
                namespace: ns.into(),
                group: "g".into(),
                peer: Some(p),
            })
            .await
            .unwrap_err();
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains(want), "{st:?} lacks {want:?}");
    }
    let st = raw
        .watch(WatchRequest {
            namespace: "ns".into(),
            group: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::InvalidArgument);
    // The same through the client wrapper.
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    match c.watch("ns", &"g".repeat(300)).await {
        Err(DirectoryError::Invalid(m)) => assert!(m.contains("group"), "{m}"),
        Err(e) => panic!("expected Invalid, got {e:?}"),
        Ok(_) => panic!("expected Invalid, got a stream"),
    }
    // Nothing was stored.
    assert_eq!(s.registry.snapshot("ns", "g").await.unwrap().version, 0);
    s.stop().await;
}

#[tokio::test]
async fn disconnected_watchers_are_cleaned_up() {
    let s = Served::start(registry()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    let mut w1 = c.watch("ns", "g").await.unwrap();
    let mut w2 = c.watch("ns", "g").await.unwrap();
    next(&mut w1).await;
    next(&mut w2).await;
    wait_for("2 watchers", || s.registry.watcher_count("ns", "g") == 2).await;
    drop(w1);
    wait_for("1 watcher", || s.registry.watcher_count("ns", "g") == 1).await;
    // The remaining one still gets changes.
    c.register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    assert_eq!(ids(&until(&mut w2, |m| m.version == 1).await), ["a"]);
    // A whole client connection going away (not just one stream).
    let other = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    let mut w3 = other.watch("ns", "g").await.unwrap();
    next(&mut w3).await;
    wait_for("2 watchers", || s.registry.watcher_count("ns", "g") == 2).await;
    drop(w3);
    drop(other);
    drop(w2);
    wait_for("no watcher", || s.registry.watcher_count("ns", "g") == 0).await;
    s.stop().await;
}

#[tokio::test]
async fn watch_resumes_after_the_directory_restarts() {
    let s = Served::start(registry()).await;
    let addr = s.addr;
    let c = DirectoryClient::connect(&addr.to_string()).await.unwrap();
    c.register("ns", "g", peer("a", "10.0.0.1", 1))
        .await
        .unwrap();
    let mut w = c.watch("ns", "g").await.unwrap();
    assert_eq!(ids(&next(&mut w).await), ["a"]);
    s.stop().await;

    // A new (empty, in-memory) directory on the same address.
    let s = Served::start_on(addr, registry()).await;
    s.registry
        .register("ns", "g", peer("b", "10.0.0.2", 1))
        .await
        .unwrap();
    let m = until(&mut w, |m| ids(m) == ["b"]).await;
    assert_eq!(m.version, 1, "a fresh snapshot of the new directory");
    c.register("ns", "g", peer("c", "10.0.0.3", 1))
        .await
        .unwrap();
    assert_eq!(ids(&until(&mut w, |m| m.version == 2).await), ["b", "c"]);
    s.stop().await;
}

#[tokio::test]
async fn unreachable_directory_is_unavailable() {
    let addr = whisk_test_support::free_addr().to_string();
    match DirectoryClient::connect_within(&addr, Duration::from_millis(200)).await {
        Err(DirectoryError::Unavailable(m)) => assert!(m.contains(&addr), "{m}"),
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected to nothing"),
    }
    let lazy = DirectoryClient::connect_lazy(&addr).unwrap();
    let e = lazy.heartbeat(1, Duration::ZERO).await.unwrap_err();
    assert!(matches!(e, DirectoryError::Unavailable(_)), "{e:?}");
    let probe = DirectoryHealth::new(&addr, None, Duration::from_millis(200));
    let reason = probe.check().await.unwrap_err();
    assert!(reason.contains(&addr), "{reason}");
}

#[tokio::test]
async fn shutdown_ends_watch_streams() {
    let s = Served::start(registry()).await;
    let mut raw = RawClient::connect(format!("http://{}", s.addr))
        .await
        .unwrap();
    let mut stream = raw
        .watch(WatchRequest {
            namespace: "ns".into(),
            group: "g".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().version, 0);
    s.stop().await; // returns although a watcher is connected
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
}

/// Not an assertion: prints how long a change takes from register to a gRPC watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_to_grpc_watcher_latency() {
    let s = Served::start(registry()).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    let mut w = c.watch("ns", "g").await.unwrap();
    next(&mut w).await;
    let mut samples = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        c.register("ns", "g", peer(&format!("i{i}"), "10.0.0.1", 1))
            .await
            .unwrap();
        let m = w.next().await.unwrap();
        assert_eq!(m.peers.len(), i + 1);
        samples.push(t.elapsed());
    }
    samples.sort();
    eprintln!(
        "gRPC register -> watcher (loopback): median {:?}, p99 {:?}, max {:?} (200 changes)",
        samples[100], samples[198], samples[199]
    );
    s.stop().await;
}

#[tokio::test]
async fn entries_without_heartbeats_expire() {
    // Default timings: a register without a lease starts one of 300 ms.
    let s = Served::start(Registry::in_memory(RegistryOptions::default())).await;
    let c = DirectoryClient::connect(&s.addr.to_string()).await.unwrap();
    let mut w = c.watch("ns", "g").await.unwrap();
    next(&mut w).await;
    let t = Instant::now();
    c.register("ns", "g", peer("orphan", "10.0.0.1", 42))
        .await
        .unwrap();
    until(&mut w, |m| ids(m) == ["orphan"]).await;
    until(&mut w, |m| m.peers.is_empty()).await;
    let gone = t.elapsed();
    eprintln!("an entry whose invoker never heartbeats expired after {gone:?}");
    assert!(gone >= Duration::from_millis(250), "{gone:?}");
    // Its invoker's next heartbeat is a new lease: it must register again.
    assert!(c.heartbeat(42, Duration::ZERO).await.unwrap().new_lease);
    s.stop().await;
}
