//! End-to-end conformance: the real `whisk standalone` binary, driven by OpenWhisk's own
//! JavaScript client (`tests/conformance`, `node --test`), plus a restart test (SIGTERM keeps
//! actions and activations, and leaves no action process behind).
//!
//! Needs `node` (>= 18) and `npm` on PATH; their absence fails the test with a clear message.
//! `CONFORMANCE_TEST_PATTERN` narrows the Node tests (`node --test-name-pattern`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::*;

// ---------------------------------------------------------------------------------------------
// Node.js
// ---------------------------------------------------------------------------------------------

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/conformance")
        .canonicalize()
        .expect("tests/conformance exists")
}

/// Runs a tool, failing loudly (not skipping) when it is not installed.
fn run_tool(cmd: &mut Command, what: &str) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{what}: `{}` is not installed or not on PATH. The conformance test needs Node.js >= 18 \
             and npm (e.g. `apt-get install nodejs npm`); it is not skipped without them.",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => panic!("{what}: running `{}`: {e}", cmd.get_program().to_string_lossy()),
    }
}

fn check_node() {
    let out = run_tool(Command::new("node").arg("--version"), "checking node");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && major >= 18,
        "node --version gave {version:?}; the conformance tests need Node.js >= 18"
    );
    let npm = run_tool(Command::new("npm").arg("--version"), "checking npm");
    assert!(
        npm.status.success(),
        "npm --version failed: {}",
        String::from_utf8_lossy(&npm.stderr)
    );
}

/// `npm ci` (or `npm install` without a lock file) when `node_modules` is missing.
fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/openwhisk/package.json").exists() {
        return;
    }
    let verb = if dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    let out = run_tool(
        Command::new("npm")
            .arg(verb)
            .args(["--no-audit", "--no-fund"])
            .current_dir(dir),
        &format!("npm {verb} in {}", dir.display()),
    );
    print_output(&format!("npm {verb}"), &out);
    assert!(
        out.status.success(),
        "npm {verb} in {} failed with {}",
        dir.display(),
        out.status
    );
}

fn print_output(what: &str, out: &Output) {
    println!(
        "---- {what}: stdout ----\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "---- {what}: stderr ----\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The Node.js suite in `tests/conformance`, through the `openwhisk` npm client.
#[tokio::test(flavor = "multi_thread")]
async fn openwhisk_client_conformance() {
    check_node();
    let dir = conformance_dir();
    ensure_node_modules(&dir);

    let data = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path(), logs.path()).await;

    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"]);
    if let Ok(pattern) = std::env::var("CONFORMANCE_TEST_PATTERN") {
        node.arg(format!("--test-name-pattern={pattern}"));
    }
    node.current_dir(&dir)
        .env("__OW_API_HOST", format!("http://127.0.0.1:{}", server.port))
        .env("__OW_API_KEY", GUEST_KEY)
        .env("__OW_NAMESPACE", "guest")
        .env("WHISK_BIN", whisk_bin())
        .env("WHISK_DATA_DIR", &server.data_dir)
        .env_remove("__OW_IGNORE_CERTS")
        .env_remove("__OW_APIGW_TOKEN")
        .stdin(Stdio::null());
    // The client sends every request through a proxy named in these; the server is local.
    for var in [
        "PROXY",
        "proxy",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
    ] {
        node.env_remove(var);
    }
    let out = tokio::task::spawn_blocking(move || run_tool(&mut node, "running node --test"))
        .await
        .unwrap();
    print_output("node --test", &out);
    // On failure the server's output follows (printed by its guard).
    assert!(
        out.status.success(),
        "node --test in {} failed with {} (its output is above)",
        dir.display(),
        out.status
    );
}

const PY_HELLO: &str =
    "def main(args):\n    return {\"greeting\": \"hello \" + args.get(\"name\", \"stranger\")}\n";

/// SIGTERM ends the server and every action process it started; a restart on the same data
/// directory still has the action and its activation.
#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_actions_and_activations() {
    let data = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::tempdir().expect("tempdir");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let mut first = Server::start(data.path(), logs.path()).await;
    let action_url = first.url("/api/v1/namespaces/_/actions/survivor");
    let resp = http
        .put(format!("{action_url}?overwrite=false"))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .json(&json!({"exec": {"kind": "python:3", "code": PY_HELLO}, "parameters": [{"key": "name", "value": "disk"}]}))
        .send()
        .await
        .expect("PUT action");
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "PUT action: {body}");

    let resp = http
        .post(format!("{action_url}?blocking=true"))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .json(&json!({}))
        .send()
        .await
        .expect("POST invoke");
    let status = resp.status();
    let record: Value = resp.json().await.expect("invoke answers JSON");
    assert_eq!(status, 200, "blocking invoke: {record}");
    assert_eq!(
        record["response"]["result"],
        json!({"greeting": "hello disk"}),
        "{record}"
    );
    let activation_id = record["activationId"]
        .as_str()
        .expect("activationId")
        .to_string();

    // The action process(es) the server started, identified by pid and start time.
    let before = descendants(first.pid());
    assert!(
        !before.is_empty(),
        "after a blocking invoke the server (pid {}) has no child processes; expected the action's process",
        first.pid()
    );

    let exit = first.terminate();
    assert!(
        exit.success(),
        "whisk standalone exited with {exit} after SIGTERM; output:\n{}",
        first.log_tail()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = alive(&before);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = alive(&before);
    }
    if !left.is_empty() {
        for (pid, _) in &left {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        panic!("SIGTERM left processes of the stopped server running (now killed): {left:?}");
    }
    drop(first);

    let second = Server::start(data.path(), logs.path()).await;
    let resp = http
        .get(second.url("/api/v1/namespaces/_/actions/survivor"))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .send()
        .await
        .expect("GET action");
    let status = resp.status();
    let action: Value = resp.json().await.expect("GET action answers JSON");
    assert_eq!(status, 200, "action after restart: {action}");
    assert_eq!(action["exec"]["code"], json!(PY_HELLO), "{action}");
    assert_eq!(action["version"], json!("0.0.1"), "{action}");

    let resp = http
        .get(second.url(&format!("/api/v1/namespaces/_/activations/{activation_id}")))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .send()
        .await
        .expect("GET activation");
    let status = resp.status();
    let stored: Value = resp.json().await.expect("GET activation answers JSON");
    assert_eq!(status, 200, "activation after restart: {stored}");
    assert_eq!(stored["activationId"], json!(activation_id));
    assert_eq!(
        stored["response"]["result"],
        json!({"greeting": "hello disk"}),
        "{stored}"
    );

    let resp = http
        .get(second.url("/api/v1/namespaces/_/activations?name=survivor"))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .send()
        .await
        .expect("GET activations");
    let list: Value = resp.json().await.expect("list answers JSON");
    assert!(
        list.as_array()
            .is_some_and(|l| l.iter().any(|a| a["activationId"] == json!(activation_id))),
        "activation list after restart lacks {activation_id}: {list}"
    );

    // And the restarted server runs the action again.
    let resp = http
        .post(second.url("/api/v1/namespaces/_/actions/survivor?blocking=true&result=true"))
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .json(&json!({"name": "again"}))
        .send()
        .await
        .expect("POST invoke after restart");
    let status = resp.status();
    let result: Value = resp.json().await.expect("invoke answers JSON");
    assert_eq!(status, 200, "invoke after restart: {result}");
    assert_eq!(result, json!({"greeting": "hello again"}));
}

// ---------------------------------------------------------------------------------------------
// /proc helpers
// ---------------------------------------------------------------------------------------------

/// Every descendant of `pid` (children of all its threads, recursively): pid → start time.
fn descendants(pid: u32) -> BTreeMap<u32, u64> {
    let mut found = BTreeMap::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
            {
                if let Some(start) = start_time(child) {
                    if found.insert(child, start).is_none() {
                        queue.push(child);
                    }
                }
            }
        }
    }
    found
}

/// Field 22 of /proc/PID/stat (start time in clock ticks), unless the process is gone or a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The processes of `procs` still running (same pid and same start time), with their command lines.
fn alive(procs: &BTreeMap<u32, u64>) -> Vec<(u32, String)> {
    procs
        .iter()
        .filter(|(pid, start)| start_time(**pid) == Some(**start))
        .map(|(pid, _)| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (
                *pid,
                String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}
