//! Live logs end to end: a Python action prints a line every 200 ms for 2 s; a follower of
//! `GET .../activations/{id}/logs?follow=true` (server-sent events) gets its first lines while
//! it still runs (its record does not exist yet), every line in the record's order, then one
//! `end` event; a finished activation answers its stored lines and `end` at once; another
//! namespace and an unknown id get 404; `whisk activation logs -f` and `whisk activation
//! poll` print the lines as they come. In standalone, and in distributed mode over Kafka with
//! two controllers: the activation is placed by one and followed through the other.

mod support;

use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use whisk_test_support::services::Services;

const TICKER: &str = r#"
import time
def main(args):
    for i in range(int(args.get("n", 10))):
        print("tick", i)
        time.sleep(0.2)
    return {"done": True}
"#;

/// Prints past its 1 MB log limit at once, then runs on.
const CHATTY: &str = r#"
import time
def main(args):
    for i in range(2000):
        print(str(i).rjust(600, "x"))
    time.sleep(1.5)
    print("after the limit")
    return {"done": True}
"#;

/// One server-sent event as the follower saw it.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Line(String),
    End(Value),
}

/// What a follow answered.
struct Followed {
    events: Vec<Ev>,
    /// Whether the activation's record was absent when the first line arrived.
    running_at_first_line: Option<bool>,
}

/// Follows `id` through `base` with `key`; `records` reads records (to see whether the
/// activation had ended when the first line came).
async fn follow(base: &str, key: &str, id: &str, records: &Api) -> Result<Followed, u16> {
    let (u, k) = key.split_once(':').unwrap();
    let mut resp = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/namespaces/_/activations/{id}/logs?follow=true"
        ))
        .basic_auth(u, Some(k))
        .send()
        .await
        .expect("follow request");
    if resp.status().as_u16() != 200 {
        return Err(resp.status().as_u16());
    }
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut buf = String::new();
    let mut out = Followed {
        events: vec![],
        running_at_first_line: None,
    };
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), resp.chunk())
        .await
        .expect("the stream stalled")
        .expect("reading the stream")
    {
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(at) = buf.find("\n\n") {
            let block: String = buf.drain(..at + 2).collect();
            let (mut event, mut data) = (None, None);
            for field in block.lines() {
                if let Some(v) = field.strip_prefix("event: ") {
                    event = Some(v.to_string());
                } else if let Some(v) = field.strip_prefix("data: ") {
                    data = Some(v.to_string());
                }
            }
            match (event.as_deref(), data) {
                (Some("end"), Some(d)) => {
                    out.events.push(Ev::End(serde_json::from_str(&d).unwrap()));
                    assert!(buf.is_empty(), "nothing after end: {buf:?}");
                }
                (None, Some(d)) => {
                    if out.running_at_first_line.is_none() {
                        let r = records
                            .req(reqwest::Method::GET, &format!("activations/{id}"))
                            .send()
                            .await
                            .unwrap();
                        out.running_at_first_line = Some(r.status().as_u16() == 404);
                    }
                    out.events.push(Ev::Line(d));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The follow of a running ticker: first line while it ran, every line, then `end`; the
/// lines are the record's.
async fn check_live(base: &str, key: &str, id: &str, records: &Api) -> Vec<Ev> {
    let f = follow(base, key, id, records).await.expect("follow");
    assert_eq!(
        f.running_at_first_line,
        Some(true),
        "the first line came after the record: {:?}",
        f.events
    );
    check_complete(&f.events, id, records).await;
    f.events
}

/// Ten tick lines in order, then `end` with success; the lines equal the record's logs.
async fn check_complete(events: &[Ev], id: &str, records: &Api) {
    let lines: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Ev::Line(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l.split_once(" stdout: ").map(|x| x.1).unwrap_or(l))
        .collect();
    let expected: Vec<String> = (0..10).map(|i| format!("tick {i}")).collect();
    assert_eq!(texts, expected, "{events:?}");
    assert_eq!(
        events.last(),
        Some(&Ev::End(json!({"activationId": id, "status": "success"}))),
        "{events:?}"
    );
    let record = records.record(id, Duration::from_secs(30)).await;
    assert_eq!(record["logs"], json!(lines), "live lines are the record's");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_logs_in_standalone() {
    let tmp = whisk_test_support::temp_dir();
    let data = tmp.path().join("data");
    let server = Server::start(&data, tmp.path()).await;
    let base = server.url("");
    let api = Api::new(&base, GUEST_KEY);
    api.put_python("ticker", TICKER, 128).await;
    // Warm: the follows below see the lines of a running action, not a container starting.
    api.result(&api.start("ticker", json!({"n": 1})).await)
        .await;

    // A follower sees the lines while the action runs.
    let id = api.start("ticker", json!({})).await;
    let live = check_live(&base, GUEST_KEY, &id, &api).await;

    // Ended: the stored lines and `end` at once, the same events.
    let again = follow(&base, GUEST_KEY, &id, &api).await.unwrap();
    assert_eq!(again.events, live);

    // Another namespace: 404 while it runs and once it has ended; an unknown id: 404.
    let other = admin_user_key("other", &["--data-dir".as_ref(), data.as_os_str()], &[]);
    let other_api = Api::new(&base, &other);
    let running = api.start("ticker", json!({})).await;
    for id in [&running, &id] {
        let r = follow(&base, &other, id, &other_api).await;
        assert_eq!(r.err(), Some(404), "another namespace followed {id}");
    }
    let unknown = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        follow(&base, GUEST_KEY, unknown, &api).await.err(),
        Some(404)
    );
    api.record(&running, Duration::from_secs(30)).await;

    // The log limit reached says so live, with the record's truncation line, while the
    // action still runs; nothing after it.
    let r = api
        .req(reqwest::Method::PUT, "actions/chatty?overwrite=true")
        .json(&json!({"exec": {"kind": "python:3", "code": CHATTY}, "limits": {"logs": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id = api.start("chatty", json!({})).await;
    let f = follow(&base, GUEST_KEY, &id, &api).await.unwrap();
    let lines: Vec<&String> = f
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Line(l) => Some(l),
            _ => None,
        })
        .collect();
    let last = lines.last().unwrap();
    assert!(
        last.contains("stderr: Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."),
        "{last}"
    );
    assert!(lines.len() > 1000 && lines.len() < 2000, "{}", lines.len());
    assert_eq!(f.running_at_first_line, Some(true));
    // The record's lines, but the truncation line's own time.
    let record = api.record(&id, Duration::from_secs(30)).await;
    let stored = record["logs"].as_array().unwrap();
    let n = lines.len();
    assert_eq!(stored.len(), n);
    assert_eq!(json!(lines[..n - 1]), json!(stored[..n - 1]));
    let notice = |l: &str| l.split_once(' ').unwrap().1.to_string();
    assert_eq!(notice(last), notice(stored[n - 1].as_str().unwrap()));

    // `whisk activation logs -f ID` prints each line as it comes: the first before the
    // record exists.
    let id = api.start("ticker", json!({})).await;
    let mut cli = whisk_private(&tmp.path().join("wskprops"), tmp.path());
    cli.args(["activation", "logs", "-f", &id])
        .env("WHISK_APIHOST", &base)
        .env("WHISK_AUTH", GUEST_KEY);
    let lines = cli_lines(cli, &api, &id, |l| l.contains("tick")).await;
    let ticks: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(ticks.len(), 10, "{ticks:?}");
    assert!(ticks[0].ends_with("stdout: tick 0"), "{ticks:?}");
    assert!(
        lines[0].1,
        "the CLI printed the first line after the activation ended"
    );

    // `whisk activation poll ticker`: a new activation's header, then its lines as they come.
    let mut cli = whisk_private(&tmp.path().join("wskprops"), tmp.path());
    cli.args(["activation", "poll", "ticker", "--exit", "20"])
        .env("WHISK_APIHOST", &base)
        .env("WHISK_AUTH", GUEST_KEY);
    let starter = api.clone();
    let started = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        starter.start("ticker", json!({})).await
    });
    let lines = cli_lines_until(cli, &api, started, 11).await;
    let (id, lines) = lines;
    assert_eq!(
        lines[0].0,
        format!("Activation: 'ticker' ({id})"),
        "{lines:?}"
    );
    assert!(lines[1].0.ends_with("stdout: tick 0"), "{lines:?}");
    assert!(
        lines[1].1,
        "poll printed the first line after the activation ended"
    );
    assert!(lines[10].0.ends_with("stdout: tick 9"), "{lines:?}");
}

/// Runs `cmd`; returns its stdout lines that `keep`, each with whether activation `id` was
/// still running (no record) when it was printed.
async fn cli_lines(
    cmd: std::process::Command,
    api: &Api,
    id: &str,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, bool)> {
    let mut child = tokio::process::Command::from(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run whisk");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut lines = vec![];
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), out.next_line())
        .await
        .expect("the CLI stalled")
        .unwrap()
    {
        if keep(&line) {
            let running = lines.is_empty() && no_record(api, id).await;
            lines.push((line, running));
        }
    }
    let status = child.wait().await.unwrap();
    assert!(status.success(), "whisk exited with {status}");
    lines
}

/// Runs `cmd` (a poll) while `started` starts an activation; returns its id and the first
/// `n` lines from its header on, each with whether the activation had no record yet.
async fn cli_lines_until(
    cmd: std::process::Command,
    api: &Api,
    started: tokio::task::JoinHandle<String>,
    n: usize,
) -> (String, Vec<(String, bool)>) {
    let mut child = tokio::process::Command::from(cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("run whisk");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let id = started.await.unwrap();
    let mut lines: Vec<(String, bool)> = vec![];
    while lines.len() < n {
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("poll stalled")
            .unwrap()
            .expect("poll ended early");
        if lines.is_empty() && !line.starts_with("Activation:") {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let running = lines.len() == 1 && no_record(api, &id).await;
        lines.push((line, running));
    }
    (id, lines)
}

async fn no_record(api: &Api, id: &str) -> bool {
    let r = api
        .req(reqwest::Method::GET, &format!("activations/{id}"))
        .send()
        .await
        .unwrap();
    r.status().as_u16() == 404
}

#[tokio::test(flavor = "multi_thread")]
async fn live_logs_across_controllers_over_kafka() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let services = Services::up(&dir.join("services"));
    let kafka = services.kafka();
    let couch = services.couchdb();
    let env = vec![(
        "WHISK_COUCHDB__DB_PREFIX".to_string(),
        "whisk_live_".to_string(),
    )];
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    let mut bases = vec![];
    let mut procs = vec![];
    for i in 0..2 {
        let port = free_port();
        let mut args = roles.controller(
            &format!("127.0.0.1:{port}"),
            &dir.join(format!("controller{i}")),
        );
        args.extend(["--id".to_string(), i.to_string()]);
        procs.push(spawn_whisk(dir, &format!("controller{i}"), &args, &env));
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    let args = roles.invoker(0, None, &dir.join("i0"));
    procs.push(spawn_whisk(dir, "invoker0", &args, &env));
    for b in &bases {
        wait_invokers(b, 1).await;
    }
    let key = couch_user_key(&couch, "guest", &env);
    let placer = Api::new(&bases[0], &key);
    placer.put_python("ticker", TICKER, 128).await;
    placer
        .result(&placer.start("ticker", json!({"n": 1})).await)
        .await;

    // Placed by controller 0, followed through controller 1 (which never saw it) and
    // through controller 0: both get the lines while it runs, from the invoker over Kafka.
    let id = placer.start("ticker", json!({})).await;
    let (a, b) = tokio::join!(
        check_live(&bases[1], &key, &id, &placer),
        check_live(&bases[0], &key, &id, &placer),
    );
    assert_eq!(a, b);

    // Another namespace through the other controller: 404.
    let other = couch_user_key(&couch, "other", &env);
    let other_api = Api::new(&bases[1], &other);
    let running = placer.start("ticker", json!({})).await;
    let r = follow(&bases[1], &other, &running, &other_api).await;
    assert_eq!(r.err(), Some(404));
    placer.record(&running, Duration::from_secs(30)).await;
    drop(procs);
}
