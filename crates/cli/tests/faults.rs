//! The fault matrix: the distributed platform (broker on SQLite storage, CouchDB, Redis, a
//! directory, a controller and two invokers, all separate processes) under a steady mixed load
//! (blocking and non-blocking invokes, gangs of two whose instances find each other through
//! the directory), while one part at a time is SIGKILLed and started again, or an invoker is
//! frozen (SIGSTOP) past its health timeout and thawed. For each fault the test counts what
//! was accepted (answered with an activation id), completed, errored, lost (accepted without
//! a record: must be 0) and run twice (the action reports every run of its activation id
//! over UDP: must be 0, user code runs at most once), and the recovery time (from the restart
//! to the first successful blocking invoke). It prints the table that docs/reliability.md
//! keeps. `scripts/faults.sh` runs it with a longer load per fault (`WHISK_FAULT_LOAD_SECS`).

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio_util::sync::CancellationToken;
use whisk_test_support::services::Services;
use whisk_test_support::{free_port, signal, Proc};

/// Reports its activation id to the test's UDP port on every run, then answers.
const COUNTED: &str = r#"
import os, socket, time, whisk_peers
def main(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(os.environ["__OW_ACTIVATION_ID"].encode(), ("127.0.0.1", int(args["port"])))
    if args.get("instanceID") is not None:
        whisk_peers.wait_for(2, timeout=30)
    time.sleep(float(args.get("sleep", 0)))
    return {"ok": True}
"#;

/// Seconds of load on each side of a fault.
fn load_secs() -> u64 {
    std::env::var("WHISK_FAULT_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// The platform's processes, restartable by name.
struct Stack {
    // Dropped first: the whisk processes stop before the services they use.
    procs: HashMap<String, Proc>,
    dir: std::path::PathBuf,
    services: Services,
    env: Vec<(String, String)>,
    args: HashMap<String, Vec<String>>,
    restarts: usize,
    base: String,
}

impl Stack {
    fn start_proc(&mut self, name: &str) {
        self.restarts += 1;
        let log = format!("{name}-{}", self.restarts);
        let p = spawn_whisk(&self.dir, &log, &self.args[name], &self.env);
        self.procs.insert(name.to_string(), p);
    }

    fn kill(&mut self, name: &str) {
        if let Some(mut p) = self.procs.remove(name) {
            p.kill();
        }
    }

    fn pid(&self, name: &str) -> u32 {
        self.procs[name].pid()
    }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    refused: usize,
}

/// One row of the matrix.
struct Row {
    fault: String,
    accepted: usize,
    completed: usize,
    errored: usize,
    refused: usize,
    lost: usize,
    duplicated: usize,
    /// From the restart to the first successful blocking invoke; `None`: not within 90 s.
    recovery: Option<Duration>,
}

impl Row {
    fn print(&self) -> String {
        let recovery = self.recovery.map_or("not within 90 s".to_string(), |d| {
            format!("{:.1}", d.as_secs_f64())
        });
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {recovery} |",
            self.fault,
            self.accepted,
            self.completed,
            self.errored,
            self.refused,
            self.lost,
            self.duplicated
        )
    }
}

/// Sends request `i` of the mix; records what was accepted.
async fn send(api: &Api, port: u16, i: usize, seen: &Mutex<Seen>) {
    let params = json!({"port": port, "sleep": 0.05});
    let (name, query) = match i % 10 {
        0..=5 => ("counted", "blocking=true"),
        6..=8 => ("counted", "blocking=false"),
        _ => ("counted", "blocking=false&instances=2"),
    };
    let r = api
        .req(reqwest::Method::POST, &format!("actions/{name}?{query}"))
        .timeout(Duration::from_secs(90))
        .json(&params)
        .send()
        .await;
    let Ok(r) = r else {
        // The controller is down: nothing was accepted.
        seen.lock().unwrap().refused += 1;
        return;
    };
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let mut ids: Vec<String> = vec![];
    if let Some(id) = body["activationId"].as_str() {
        ids.push(id.to_string());
    }
    if let Some(a) = body["activationIds"].as_array() {
        ids.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    let mut seen = seen.lock().unwrap();
    if ids.is_empty() {
        // Refused (429/503 with OpenWhisk's error body) or a failure without an id.
        assert!(
            status >= 400 && body["error"].is_string(),
            "an answer without an activation id and without an error: {status} {body}"
        );
        seen.refused += 1;
    } else {
        seen.accepted.extend(ids);
    }
}

/// Runs the mix with `clients` loops until `stop`.
fn load(
    api: &Api,
    port: u16,
    clients: usize,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<Seen>> {
    (0..clients)
        .map(|c| {
            let (api, stop) = (api.clone(), stop.clone());
            tokio::spawn(async move {
                let seen = Mutex::new(Seen::default());
                let mut i = c;
                while !stop.is_cancelled() {
                    send(&api, port, i, &seen).await;
                    i += clients;
                }
                seen.into_inner().unwrap()
            })
        })
        .collect()
}

/// Blocking invokes until one succeeds (at most 90 s); answers when, or `None` with the last
/// answer printed.
async fn recovered(api: &Api, port: u16) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = api
            .req(
                reqwest::Method::POST,
                "actions/counted?blocking=true&result=true",
            )
            .timeout(Duration::from_secs(30))
            .json(&json!({"port": port}))
            .send()
            .await;
        let last = match r {
            Ok(r) if r.status().as_u16() == 200 => return Some(Instant::now()),
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            eprintln!("no successful blocking invoke within 90 s; the last answer: {last}");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A record of `id`, waiting at most until `deadline`.
async fn record(api: &Api, id: &str, deadline: Instant) -> Option<Value> {
    loop {
        if let Ok(r) = api
            .req(reqwest::Method::GET, &format!("activations/{id}"))
            .send()
            .await
        {
            if r.status().as_u16() == 200 {
                return r.json().await.ok();
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The UDP listener counting runs per activation id.
fn run_counter() -> (u16, Arc<Mutex<HashMap<String, usize>>>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let runs = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let counted = runs.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = sock.recv(&mut buf) {
            let id = String::from_utf8_lossy(&buf[..n]).to_string();
            *counted.lock().unwrap().entry(id).or_insert(0) += 1;
        }
    });
    (port, runs)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fault_matrix_loses_nothing_and_runs_nothing_twice() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path().to_path_buf();
    let services = Services::up_with(&dir.join("services"), &[("WHISK_KAFKA_STORAGE", "sqlite")]);
    let (kafka, couch, redis) = (services.kafka(), services.couchdb(), services.redis());
    let api_port = free_port();
    let dir_port = free_port();
    let env = vec![
        (
            "WHISK_INVOKER__USER_MEMORY_MB".to_string(),
            "1024".to_string(),
        ),
        (
            "WHISK_CONTROLLER__INVOKER_OFFLINE_AFTER".to_string(),
            "3000".to_string(),
        ),
        (
            "WHISK_COUCHDB__DB_PREFIX".to_string(),
            "whisk_faults_".to_string(),
        ),
    ];
    let directory = format!("127.0.0.1:{dir_port}");
    let mut args = HashMap::new();
    args.insert(
        "directory".to_string(),
        Roles::directory(&directory, &redis),
    );
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    args.insert(
        "controller".to_string(),
        roles.controller(&format!("127.0.0.1:{api_port}"), &dir.join("controller")),
    );
    for i in 0..2 {
        args.insert(
            format!("invoker{i}"),
            roles.invoker(i, Some(&directory), &dir.join(format!("i{i}"))),
        );
    }
    let mut stack = Stack {
        dir: dir.clone(),
        services,
        env,
        args,
        procs: HashMap::new(),
        restarts: 0,
        base: format!("http://127.0.0.1:{api_port}"),
    };
    for name in ["directory", "controller", "invoker0", "invoker1"] {
        stack.start_proc(name);
    }
    wait_invokers(&stack.base, 2).await;
    let api = Api::new(&stack.base, &couch_user_key(&couch, "guest", &stack.env));
    api.put_python("counted", COUNTED, 128).await;
    let (port, runs) = run_counter();
    assert!(
        recovered(&api, port).await.is_some(),
        "the platform never served"
    );

    let faults = [
        "broker",
        "couchdb",
        "redis",
        "directory",
        "controller",
        "invoker0",
        "invoker1",
        "invoker1 frozen",
    ];
    let mut rows = vec![];
    for fault in faults {
        let stop = CancellationToken::new();
        let clients = load(&api, port, 4, &stop);
        tokio::time::sleep(Duration::from_secs(load_secs())).await;
        let back = inject(&mut stack, fault).await;
        let at = recovered(&api, port).await;
        tokio::time::sleep(Duration::from_secs(load_secs())).await;
        stop.cancel();
        let mut seen = Seen::default();
        for c in clients {
            let s = c.await.unwrap();
            seen.accepted.extend(s.accepted);
            seen.refused += s.refused;
        }
        let row = account(
            &api,
            fault,
            seen,
            &runs,
            at.map(|at| at.duration_since(back)),
        )
        .await;
        eprintln!("{}", row.print());
        rows.push(row);
    }

    println!(
        "\n### Fault matrix ({} s of load on each side of a fault, 4 clients)\n",
        load_secs()
    );
    println!(
        "| fault | accepted | completed | errored | refused | lost | run twice | recovery s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{}", r.print());
    }
    for r in &rows {
        assert!(r.recovery.is_some(), "{}: no recovery", r.fault);
        assert!(r.accepted > 0, "{}: nothing was accepted", r.fault);
        assert_eq!(
            r.lost, 0,
            "{}: accepted activations without a record",
            r.fault
        );
        assert_eq!(r.duplicated, 0, "{}: user code ran twice", r.fault);
    }
}

/// Applies `fault`; answers when the part was started again (or thawed).
async fn inject(stack: &mut Stack, fault: &str) -> Instant {
    let down = Duration::from_secs(2);
    match fault {
        "broker" | "couchdb" | "redis" => {
            let pid_file = match fault {
                "broker" => "kafka/tansu.pid",
                "couchdb" => "couchdb/pid",
                _ => "redis/pid",
            };
            stack.services.crash(pid_file);
            tokio::time::sleep(down).await;
            stack.services.up_again(fault);
        }
        "invoker1 frozen" => {
            let pid = stack.pid("invoker1");
            signal(pid, libc::SIGSTOP);
            // Past the controller's offline-after (3 s) and a blocking invoke's patience.
            tokio::time::sleep(Duration::from_secs(6)).await;
            signal(pid, libc::SIGCONT);
        }
        name => {
            stack.kill(name);
            tokio::time::sleep(down).await;
            stack.start_proc(name);
            if name.starts_with("invoker") {
                wait_invokers(&stack.base, 2).await;
            }
        }
    }
    Instant::now()
}

/// Counts what became of the accepted activations of one fault.
async fn account(
    api: &Api,
    fault: &str,
    seen: Seen,
    runs: &Mutex<HashMap<String, usize>>,
    recovery: Option<Duration>,
) -> Row {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut statuses = BTreeMap::<String, usize>::new();
    let mut lost = vec![];
    for id in &seen.accepted {
        match record(api, id, deadline).await {
            Some(rec) => {
                let status = rec["response"]["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                *statuses.entry(status).or_insert(0) += 1;
            }
            None => lost.push(id.clone()),
        }
    }
    let runs = runs.lock().unwrap();
    let duplicated = seen
        .accepted
        .iter()
        .filter(|id| runs.get(id.as_str()).copied().unwrap_or(0) > 1)
        .count();
    if !lost.is_empty() {
        eprintln!("{fault}: lost {lost:?}");
    }
    let completed = statuses.get("success").copied().unwrap_or(0);
    Row {
        fault: fault.to_string(),
        accepted: seen.accepted.len(),
        completed,
        errored: seen.accepted.len() - completed - lost.len(),
        refused: seen.refused,
        lost: lost.len(),
        duplicated,
        recovery,
    }
}
