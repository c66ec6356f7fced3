//! A standalone `whisk` killed (SIGKILL) while it runs and holds accepted non-blocking
//! activations, then restarted on the same data folder: every accepted activation ends with a
//! record, none runs twice (each run appends its id to a file), the ones that were running get
//! the invoker's interrupted whisk error, and the ones that had not started run after the
//! restart.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{Api, Server, GUEST_KEY};

/// Appends its activation id to `file`, then sleeps `sleep` seconds.
const SLOW: &str = r#"
import os, time
def main(args):
    with open(args["file"], "a") as f:
        f.write(os.environ.get("__OW_ACTIVATION_ID", "?") + "\n")
        f.flush()
    time.sleep(args.get("sleep", 0))
    return {"slept": args.get("sleep", 0)}
"#;

const INTERRUPTED: &str = whisk_invoker::journal::INTERRUPTED;

/// How many times each id appears in the runs file.
fn runs(file: &std::path::Path) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for id in std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
    {
        *n.entry(id.to_string()).or_default() += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_standalone_finishes_every_accepted_activation_after_its_restart() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("runs");
    // Room for 4 activations of 256 MB at once; the actions may write the runs file.
    let env = [
        ("WHISK_INVOKER__USER_MEMORY_MB", "1024"),
        ("WHISK_INVOKER__PROCESS__SINGLE_TENANT", "true"),
    ];
    let mut server = Server::start_with_env(data.path(), logs.path(), &[], &env).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("slow", SLOW, 256).await;
    let params =
        |sleep: u64| serde_json::json!({"file": file.display().to_string(), "sleep": sleep});

    // Two that finish before the crash: not run again after it.
    let mut done_before = vec![];
    for _ in 0..2 {
        let id = api.start("slow", params(0)).await;
        api.result(&id).await;
        done_before.push(id);
    }
    // Six that take a while: four run at once, two wait for room.
    let mut slow = vec![];
    for _ in 0..6 {
        let (status, body) = api.invoke("slow", "blocking=false", params(6)).await;
        if status == 202 {
            slow.push(body["activationId"].as_str().unwrap().to_string());
        } else {
            // Refusing (503 "System is overloaded") is allowed; losing an accepted one is not.
            assert_eq!(status, 503, "{body}");
        }
    }
    assert!(slow.len() >= 4, "accepted {}", slow.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs(&file).len() < done_before.len() + 4 {
        assert!(
            Instant::now() < deadline,
            "4 slow activations never started: {:?}",
            runs(&file)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill();
    let started_before: Vec<String> = runs(&file)
        .into_keys()
        .filter(|id| slow.contains(id))
        .collect();

    let server = Server::start_with_env(data.path(), logs.path(), &[], &env).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    let mut interrupted = 0;
    let mut ran_after = 0;
    for id in done_before.iter().chain(&slow) {
        let record = api.record(id, Duration::from_secs(90)).await;
        let response = &record["response"];
        if response["status"] == "whisk internal error" {
            assert_eq!(response["result"]["error"], INTERRUPTED, "{record}");
            assert!(
                started_before.contains(id),
                "{id} was interrupted without having started"
            );
            interrupted += 1;
        } else {
            assert_eq!(response["status"], "success", "{record}");
            if slow.contains(id) && !started_before.contains(id) {
                ran_after += 1;
            }
        }
    }
    let counts = runs(&file);
    for (id, n) in &counts {
        assert_eq!(*n, 1, "{id} ran {n} times: {counts:?}");
    }
    assert_eq!(
        interrupted,
        started_before.len(),
        "every started slow one is interrupted"
    );
    assert_eq!(
        ran_after,
        slow.len() - started_before.len(),
        "the waiting ones ran after the restart"
    );
    eprintln!(
        "accepted {} slow: {interrupted} interrupted by the kill, {ran_after} run after the restart",
        slow.len()
    );
}
