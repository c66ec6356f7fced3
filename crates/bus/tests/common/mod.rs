//! Shared by the bus test binaries: the conformance suite every [`Bus`] backend passes, and
//! reading with a deadline. (The broker of the Kafka tests is `whisk_test_support::services`.)

#![allow(dead_code)]

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use whisk_bus::{Bus, Consumer, Delivery};

/// How long a test waits for one message before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// The next message of `c`, or a panic naming `what` after [`WAIT`].
pub async fn next(c: &mut Box<dyn Consumer>, what: &str) -> Delivery {
    tokio::time::timeout(WAIT, c.recv())
        .await
        .unwrap_or_else(|_| panic!("no message within {WAIT:?}: {what}"))
        .unwrap_or_else(|e| panic!("recv failed ({what}): {e}"))
}

/// Nothing arrives on `c` for `quiet`.
pub async fn assert_quiet(c: &mut Box<dyn Consumer>, quiet: Duration, what: &str) {
    if let Ok(r) = tokio::time::timeout(quiet, c.recv()).await {
        panic!("unexpected delivery ({what}): {r:?}");
    }
}

fn msg(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The behaviour every bus backend shares. Topics and groups are named `<prefix>-...`, so one
/// broker can serve several runs.
pub async fn conformance(bus: &dyn Bus, prefix: &str) {
    let t = |s: &str| format!("{prefix}-{s}");

    // ensure_topic is idempotent.
    bus.ensure_topic(&t("idem")).await.unwrap();
    bus.ensure_topic(&t("idem")).await.unwrap();

    // What was published before any group joined goes to the first group that joins.
    let topic = t("backlog");
    bus.ensure_topic(&topic).await.unwrap();
    bus.publish(&topic, msg("early")).await.unwrap();
    let mut c = bus.subscribe(&topic, &t("g")).await.unwrap();
    let d = next(&mut c, "backlog").await;
    assert_eq!(d.payload, msg("early"));
    c.commit(&d).await.unwrap();
    drop(c);

    // Round trip, in order, any bytes (the decoder above decides what they mean).
    let topic = t("roundtrip");
    bus.ensure_topic(&topic).await.unwrap();
    let mut c = bus.subscribe(&topic, &t("g")).await.unwrap();
    let payloads: Vec<Bytes> = vec![
        msg("hello"),
        Bytes::new(),
        Bytes::from_static(&[0xff, 0x00, 0xfe, 0x80]),
        msg("{\"not\": \"an activation\"}"),
        Bytes::from(vec![7u8; 256 * 1024]),
        msg("last"),
    ];
    for p in &payloads {
        bus.publish(&topic, p.clone()).await.unwrap();
    }
    for (i, p) in payloads.iter().enumerate() {
        let d = next(&mut c, &format!("round trip #{i}")).await;
        assert_eq!(d.payload, *p, "round trip #{i}");
        c.commit(&d).await.unwrap();
    }
    drop(c);

    // Every group gets every message.
    let topic = t("groups");
    bus.ensure_topic(&topic).await.unwrap();
    let mut a = bus.subscribe(&topic, &t("a")).await.unwrap();
    let mut b = bus.subscribe(&topic, &t("b")).await.unwrap();
    for i in 0..10 {
        bus.publish(&topic, msg(&i.to_string())).await.unwrap();
    }
    for (name, c) in [("a", &mut a), ("b", &mut b)] {
        for i in 0..10 {
            let d = next(c, &format!("group {name} #{i}")).await;
            assert_eq!(d.payload, msg(&i.to_string()), "group {name}");
            c.commit(&d).await.unwrap();
        }
    }
    drop((a, b));

    // Members of one group share: each message reaches exactly one of them.
    let topic = t("share");
    bus.ensure_topic(&topic).await.unwrap();
    let mut m1 = bus.subscribe(&topic, &t("s")).await.unwrap();
    let mut m2 = bus.subscribe(&topic, &t("s")).await.unwrap();
    let n = 20;
    for i in 0..n {
        bus.publish(&topic, msg(&i.to_string())).await.unwrap();
    }
    let (got1, got2) = share(&mut m1, &mut m2, n).await;
    let mut all: Vec<String> = got1.iter().chain(&got2).cloned().collect();
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(distinct.len(), all.len(), "a message reached both members");
    all.sort_by_key(|s| s.parse::<u32>().unwrap());
    assert_eq!(
        all,
        (0..n).map(|i| i.to_string()).collect::<Vec<_>>(),
        "every message reaches the group"
    );
    assert_quiet(&mut m1, Duration::from_millis(300), "share m1").await;
    assert_quiet(&mut m2, Duration::from_millis(300), "share m2").await;
}

/// Reads `n` messages from the two members together (committing each); what each got.
pub async fn share(
    m1: &mut Box<dyn Consumer>,
    m2: &mut Box<dyn Consumer>,
    n: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut got1, mut got2) = (vec![], vec![]);
    let deadline = tokio::time::sleep(WAIT);
    tokio::pin!(deadline);
    while got1.len() + got2.len() < n {
        tokio::select! {
            d = m1.recv() => {
                let d = d.unwrap();
                m1.commit(&d).await.unwrap();
                got1.push(String::from_utf8(d.payload.to_vec()).unwrap());
            }
            d = m2.recv() => {
                let d = d.unwrap();
                m2.commit(&d).await.unwrap();
                got2.push(String::from_utf8(d.payload.to_vec()).unwrap());
            }
            _ = &mut deadline => panic!(
                "the group got {} of {n} messages within {WAIT:?}", got1.len() + got2.len()
            ),
        }
    }
    (got1, got2)
}
