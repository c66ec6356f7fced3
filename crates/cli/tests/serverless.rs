//! The Serverless Framework 3 with the `serverless-openwhisk` plugin against `whisk
//! standalone`, as a new user tries it: `serverless deploy` of a Python function (a zip with
//! `__main__.py` and a helper module, sent without `exec.binary`: the platform infers it) and a
//! Node.js function (a zip with a `package.json` naming the handler), `serverless invoke` of
//! both, `serverless remove`.
//!
//! The pinned versions are in `tests/serverless/package.json` and its lock file; the test runs
//! `npm ci` there when they are not installed yet (scripts/test.sh does it up front). Without
//! Node.js or npm the test fails, never skips.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use whisk_test_support::node::{ensure_node_modules, print_output, require_npm, run_tool};

mod support;
use support::*;

const SERVICE_YML: &str = r#"service: whisk-demo
frameworkVersion: "3"
configValidationMode: off
provider:
  name: openwhisk
plugins:
  localPath: PLUGINS
  modules:
    - serverless-openwhisk
package:
  patterns:
    - "!node_modules/**"
functions:
  hello:
    handler: handler.main
    runtime: python:3
  greet:
    handler: greet.main
    runtime: nodejs:20
"#;

const HANDLER_PY: &str = "import helper\n\n\
def main(args):\n    return {\"greeting\": helper.greet(args.get(\"name\", \"stranger\"))}\n";
const HELPER_PY: &str = "def greet(name):\n    return \"Hello, \" + name + \"!\"\n";
const GREET_JS: &str =
    "function main(params) {\n  return {payload: \"Hi \" + (params.name || \"you\")};\n}\nexports.main = main;\n";

/// `serverless ARGS` in the service folder against the server at `apihost`.
fn serverless(service: &Path, home: &Path, apihost: &str, args: &[&str]) -> Output {
    let bin = whisk_test_support::repo_root().join("tests/serverless/node_modules/.bin/serverless");
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .current_dir(service)
        // Its state and config files (~/.serverlessrc, ~/.wskprops) in a folder of the test.
        .env("HOME", home)
        .env("OW_APIHOST", apihost)
        .env("OW_AUTH", GUEST_KEY)
        .env("SLS_TELEMETRY_DISABLED", "1")
        .env("SLS_NOTIFICATIONS_MODE", "off")
        .env("SLS_DEPRECATION_DISABLE", "*")
        .env_remove("OW_NAMESPACE")
        .env_remove("WSK_CONFIG_FILE")
        .stdin(Stdio::null());
    for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        cmd.env_remove(var);
    }
    let what = format!("serverless {}", args.join(" "));
    let out = run_tool(&mut cmd, &what);
    print_output(&what, &out);
    assert!(out.status.success(), "{what} failed with {}", out.status);
    out
}

/// `GET /api/v1/namespaces/_/PATH`'s JSON answer.
async fn get(api: &Api, path: &str) -> Value {
    let resp = api.req(reqwest::Method::GET, path).send().await.unwrap();
    resp.json().await.unwrap()
}

/// The JSON object `serverless invoke` prints (its last `{ ... }` block).
fn printed_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    let end = text
        .rfind('}')
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    serde_json::from_str(&text[start..=end]).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn serverless_framework_deploys_and_invokes_zip_actions() {
    require_npm();
    let cache = whisk_test_support::repo_root().join("tests/serverless");
    ensure_node_modules(&cache, "serverless");
    ensure_node_modules(&cache, "serverless-openwhisk");

    let data = whisk_test_support::temp_dir();
    let logs = whisk_test_support::temp_dir();
    let server = Server::start(data.path(), logs.path()).await;
    let apihost = server.url("");

    let service = whisk_test_support::temp_dir();
    let home = whisk_test_support::temp_dir();
    let plugins = cache.join("node_modules").display().to_string();
    let files = [
        ("serverless.yml", SERVICE_YML.replace("PLUGINS", &plugins)),
        ("handler.py", HANDLER_PY.to_string()),
        ("helper.py", HELPER_PY.to_string()),
        ("greet.js", GREET_JS.to_string()),
    ];
    for (name, text) in files {
        std::fs::write(service.path().join(name), text).unwrap();
    }

    let (svc, home) = (service.path().to_path_buf(), home.path().to_path_buf());
    let host = apihost.clone();
    let run = move |args: &'static [&'static str]| {
        let (svc, home, host) = (svc.clone(), home.clone(), host.clone());
        tokio::task::spawn_blocking(move || serverless(&svc, &home, &host, args))
    };

    run(&["deploy"]).await.unwrap();

    // What the plugin stored: a zip, found binary although the plugin never says so.
    let api = Api::new(&apihost, GUEST_KEY);
    let action = get(&api, "actions/whisk-demo-dev-hello").await;
    assert_eq!(action["exec"]["kind"], "python:3", "{action}");
    assert_eq!(action["exec"]["binary"], true, "{action}");

    let out = run(&["invoke", "-f", "hello", "-d", r#"{"name":"sls"}"#])
        .await
        .unwrap();
    assert_eq!(printed_json(&out), json!({"greeting": "Hello, sls!"}));
    let out = run(&["invoke", "-f", "greet", "-d", r#"{"name":"sls"}"#])
        .await
        .unwrap();
    assert_eq!(printed_json(&out), json!({"payload": "Hi sls"}));

    run(&["remove"]).await.unwrap();
    let list = get(&api, "actions").await;
    assert_eq!(list, json!([]), "after serverless remove: {list}");
    drop(server);
}
