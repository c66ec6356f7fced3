//! Prometheus metrics of a distributed platform: `whisk directory`, a `whisk controller`, two
//! `whisk invoker`s, a `whisk feeds` and a `whisk gateway` as separate processes over tansu,
//! pouchdb-server and Redis (`scripts/services.sh`). Each serves `/metrics` on its internal
//! port (the controller on its API port, the others on `metrics_listen`); the gateway answers
//! `/metrics` 404. Activations run through the gateway; then Debian's `prometheus`, given a
//! generated configuration naming every service, scrapes them: every target is up, and its
//! HTTP API's sums match the activations run (by action and status on the invokers, placed on
//! the controller, answered on the gateway). Each service's exposition passes
//! `promtool check metrics`.

mod support;

use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;
use whisk_test_support::services::Services;
use whisk_test_support::{eventually, free_port};

const SUCCEEDS: &str = "def main(args):\n    return {'ok': True}\n";
const FAILS: &str = "def main(args):\n    return {'error': 'no'}\n";

/// Successful and failed activations the test runs.
const OK_RUNS: usize = 6;
const ERROR_RUNS: usize = 3;

fn program(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` is missing: install Debian's `prometheus` (scripts/test.sh does)"
    );
    name.to_string()
}

/// The value of PromQL `query` (a scalar-valued vector), once Prometheus has it.
async fn query(http: &reqwest::Client, prom: &str, q: &str) -> Option<f64> {
    let v: serde_json::Value = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_service() {
    let prometheus = program("prometheus");
    let promtool = program("promtool");
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let services = Services::up(&dir.join("services"));
    let (kafka, couch, redis) = (services.kafka(), services.couchdb(), services.redis());
    let env = vec![
        (
            "WHISK_INVOKER__USER_MEMORY_MB".to_string(),
            "512".to_string(),
        ),
        (
            "WHISK_COUCHDB__DB_PREFIX".to_string(),
            "whisk_metrics_".to_string(),
        ),
    ];
    let with_metrics = |port: u16| {
        let mut e = env.clone();
        e.push(("WHISK_METRICS_LISTEN".into(), format!("127.0.0.1:{port}")));
        e
    };
    let (dir_port, api_port, gw_port) = (free_port(), free_port(), free_port());
    let base = format!("http://127.0.0.1:{api_port}");
    // job name, scrape address
    let mut targets = vec![("controller".to_string(), format!("127.0.0.1:{api_port}"))];
    let mut procs = Vec::new();
    let directory_metrics = free_port();
    procs.push(spawn_whisk(
        dir,
        "directory",
        &Roles::directory(&format!("127.0.0.1:{dir_port}"), &redis),
        &with_metrics(directory_metrics),
    ));
    targets.push(("directory".into(), format!("127.0.0.1:{directory_metrics}")));
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    procs.push(spawn_whisk(
        dir,
        "controller",
        &roles.controller(&format!("127.0.0.1:{api_port}"), &dir.join("controller")),
        &env,
    ));
    for i in 0..2 {
        let port = free_port();
        procs.push(spawn_whisk(
            dir,
            &format!("invoker{i}"),
            &roles.invoker(
                i,
                Some(&format!("127.0.0.1:{dir_port}")),
                &dir.join(format!("i{i}")),
            ),
            &with_metrics(port),
        ));
        targets.push(("invoker".into(), format!("127.0.0.1:{port}")));
    }
    let feeds_metrics = free_port();
    procs.push(spawn_whisk(
        dir,
        "feeds",
        &roles.feeds(&base, "feeds0"),
        &with_metrics(feeds_metrics),
    ));
    targets.push(("feeds".into(), format!("127.0.0.1:{feeds_metrics}")));
    let gateway_metrics = free_port();
    let gateway = format!("http://127.0.0.1:{gw_port}");
    procs.push(spawn_whisk(
        dir,
        "gateway",
        &Roles::gateway(&format!("127.0.0.1:{gw_port}"), &base),
        &with_metrics(gateway_metrics),
    ));
    targets.push(("gateway".into(), format!("127.0.0.1:{gateway_metrics}")));
    wait_invokers(&base, 2).await;

    // Activations through the gateway: successes and application errors of two actions.
    let key = couch_user_key(&couch, "guest", &env);
    let api = Api::new(&gateway, &key);
    eventually("the gateway", Duration::from_secs(30), || async {
        reqwest::get(format!("{gateway}/api/v1"))
            .await
            .ok()?
            .status()
            .is_success()
            .then_some(())
    })
    .await;
    api.put_python("succeeds", SUCCEEDS, 128).await;
    api.put_python("fails", FAILS, 128).await;
    for _ in 0..OK_RUNS {
        let (status, body) = api
            .invoke("succeeds", "blocking=true&result=true", json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..ERROR_RUNS {
        let (status, body) = api
            .invoke("fails", "blocking=true&result=true", json!({}))
            .await;
        assert_eq!(status, 502, "{body}");
    }
    let http = reqwest::Client::new();
    let refused = http.get(format!("{gateway}/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 404, "the gateway must not route /metrics");

    // Every exposition passes promtool.
    for (job, addr) in &targets {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{job} /metrics at {addr}: {e}"));
        let text = text.text().await.unwrap();
        let mut check = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics on {job} ({addr}): {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "{job} {addr}: promtool check metrics passed ({} bytes)",
            text.len()
        );
    }

    // Prometheus scrapes them all, with a generated configuration.
    let prom_port = free_port();
    let prom = format!("http://127.0.0.1:{prom_port}");
    let mut config =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for job in ["controller", "invoker", "directory", "feeds", "gateway"] {
        let addrs: Vec<String> = targets
            .iter()
            .filter(|(j, _)| j == job)
            .map(|(_, a)| format!("'{a}'"))
            .collect();
        config += &format!(
            "  - job_name: whisk-{job}\n    static_configs:\n      - targets: [{}]\n",
            addrs.join(", ")
        );
    }
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, &config).unwrap();
    let check = Command::new(&promtool)
        .args(["check", "config"])
        .arg(&config_file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut server = Command::new(&prometheus);
    server
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let _prometheus =
        whisk_test_support::Proc::spawn("prometheus", &mut server, &dir.join("prometheus.log"));

    let up = targets.len();
    eventually(
        "every target up in Prometheus",
        Duration::from_secs(60),
        || async {
            let v: serde_json::Value = http
                .get(format!("{prom}/api/v1/targets"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let active = v["data"]["activeTargets"].as_array()?;
            let healthy = active.iter().filter(|t| t["health"] == "up").count();
            (active.len() == up && healthy == up).then_some(())
        },
    )
    .await;

    let expect = |q: &'static str, want: f64| {
        let (http, prom) = (http.clone(), prom.clone());
        async move {
            let what = format!("{q} = {want}");
            let mut last = None;
            let found = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    last = query(&http, &prom, q).await;
                    if last == Some(want) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
            .await;
            assert!(found.is_ok(), "{what}: Prometheus says {last:?}");
            println!("{what}");
        }
    };
    let (ok, err) = (OK_RUNS as f64, ERROR_RUNS as f64);
    expect(
        r#"sum(openwhisk_action_activations_total{job="whisk-invoker",action="succeeds"})"#,
        ok,
    )
    .await;
    expect(
        r#"sum(openwhisk_action_status_total{action="succeeds",status="success"})"#,
        ok,
    )
    .await;
    expect(
        r#"sum(openwhisk_action_status_total{action="fails",status="application_error"})"#,
        err,
    )
    .await;
    expect(
        r#"sum(openwhisk_action_duration_seconds_count{job="whisk-invoker"})"#,
        ok + err,
    )
    .await;
    expect(r#"sum(openwhisk_action_wait_time_seconds_count)"#, ok + err).await;
    expect(
        r#"sum(openwhisk_loadbalancer_activations_total{job="whisk-controller"})"#,
        ok + err,
    )
    .await;
    expect(
        r#"sum(openwhisk_loadbalancer_invokers{state="healthy"})"#,
        2.0,
    )
    .await;
    expect(r#"count(openwhisk_containerpool_active_containers)"#, 2.0).await;
    // librdkafka's statistics (every 5 s) give each consumer's lag.
    expect(
        r#"count(openwhisk_kafka_consumer_lag{topic=~"invoker.*"}) >= bool 1"#,
        1.0,
    )
    .await;
    // Invokes through the gateway (the action PUTs and the /metrics probe are answered too).
    expect(
        r#"sum(whisk_gateway_requests_total{code="200"}) >= bool 8"#,
        1.0,
    )
    .await;
    expect(r#"sum(whisk_gateway_requests_total{code="502"})"#, err).await;
    expect(r#"sum(whisk_gateway_requests_total{code="404"})"#, 1.0).await;
    drop(procs);
}
