//! End-to-end tests of the real `whisk-proxy` binary with Node.js actions (they fail, never
//! skip, when Node.js is not installed).

mod support;

use serde_json::json;
use support::{zip_base64, Running, SENTINEL};
use whisk_test_support::node::require_node;

#[tokio::test]
async fn node_script_with_global_main() {
    require_node();
    let proxy = Running::start("nodejs").await;
    let code = r#"
function main(p) {
  console.log("node log", process.env.__OW_ACTIVATION_ID);
  return {payload: "hello " + p.name, foo: process.env.FOO};
}"#;
    let init = json!({"value": {"name": "n", "main": "main", "code": code, "env": {"FOO": true}}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    let (status, body) = proxy.run(json!({"name": "ann"})).await;
    assert_eq!(
        (status, body),
        (200, json!({"payload": "hello ann", "foo": "true"}))
    );
    let stdout = proxy.stdout_with(1);
    assert!(stdout.find("node log act-1").unwrap() < stdout.find(SENTINEL).unwrap());
}

#[tokio::test]
async fn node_async_and_exported_main() {
    require_node();
    let (async_main, exported) = tokio::join!(Running::start("nodejs"), Running::start("nodejs"));
    let code = r#"
async function main(p) {
  await new Promise((resolve) => setTimeout(resolve, 5));
  if (p.fail) throw new Error("nope");
  if (p.list) return [1];
  return {payload: "hello " + p.name};
}"#;
    assert_eq!(async_main.init(code).await.0, 200);
    assert_eq!(
        async_main.run(json!({"name": "a"})).await,
        (200, json!({"payload": "hello a"}))
    );
    assert_eq!(
        async_main.run(json!({"fail": true})).await,
        (200, json!({"error": "nope"}))
    );
    assert_eq!(async_main.run(json!({"list": true})).await.0, 502);

    let code = "exports.main = (p) => Promise.resolve({twice: p.n * 2});";
    assert_eq!(exported.init(code).await.0, 200);
    assert_eq!(
        exported.run(json!({"n": 21})).await,
        (200, json!({"twice": 42}))
    );
}

#[tokio::test]
async fn node_init_failures_and_exit() {
    require_node();
    let (no_main, syntax, exits) = tokio::join!(
        Running::start("nodejs"),
        Running::start("nodejs"),
        Running::start("nodejs"),
    );
    let (status, body) = no_main.init("function other() { return {}; }").await;
    assert_eq!(
        (status, body),
        (502, json!({"error": "Invalid function: main not defined"}))
    );

    let (status, body) = syntax.init("function main( {").await;
    assert_eq!(status, 502);
    assert!(
        body["error"].as_str().unwrap().starts_with("SyntaxError"),
        "{body}"
    );

    assert_eq!(
        exits.init("function main() { process.exit(1); }").await.0,
        200
    );
    let (status, body) = exits.run(json!({})).await;
    assert_eq!(status, 502);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exited unexpectedly"),
        "{body}"
    );
    assert_eq!(exits.run(json!({})).await.0, 502);
}

#[tokio::test]
async fn node_zip_package() {
    require_node();
    let proxy = Running::start("nodejs").await;
    let code = zip_base64(&[
        ("package.json", r#"{"name": "z", "main": "lib/entry.js"}"#),
        (
            "lib/entry.js",
            "const h = require('./h');\nexports.main = (p) => ({v: h(p.x)});\n",
        ),
        ("lib/h.js", "module.exports = (x) => x + 1;\n"),
    ]);
    let init = json!({"value": {"code": code, "binary": true}});
    assert_eq!(proxy.post("/init", init).await, (200, json!({"ok": true})));
    assert_eq!(proxy.run(json!({"x": 1})).await, (200, json!({"v": 2})));
}
