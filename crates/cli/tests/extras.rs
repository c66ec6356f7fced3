//! The `whisk` client's extras, as wsk users use them: shell completion (`whisk completion`,
//! `whisk sdk install bashauto`), `whisk activation list` with its filters (a name, `--since`,
//! `--upto`, `--skip`, `--limit`, `--full`) and `whisk action get --save`/`--save-as` for
//! source and zip actions, against a real `whisk standalone`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;
use support::*;

/// `whisk ARGS` in `cwd` with a private wskprops file and none of the `WHISK_*` variables.
fn whisk(cwd: &Path, args: &[&str]) -> Output {
    whisk_private(&cwd.join(".wskprops-test"), cwd)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run whisk")
}

/// `whisk ARGS --apihost HOST --auth GUEST` that must succeed; its stdout.
fn ok(cwd: &Path, host: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--apihost", host, "--auth", GUEST_KEY]);
    let out = whisk(cwd, &all);
    assert!(
        out.status.success(),
        "whisk {args:?}: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The ids of `whisk activation list` (the table's rows after its title).
fn listed(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("activations"), "{table}");
    lines
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn completion_scripts_for_every_shell() {
    let dir = whisk_test_support::temp_dir();
    for shell in ["bash", "zsh", "fish"] {
        let out = whisk(dir.path(), &["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in ["activation", "action", "standalone", "completion"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    let bash = stdout(&whisk(dir.path(), &["completion", "bash"]));
    assert!(bash.starts_with("# bash completion for whisk\n"));
    let file = dir.path().join("check.sh");
    std::fs::write(&file, &bash).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(syntax.status.success(), "{}", stderr(&syntax));
    // An unknown shell is a usage error.
    let out = whisk(dir.path(), &["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn sdk_install_bashauto_as_wsk() {
    let dir = whisk_test_support::temp_dir();
    let out = whisk(dir.path(), &["sdk", "install", "bashauto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("is installed in the current directory"),
        "{}",
        stdout(&out)
    );
    let script = std::fs::read_to_string(dir.path().join("whisk_cli_bash_completion.sh")).unwrap();
    assert!(script.contains("bash completion for whisk"));
    assert!(script.contains("complete"), "{script}");

    let out = whisk(dir.path(), &["sdk", "install", "bashauto", "--stdout"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("bash completion for whisk"));

    let out = whisk(dir.path(), &["sdk", "install"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("The SDK component argument is missing"),
        "{}",
        stderr(&out)
    );
    let out = whisk(dir.path(), &["sdk", "install", "cobol"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("The SDK component argument 'cobol' is invalid"),
        "{}",
        stderr(&out)
    );
    let out = whisk(dir.path(), &["sdk", "install", "docker"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not available"), "{}", stderr(&out));
}

const HELLO_PY: &str =
    "def main(args):\n    print('hello log')\n    return {'n': args.get('n', 0)}\n";

#[tokio::test(flavor = "multi_thread")]
async fn activation_list_filters_and_action_get_save() {
    let data = whisk_test_support::temp_dir();
    let logs = whisk_test_support::temp_dir();
    let server = Server::start(data.path(), logs.path()).await;
    let host = server.url("");
    let work = whisk_test_support::temp_dir();
    let cwd = work.path().to_path_buf();

    std::fs::write(cwd.join("hello.py"), HELLO_PY).unwrap();
    // A zip made by Python's zipfile, as a user's `zip` would.
    let zipped = Command::new("python3")
        .args([
            "-c",
            "import zipfile,sys; z=zipfile.ZipFile('pkg.zip','w'); \
             z.writestr('__main__.py', 'def main(a):\\n    return {\"zip\": True}\\n'); z.close()",
        ])
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert!(zipped.status.success(), "{}", stderr(&zipped));
    ok(&cwd, &host, &["action", "create", "hello", "hello.py"]);
    ok(
        &cwd,
        &host,
        &[
            "action", "create", "zipped", "pkg.zip", "--kind", "python:3",
        ],
    );

    let t0 = whisk_core::now_ms();
    for n in 0..3 {
        let n = n.to_string();
        ok(
            &cwd,
            &host,
            &["action", "invoke", "hello", "-p", "n", &n, "--result"],
        );
    }
    let out = ok(&cwd, &host, &["action", "invoke", "zipped", "--result"]);
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["zip"], true, "{out}");
    let t1 = whisk_core::now_ms();

    let all = listed(&ok(&cwd, &host, &["activation", "list"]));
    assert_eq!(all.len(), 4, "{all:?}");
    let hello = listed(&ok(&cwd, &host, &["activation", "list", "hello"]));
    assert_eq!(hello.len(), 3);
    assert!(hello.iter().all(|id| all.contains(id)));
    let two = listed(&ok(&cwd, &host, &["activation", "list", "--limit", "2"]));
    assert_eq!(two, all[..2].to_vec(), "newest first");
    let skipped = listed(&ok(
        &cwd,
        &host,
        &["activation", "list", "hello", "--skip", "2", "--limit", "5"],
    ));
    assert_eq!(skipped, hello[2..].to_vec());
    let later = (t1 + 60_000).to_string();
    let earlier = (t0 - 60_000).to_string();
    assert!(listed(&ok(&cwd, &host, &["activation", "list", "--since", &later])).is_empty());
    assert!(listed(&ok(
        &cwd,
        &host,
        &["activation", "list", "--upto", &earlier]
    ))
    .is_empty());
    let window = listed(&ok(
        &cwd,
        &host,
        &["activation", "list", "--since", &earlier, "--upto", &later],
    ));
    assert_eq!(window.len(), 4);

    let full = ok(&cwd, &host, &["activation", "list", "hello", "--full"]);
    let records: Value = serde_json::from_str(&full).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 3, "{full}");
    for r in records {
        assert!(r["response"]["result"]["n"].is_u64(), "{r}");
        let logs = r["logs"].as_array().unwrap();
        assert!(
            logs.iter()
                .any(|l| l.as_str().unwrap().ends_with("hello log")),
            "{r}"
        );
    }

    // action get --save: the source under the action's name and its kind's extension.
    // (hello.py is the file it was created from: save into another folder.)
    let saves = cwd.join("saves");
    std::fs::create_dir(&saves).unwrap();
    let out = ok(&saves, &host, &["action", "get", "hello", "--save"]);
    assert!(out.starts_with("ok: saved action code to "), "{out}");
    assert_eq!(
        std::fs::read_to_string(saves.join("hello.py")).unwrap(),
        HELLO_PY
    );
    let again = whisk(
        &saves,
        &[
            "action",
            "get",
            "hello",
            "--save",
            "--apihost",
            &host,
            "--auth",
            GUEST_KEY,
        ],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    ok(
        &saves,
        &host,
        &["action", "get", "hello", "--save-as", "copy.txt"],
    );
    assert_eq!(
        std::fs::read_to_string(saves.join("copy.txt")).unwrap(),
        HELLO_PY
    );
    // A zip action is saved as the zip it was created from.
    ok(&saves, &host, &["action", "get", "zipped", "--save"]);
    assert_eq!(
        std::fs::read(saves.join("zipped.zip")).unwrap(),
        std::fs::read(cwd.join("pkg.zip")).unwrap()
    );
    drop(server);
}

/// The platform's largest `limits.concurrency` is the controller's setting
/// (`controller.action_concurrency_max`).
#[tokio::test(flavor = "multi_thread")]
async fn the_concurrency_maximum_is_a_setting() {
    let data = whisk_test_support::temp_dir();
    let logs = whisk_test_support::temp_dir();
    let server = Server::start_with_env(
        data.path(),
        logs.path(),
        &[],
        &[("WHISK_CONTROLLER__ACTION_CONCURRENCY_MAX", "4")],
    )
    .await;
    let root: Value = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["limits"]["max_action_concurrency"], 4, "{root}");
    let work = whisk_test_support::temp_dir();
    std::fs::write(work.path().join("a.js"), "function main() { return {}; }").unwrap();
    let host = server.url("");
    ok(
        work.path(),
        &host,
        &["action", "create", "four", "a.js", "--concurrency", "4"],
    );
    let out = whisk(
        work.path(),
        &[
            "action",
            "create",
            "five",
            "a.js",
            "--concurrency",
            "5",
            "--apihost",
            &host,
            "--auth",
            GUEST_KEY,
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("concurrency 5 exceeds allowed threshold of 1..4"),
        "{}",
        stderr(&out)
    );
}
