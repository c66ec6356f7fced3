//! The peer-groups API of the web console on a whole platform in this process, its directory
//! the local one the invoker registers with: `GET /api/v1/namespaces/_/groups` lists the
//! caller's groups with instances, `?follow=true` streams every change as server-sent events,
//! and nothing of another namespace is ever shown.

use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use whisk_directory::Peer;
use whisk_serve::{serve, Role, RoleSet, Settings};

const GUEST: (&str, &str) = (
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502",
    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP",
);

fn peer(id: &str, ip: &str) -> Peer {
    Peer {
        id: id.into(),
        ip: ip.into(),
        port: 65432,
        invoker_id: 0,
        activation_id: format!("act-{id}"),
        since_ms: 0,
    }
}

/// Reads server-sent events from `resp` until one `event: groups` satisfies `want`.
async fn until_event(
    resp: &mut reqwest::Response,
    buf: &mut String,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(cut) = buf.find("\n\n") {
            let block: String = buf.drain(..cut + 2).collect();
            if let Some(data) = block.strip_prefix("event: groups\ndata: ") {
                let v: serde_json::Value = serde_json::from_str(data.trim_end()).unwrap();
                if want(&v) {
                    return v;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .expect("no matching event within 10 s")
            .unwrap()
            .expect("the stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// `GET url` as guest, its JSON answer.
async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url)
        .basic_auth(GUEST.0, Some(GUEST.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn groups(v: &serde_json::Value) -> Vec<(String, usize)> {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap().to_string(),
                g["peers"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_are_listed_and_followed_for_their_namespace_only() {
    let data = tempfile::tempdir().unwrap();
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(data.path().to_path_buf()),
        ..Settings::default()
    };
    s.invoker.stem_cells = vec![];
    s.directory.listen = "127.0.0.1:0".parse().unwrap();
    let roles = RoleSet::standalone(&s).with(Role::Directory);
    let running = serve(s, roles, CancellationToken::new()).await.unwrap();
    let api = format!("http://{}", running.api_addr.unwrap());
    let dir = running.directory.clone().unwrap();
    let http = reqwest::Client::new();
    let url = format!("{api}/api/v1/namespaces/_/groups");

    // Another namespace's group is there all along and never shown.
    dir.register("mallory", "ring", peer("0", "127.0.9.1"))
        .await
        .unwrap();
    let list = get_json(&http, &url).await;
    assert_eq!(list, serde_json::json!([]));
    for (path, status) in [
        ("/api/v1/namespaces/mallory/groups", 403),
        ("/api/v1/namespaces/_/groups?follow=maybe", 400),
    ] {
        let r = http
            .get(format!("{api}{path}"))
            .basic_auth(GUEST.0, Some(GUEST.1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Follow: the empty list at once, then each change as it happens.
    let mut live = http
        .get(format!("{url}?follow=true"))
        .basic_auth(GUEST.0, Some(GUEST.1))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let first = until_event(&mut live, &mut buf, |_| true).await;
    assert!(groups(&first).is_empty(), "{first}");
    let started = Instant::now();
    for (i, id) in ["0", "1", "2", "3"].iter().enumerate() {
        dir.register("guest", "gang-x", peer(id, &format!("127.0.1.{}", i + 2)))
            .await
            .unwrap();
    }
    let four = until_event(&mut live, &mut buf, |v| {
        groups(v) == [("gang-x".to_string(), 4)]
    })
    .await;
    println!(
        "a group of 4 streamed {:?} after its first register",
        started.elapsed()
    );
    let p = &four["groups"][0]["peers"][0];
    assert_eq!(
        (p["id"].as_str(), p["ip"].as_str(), p["port"].as_u64()),
        (Some("0"), Some("127.0.1.2"), Some(65432))
    );
    assert_eq!(p["activationId"], "act-0");
    assert!(p["sinceMs"].as_i64().unwrap() > 0);

    // The list answers the same; then the group empties and leaves the stream.
    let list = get_json(&http, &url).await;
    assert_eq!(list[0]["group"], "gang-x");
    assert_eq!(list.as_array().unwrap().len(), 1);
    for id in ["0", "1", "2", "3"] {
        dir.deregister("guest", "gang-x", id, "").await.unwrap();
    }
    let started = Instant::now();
    until_event(&mut live, &mut buf, |v| groups(v).is_empty()).await;
    println!(
        "its end streamed {:?} after the last deregister",
        started.elapsed()
    );
    // A stream still open does not hold up the shutdown, and ends with it.
    let started = Instant::now();
    running.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = live.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream outlived the shutdown");
}
