//! End-to-end tests of the real `whisk-proxy` binary with native actions (kind `native`,
//! OpenWhisk's dockerskeleton style): a shell script, a compiled binary and a zip holding
//! `exec`; the parameters in argv[1] and on stdin, `__OW_*` and init variables, the last stdout
//! line as the result and the rest as logs, and each failure's answer.

mod support;

use base64::Engine;
use serde_json::json;
use support::{zip_base64, Running, SENTINEL};

const SCRIPT: &str = r#"#!/bin/sh
echo "log line for $__OW_ACTIVATION_ID"
echo "to stderr" >&2
echo "{\"args\": $1, \"namespace\": \"$__OW_NAMESPACE\", \"foo\": \"$FOO\", \"argc\": $#}"
"#;

#[tokio::test]
async fn a_shell_script_is_an_action() {
    let proxy = Running::start("native").await;
    let init = json!({"value": {"name": "s", "code": SCRIPT, "env": {"FOO": 42}}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    let (status, body) = proxy.run(json!({"name": "bob"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"args": {"name": "bob"}, "namespace": "guest", "foo": "42", "argc": 1})
    );
    let (status, body) = proxy.run(json!({"n": 2})).await;
    assert_eq!(
        (status, &body["args"]),
        (200, &json!({"n": 2})),
        "runs again"
    );

    let stdout = proxy.stdout_with(2);
    let log = stdout.find("log line for act-1").expect("logs captured");
    assert!(log < stdout.find(SENTINEL).unwrap(), "{stdout:?}");
    assert!(
        !stdout.contains("\"args\""),
        "the result line is not a log: {stdout:?}"
    );
    let stderr = proxy.stderr_with(2);
    assert!(stderr.find("to stderr").unwrap() < stderr.find(SENTINEL).unwrap());
}

#[tokio::test]
async fn a_compiled_binary_is_an_action() {
    // /bin/echo is an ELF executable that prints its argv[1]: the parameters are the result.
    let elf = std::fs::read("/bin/echo").expect("/bin/echo");
    let code = base64::engine::general_purpose::STANDARD.encode(elf);
    let proxy = Running::start("native").await;
    let init = json!({"value": {"name": "e", "code": code, "binary": true}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    let args = json!({"a": [1, 2], "b": "x"});
    assert_eq!(proxy.run(args.clone()).await, (200, args));
}

#[tokio::test]
async fn a_zip_holds_exec_and_its_files() {
    let code = zip_base64(&[
        ("exec", "#!/bin/sh\ncat ./data/answer.json\n"),
        ("data/answer.json", "{\"answer\": 42}\n"),
    ]);
    let proxy = Running::start("native").await;
    let init = json!({"value": {"name": "z", "code": code, "binary": true}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    assert_eq!(proxy.run(json!({})).await, (200, json!({"answer": 42})));

    let no_exec = zip_base64(&[("main.sh", "#!/bin/sh\necho {}\n")]);
    let proxy = Running::start("native").await;
    let init = json!({"value": {"name": "z", "code": no_exec, "binary": true}});
    let (status, body) = proxy.post("/init", init).await;
    assert_eq!(status, 502);
    assert_eq!(
        body["error"],
        "The action failed to generate or locate a binary: the zip file holds no executable 'exec'."
    );
}

#[tokio::test]
async fn large_parameters_arrive_on_stdin() {
    let proxy = Running::start("native").await;
    let code = "#!/bin/sh\necho \"argc $#\"\ncat\n";
    assert_eq!(proxy.init(code).await.0, 200);
    let big = json!({"blob": "x".repeat(200_000)});
    let (status, body) = proxy.run(big.clone()).await;
    assert_eq!((status, body), (200, big));
    assert!(
        proxy.stdout_with(1).contains("argc 0"),
        "no argv[1] past 128 KiB"
    );
    let small = json!({"blob": "y"});
    assert_eq!(proxy.run(small.clone()).await, (200, small));
}

#[tokio::test]
async fn results_and_failures_as_openwhisk_answers_them() {
    let proxy = Running::start("native").await;
    let code = r#"#!/bin/sh
case "$1" in
  *list*) echo '[1, 2]' ;;
  *text*) echo "before"; echo "not json" ;;
  *kill*) kill -9 $$ ;;
  *) echo '{"ok": true}' ;;
esac
"#;
    assert_eq!(proxy.init(code).await.0, 200);
    assert_eq!(proxy.run(json!({"m": "list"})).await, (200, json!([1, 2])));
    let (status, body) = proxy.run(json!({"m": "text"})).await;
    assert_eq!(status, 502);
    assert_eq!(
        body["error"],
        "The action did not return a dictionary or array."
    );
    let stdout = proxy.stdout_with(2);
    assert!(
        stdout.contains("before\nnot json\n"),
        "every line is a log then: {stdout:?}"
    );
    let (status, body) = proxy.run(json!({"m": "kill"})).await;
    assert_eq!(status, 502);
    assert_eq!(
        body["error"],
        "The action did not produce a valid response and exited unexpectedly."
    );
    // One activation's process died, not the proxy: the next one runs.
    assert_eq!(
        proxy.run(json!({"m": "again"})).await,
        (200, json!({"ok": true}))
    );

    let proxy = Running::start("native").await;
    let (status, body) = proxy.init("echo no shebang\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = proxy.run(json!({})).await;
    assert_eq!(
        (status, &body["error"]),
        (
            502,
            &json!("The action did not return a dictionary or array.")
        )
    );
    assert!(
        proxy.stderr_with(1).contains("could not be started"),
        "the reason is logged"
    );
}
