//! The fault matrix's full data disk: a standalone `whisk` whose data folder is a small tmpfs
//! that the test fills to the last byte while activations come in, then empties. While the disk
//! is full, requests get OpenWhisk's error bodies (or are accepted), the process keeps serving,
//! and nothing panics; once there is room again, every activation that was accepted ends with a
//! record (none is lost), new actions can be created, and a restart on the same folder finds the
//! store, the bus logs and the journal readable (no torn record hides the ones after it).
//!
//! Needs root (it mounts a tmpfs); fails loudly otherwise.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Api, Server, GUEST_KEY};

const ECHO: &str = "def main(a):\n    print('x' * 200)\n    return {'n': a.get('n', 0)}\n";

/// A tmpfs of `mb` MiB mounted at a new folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mb: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "mounting a tmpfs failed: the full-disk test needs root (scripts/test.sh runs as root in CI)"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with `fill` until a write fails.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("fill");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_loses_no_accepted_activation_and_serves_again_once_there_is_room() {
    let disk = Tmpfs::mount(64);
    let data = disk.path().join("data");
    let logs = tempfile::tempdir().unwrap();
    let env = [("WHISK_INVOKER__PROCESS__SINGLE_TENANT", "true")];
    let mut server = Server::start_with_env(&data, logs.path(), &[], &env).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    api.put_python("echo", ECHO, 128).await;
    let mut accepted = vec![api.start("echo", serde_json::json!({"n": 0})).await];
    api.result(&accepted[0]).await;

    // Full: every answer is a success or OpenWhisk's error body; the process keeps serving.
    let filler = fill(disk.path());
    let (mut refused, mut ok) = (0, 0);
    for n in 1..=40 {
        let blocking = n % 2 == 0;
        let query = if blocking {
            "blocking=true"
        } else {
            "blocking=false"
        };
        let (status, body) = api.invoke("echo", query, serde_json::json!({"n": n})).await;
        match status {
            200 | 202 => {
                ok += 1;
                let id = body["activationId"].as_str().unwrap_or_default();
                if !id.is_empty() {
                    accepted.push(id.to_string());
                }
            }
            _ => {
                refused += 1;
                assert!(
                    body["error"].is_string() && body["code"].is_string(),
                    "status {status} without OpenWhisk's error body: {body}"
                );
            }
        }
    }
    let put = api
        .req(reqwest::Method::PUT, "actions/other?overwrite=true")
        .json(&serde_json::json!({"exec": {"kind": "python:3", "code": ECHO}}))
        .send()
        .await
        .unwrap();
    let status = put.status().as_u16();
    let body: serde_json::Value = put.json().await.unwrap_or_default();
    assert!(
        status == 200 || (body["error"].is_string() && body["code"].is_string()),
        "creating an action on a full disk: {status} {body}"
    );
    eprintln!("while full: {ok} accepted, {refused} refused with an error body");

    // Room again: every accepted activation gets its record, and writes work again.
    std::fs::remove_file(&filler).unwrap();
    for id in &accepted {
        let record = api.record(id, Duration::from_secs(60)).await;
        assert!(record["response"]["status"].is_string(), "{record}");
    }
    let mut created = false;
    for _ in 0..100 {
        let r = api
            .req(reqwest::Method::PUT, "actions/after?overwrite=true")
            .json(&serde_json::json!({"exec": {"kind": "python:3", "code": ECHO}}))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        created,
        "the store did not serve writes again once the disk had room:\n{}",
        server.log_tail()
    );
    let id = api.start("after", serde_json::json!({"n": 99})).await;
    assert_eq!(api.result(&id).await["n"], 99);

    // A restart on the same folder reads everything back.
    server.terminate();
    drop(server);
    let server = Server::start_with_env(&data, logs.path(), &[], &env).await;
    let api = Api::new(&server.url(""), GUEST_KEY);
    for id in accepted.iter().chain(std::iter::once(&id)) {
        api.record(id, Duration::from_secs(30)).await;
    }
    let id = api.start("echo", serde_json::json!({"n": 7})).await;
    assert_eq!(api.result(&id).await["n"], 7);
}
