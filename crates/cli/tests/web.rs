//! Web actions and API routes end to end with the real `whisk standalone` (its invoker and
//! Python runtime) and the `whisk` binary: `action create --web true|raw|false` and its
//! annotations, `action get --url`, calling the URL with each extension, a bad `statusCode`,
//! an action that is not exported, and `api create|get|list|delete` with calls of the route.

mod support;

use serde_json::{json, Value};
use support::*;

fn annotations(v: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for kv in v["annotations"].as_array().cloned().unwrap_or_default() {
        m.insert(kv["key"].as_str().unwrap().to_string(), kv["value"].clone());
    }
    Value::Object(m)
}

#[tokio::test]
async fn web_actions_and_routes_with_the_cli() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let http = reqwest::Client::new();
    let file = |name: &str, code: &str| {
        let p = dir.join(name);
        std::fs::write(&p, code).unwrap();
        p.display().to_string()
    };
    let hello = file(
        "hello.py",
        "def main(a):\n    return {'greeting': 'hello ' + a.get('name', 'world'), 'path': a.get('__ow_path'), 'method': a.get('__ow_method')}\n",
    );
    let page = file(
        "page.py",
        "def main(a):\n    return {'statusCode': a.get('code', 200), 'headers': {'x-page': 'yes'}, 'body': '<p>' + a.get('name', 'page') + '</p>'}\n",
    );

    // --web true: web-export, raw-http false, final true.
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &[
            "action", "create", "hello", &hello, "--web", "true", "-p", "name", "fixed",
        ],
    ));
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "create", "page", &page, "--web", "true"],
    ));
    let out = succeeded(&whisk_as_guest(dir, &host, &["action", "get", "hello"]));
    let got: Value = serde_json::from_str(out.split_once('\n').unwrap().1).unwrap();
    let ann = annotations(&got);
    assert_eq!(
        (&ann["web-export"], &ann["raw-http"], &ann["final"]),
        (&json!(true), &json!(false), &json!(true)),
        "{got}"
    );

    let out = succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "get", "page", "--url"],
    ));
    let url = out.lines().nth(1).unwrap().trim().to_string();
    assert_eq!(url, format!("{host}/api/v1/web/guest/default/page"));
    let resp = http.get(&url).query(&[("name", "x")]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-page"], "yes");
    assert_eq!(resp.text().await.unwrap(), "<p>x</p>");

    let v: Value = http
        .post(format!("{host}/api/v1/web/guest/default/hello.json/a/b"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"greeting": "hello fixed", "path": "/a/b", "method": "post"})
    );

    // A final parameter cannot be overridden; a bad statusCode is OpenWhisk's 400.
    let resp = http
        .get(format!(
            "{host}/api/v1/web/guest/default/hello.json?name=other"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http
        .get(format!(
            "{host}/api/v1/web/guest/default/page.http?code=abc"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "Response is not valid 'message/http'.");

    // --web false: not exported any more (404), and no route can be made to it.
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "update", "page", "--web", "false"],
    ));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let o = whisk_as_guest(dir, &host, &["api", "create", "/p", "/q", "get", "page"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Action '/_/page' is not a web action."),
        "{err}"
    );

    // API routes.
    let out = succeeded(&whisk_as_guest(
        dir,
        &host,
        &[
            "api",
            "create",
            "/hello",
            "/world",
            "get",
            "hello",
            "--response-type",
            "json",
        ],
    ));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "ok: created API /hello/world GET for action /_/hello"
    );
    let route = lines.next().unwrap().trim().to_string();
    assert!(
        route.starts_with(&format!("{host}/api/")) && route.ends_with("/hello/world"),
        "{route}"
    );
    let v: Value = http.get(&route).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["greeting"], "hello fixed");
    assert_eq!(v["method"], "get");
    assert_eq!(http.post(&route).send().await.unwrap().status(), 404);

    let list = succeeded(&whisk_as_guest(dir, &host, &["api", "list"]));
    assert!(list.starts_with("ok: APIs\n"), "{list}");
    let row = list
        .lines()
        .find(|l| l.starts_with("/guest/hello"))
        .expect(&list);
    assert!(
        row.contains(" get ") && row.contains("/hello") && row.ends_with(&route),
        "{list}"
    );
    let full = succeeded(&whisk_as_guest(
        dir,
        &host,
        &["api", "list", "/hello", "/world", "get", "--full"],
    ));
    assert!(
        full.contains("Action: /guest/hello\n") && full.contains("  Verb: get\n"),
        "{full}"
    );
    let doc: Value = serde_json::from_str(&succeeded(&whisk_as_guest(
        dir,
        &host,
        &["api", "get", "/hello"],
    )))
    .unwrap();
    assert_eq!(doc["basePath"], "/hello");
    assert_eq!(
        doc["paths"]["/world"]["get"]["x-openwhisk"]["action"],
        "hello"
    );

    let out = succeeded(&whisk_as_guest(dir, &host, &["api", "delete", "/hello"]));
    assert_eq!(out.trim(), "ok: deleted API /hello");
    assert_eq!(http.get(&route).send().await.unwrap().status(), 404);
    let o = whisk_as_guest(dir, &host, &["api", "get", "/hello"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("API does not exist for basepath /hello"));
    let o = whisk_as_guest(dir, &host, &["api", "delete", "/hello"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("API '/hello' does not exist."),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The platform keeps serving.
    let resp = http
        .get(format!("{host}/api/v1/web/guest/default/hello.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
