//! End-to-end tests of the real `whisk-proxy` binary with Python actions:
//! the action proxy protocol, logs and sentinels, errors and launcher death.

mod support;

use serde_json::json;
use support::{zip_base64, Running, SENTINEL};

const GREETING: &str = r#"
import os, sys
def main(args):
    print("log line for", os.environ.get("__OW_ACTIVATION_ID"))
    print("to stderr", file=sys.stderr)
    mode = args.get("mode")
    if mode == "raise":
        raise ValueError("boom")
    if mode == "list":
        return [1, 2]
    if mode == "none":
        return None
    if mode == "exit":
        sys.exit(3)
    return {
        "greeting": "hello " + args.get("name", "stranger"),
        "activation": os.environ.get("__OW_ACTIVATION_ID"),
        "namespace": os.environ.get("__OW_NAMESPACE"),
        "foo": os.environ.get("FOO"),
        "lib_on_path": any(p.endswith("/lib") for p in sys.path),
    }
"#;

async fn greeting_proxy() -> Running {
    let proxy = Running::start("python").await;
    let init = json!({"value": {"name": "g", "code": GREETING, "env": {"FOO": 42}}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    proxy
}

#[tokio::test]
async fn python_init_and_run() {
    let proxy = greeting_proxy().await;
    let (status, body) = proxy.run(json!({"name": "bob"})).await;
    assert_eq!(status, 200);
    assert_eq!(body["greeting"], "hello bob");
    assert_eq!(body["activation"], "act-1");
    assert_eq!(body["namespace"], "guest");
    assert_eq!(body["foo"], "42", "init env is stringified and exported");
    assert_eq!(body["lib_on_path"], true);
    let (status, body) = proxy.run(json!({})).await;
    assert_eq!((status, &body["greeting"]), (200, &json!("hello stranger")));

    let stdout = proxy.stdout_with(2);
    let first = stdout.find("log line for act-1").expect("print captured");
    assert!(
        first < stdout.find(SENTINEL).unwrap(),
        "logs precede the sentinel: {stdout:?}"
    );
    let stderr = proxy.stderr_with(2);
    assert!(stderr.find("to stderr").unwrap() < stderr.find(SENTINEL).unwrap());
}

#[tokio::test]
async fn python_failures_during_run() {
    let proxy = greeting_proxy().await;
    let (status, body) = proxy.run(json!({"mode": "raise"})).await;
    assert_eq!((status, body), (200, json!({"error": "boom"})));
    let stderr = proxy.stderr_with(1);
    assert!(
        stderr.contains("ValueError: boom"),
        "traceback on stderr: {stderr:?}"
    );

    for mode in ["list", "none"] {
        let (status, body) = proxy.run(json!({"mode": mode})).await;
        assert_eq!(status, 502, "{mode}");
        assert_eq!(
            body,
            json!({"error": "The action did not return a dictionary."})
        );
    }
    // Still healthy after errors.
    assert_eq!(
        proxy.run(json!({"name": "x"})).await.1["greeting"],
        "hello x"
    );

    let (status, body) = proxy.run(json!({"mode": "exit"})).await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        json!({"error": "The action did not produce a valid response and exited unexpectedly."})
    );
    let (status, body) = proxy.run(json!({"name": "x"})).await;
    assert_eq!(status, 502, "later runs fail too: {body}");
    assert!(body["error"].as_str().unwrap().contains("exited"), "{body}");
    proxy.stdout_with(6);
}

#[tokio::test]
async fn python_init_failures() {
    let (twice, no_main, syntax, bad_body) = tokio::join!(
        Running::start("python"),
        Running::start("python"),
        Running::start("python"),
        Running::start("python"),
    );

    assert_eq!(twice.run(json!({})).await.0, 403, "run before init");
    assert_eq!(twice.init("def main(a): return {}").await.0, 200);
    let (status, body) = twice.init("def main(a): return {}").await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"error": "Cannot initialize the action more than once."})
        )
    );

    let (status, body) = no_main.init("def other(a): return {}").await;
    assert_eq!(
        (status, body),
        (502, json!({"error": "Invalid function: main not defined"}))
    );
    assert!(no_main.stdout_with(1).contains(SENTINEL));
    assert_eq!(no_main.run(json!({})).await.0, 502, "run after failed init");

    let (status, body) = syntax.init("def main(a):\n  return {\n").await;
    assert_eq!(status, 502);
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("SyntaxError"), "{error}");

    for text in ["{not json", "[1]", "{}", r#"{"value": {"main": "main"}}"#] {
        let (status, body) = bad_body.post_raw("/init", text.to_string()).await;
        assert_eq!(status, 400, "{text}: {body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(
        bad_body.post_raw("/run", "nope".into()).await.0,
        403,
        "not initialized yet"
    );
    assert_eq!(bad_body.init("def main(a): return {'ok': 1}").await.0, 200);
    assert_eq!(bad_body.post_raw("/run", "nope".into()).await.0, 400);
}

#[tokio::test]
async fn python_zip_action() {
    let proxy = Running::start("python").await;
    let code = zip_base64(&[
        (
            "__main__.py",
            "from helper import shout\ndef start(a):\n    return {'said': shout(a['w'])}\n",
        ),
        ("helper.py", "def shout(w):\n    return w.upper() + '!'\n"),
    ]);
    let init = json!({"value": {"name": "z", "main": "start", "code": code, "binary": true}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    assert_eq!(
        proxy.run(json!({"w": "hey"})).await,
        (200, json!({"said": "HEY!"}))
    );

    let bad = Running::start("python").await;
    let init = json!({"value": {"code": "bm90IGEgemlw", "binary": true}});
    let (status, body) = bad.post("/init", init).await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("zip"), "{body}");
}

#[tokio::test]
async fn python_sequential_noop_runs() {
    let proxy = Running::start("python").await;
    assert_eq!(proxy.init("def main(a):\n    return a\n").await.0, 200);
    let body = json!({"value": {"n": 1}, "activation_id": "a"}).to_string();
    let started = std::time::Instant::now();
    for _ in 0..200 {
        let (status, body) = proxy.post_raw("/run", body.clone()).await;
        assert_eq!((status, body), (200, json!({"n": 1})));
    }
    let mean = started.elapsed() / 200;
    eprintln!("python noop /run through whisk-proxy: mean {mean:?} over 200 runs");
}

/// A proxy given a secret serves `/init` and `/run` only to a caller that presents it, and
/// the action never sees it in its environment.
#[tokio::test]
async fn only_the_invoker_with_the_secret_may_init_and_run() {
    let secret = "s3cr3t-of-this-container";
    let proxy = Running::start_with_env("python", &[("WHISK_PROXY_SECRET", secret)]).await;
    let http = reqwest::Client::new();
    let code = "import os\ndef main(args):\n    return {'seen': os.environ.get('WHISK_PROXY_SECRET'), 'env': sorted(os.environ)}\n";
    let init = json!({"value": {"main": "main", "code": code}});
    for auth in [None, Some("Bearer wrong"), Some("Bearer "), Some(secret)] {
        let mut req = http.post(format!("{}/init", proxy.base)).json(&init);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "init with {auth:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("invoker"),
            "{body}"
        );
    }
    let resp = http
        .post(format!("{}/run", proxy.base))
        .json(&json!({"value": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "run without the secret");

    let ok = http
        .post(format!("{}/init", proxy.base))
        .bearer_auth(secret)
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let run = http
        .post(format!("{}/run", proxy.base))
        .bearer_auth(secret)
        .json(&json!({"value": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), 200);
    let body: serde_json::Value = run.json().await.unwrap();
    assert_eq!(body["seen"], serde_json::Value::Null, "{body}");
    assert!(
        !body["env"].to_string().contains("WHISK_PROXY_SECRET"),
        "{body}"
    );
    // Health stays open (it tells nothing).
    let health = http
        .get(format!("{}/health", proxy.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
