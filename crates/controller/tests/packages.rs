//! Packages, bindings and actions in packages through the controller and its fake invoker
//! (which answers with the parameters it received, so that the merge order shows): CRUD and
//! OpenWhisk's errors, force delete, bindings and their parameters, `final`, entitlement
//! across namespaces (published packages readable and invocable, never writable), and the
//! `/whisk.system` catalog.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::{json, Value};
use whisk_core::Identity;

const PKGS: &str = "/api/v1/namespaces/_/packages";
const ACTS: &str = "/api/v1/namespaces/_/actions";

fn names(list: &Value) -> Vec<String> {
    let mut n: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

async fn ok(h: &Harness, m: Method, path: &str, who: &Identity, body: Option<Value>) -> Value {
    let (s, v) = h.call(m.clone(), path, Some(who), body).await;
    assert_eq!(s, 200, "{m} {path}: {v}");
    v
}

async fn put_action(
    h: &Harness,
    who: &Identity,
    ns: &str,
    name: &str,
    params: Value,
) -> (u16, Value) {
    h.call(
        Method::PUT,
        &format!("/api/v1/namespaces/{ns}/actions/{name}"),
        Some(who),
        Some(json!({"exec": {"kind": "python:3", "code": "def main(a): return a"}, "parameters": params})),
    )
    .await
}

/// `PUT {PKGS}/PATH` with `body` as `who`, which must fail with `status`: the error message.
async fn put_fails(h: &Harness, who: &Identity, path: &str, body: Value, status: u16) -> String {
    h.error(
        Method::PUT,
        &format!("{PKGS}/{path}"),
        Some(who),
        Some(body),
        status,
    )
    .await
}

/// Another tenant's namespace.
async fn stranger(h: &Harness) -> Identity {
    h.limited("stranger", 1000, 100).await
}

#[tokio::test]
async fn package_crud_and_errors() {
    let h = Harness::start().await;
    let g = guest();
    let p = ok(&h, Method::PUT, &format!("{PKGS}/p1"), &g, Some(json!({}))).await;
    assert_eq!(p["name"], "p1");
    assert_eq!(p["namespace"], "guest");
    assert_eq!(p["version"], "0.0.1");
    assert_eq!(p["binding"], json!({}));
    assert_eq!(p["annotations"], json!([]));
    assert_eq!(p["publish"], false);

    let msg = put_fails(&h, &g, "p1", json!({}), 409).await;
    assert_eq!(msg, "resource already exists");
    let u = ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/p1?overwrite=true"),
        &g,
        Some(json!({"parameters": [{"key": "a", "value": 1}]})),
    )
    .await;
    assert_eq!(u["version"], "0.0.2");
    assert_eq!(u["parameters"], json!([{"key": "a", "value": 1}]));

    let got = ok(&h, Method::GET, &format!("{PKGS}/p1"), &g, None).await;
    assert_eq!(got["actions"], json!([]));
    assert_eq!(got["feeds"], json!([]));
    assert_eq!(got["parameters"], json!([{"key": "a", "value": 1}]));

    let list = ok(&h, Method::GET, PKGS, &g, None).await;
    assert_eq!(names(&list), ["p1"]);
    assert_eq!(list[0]["binding"], false);
    assert!(list[0].get("parameters").is_none(), "{list}");
    let count = ok(&h, Method::GET, &format!("{PKGS}?count=true"), &g, None).await;
    assert_eq!(count, json!({"packages": 1}));

    let msg = put_fails(&h, &g, "default", json!({}), 400).await;
    assert_eq!(msg, "Package name 'default' is reserved.");
    put_fails(&h, &g, "p2", json!({"parameters": 3}), 400).await;
    h.error(Method::GET, &format!("{PKGS}/nope"), Some(&g), None, 404)
        .await;
    h.error(Method::DELETE, &format!("{PKGS}/nope"), Some(&g), None, 404)
        .await;

    let d = ok(&h, Method::DELETE, &format!("{PKGS}/p1"), &g, None).await;
    assert_eq!(d["name"], "p1");
    h.error(Method::GET, &format!("{PKGS}/p1"), Some(&g), None, 404)
        .await;
    // The platform keeps serving.
    assert_eq!(ok(&h, Method::GET, PKGS, &g, None).await, json!([]));
}

#[tokio::test]
async fn actions_in_packages_and_force_delete() {
    let h = Harness::start().await;
    let g = guest();
    // The package must exist.
    let (s, v) = put_action(&h, &g, "_", "nopkg/a", json!([])).await;
    assert_eq!(s, 404, "{v}");
    ok(&h, Method::PUT, &format!("{PKGS}/p"), &g, Some(json!({}))).await;
    let (s, v) = put_action(&h, &g, "_", "p/a", json!([])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["namespace"], "guest/p");
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{ACTS}/p/feed"),
            Some(&g),
            Some(json!({"exec": {"kind": "python:3", "code": "x"}, "annotations": [{"key": "feed", "value": true}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let got = ok(&h, Method::GET, &format!("{PKGS}/p"), &g, None).await;
    assert_eq!(names(&got["actions"]), ["a"]);
    assert_eq!(names(&got["feeds"]), ["feed"]);
    assert_eq!(got["actions"][0]["version"], "0.0.1");
    let in_pkg = ok(&h, Method::GET, &format!("{ACTS}/p/"), &g, None).await;
    assert_eq!(names(&in_pkg), ["a", "feed"]);
    // The namespace's list has them too, named by their package.
    let all = ok(&h, Method::GET, ACTS, &g, None).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|a| a["namespace"] == "guest/p"),
        "{all}"
    );
    let one = ok(&h, Method::GET, &format!("{ACTS}/p/a"), &g, None).await;
    assert_eq!(one["namespace"], "guest/p");

    let msg = h
        .error(Method::DELETE, &format!("{PKGS}/p"), Some(&g), None, 409)
        .await;
    assert_eq!(
        msg,
        "Package not empty (contains 2 entities). Set force param or delete package contents."
    );
    ok(&h, Method::DELETE, &format!("{ACTS}/p/feed"), &g, None).await;
    let msg = h
        .error(Method::DELETE, &format!("{PKGS}/p"), Some(&g), None, 409)
        .await;
    assert!(msg.contains("(contains 1 entity)"), "{msg}");
    ok(
        &h,
        Method::DELETE,
        &format!("{PKGS}/p?force=true"),
        &g,
        None,
    )
    .await;
    h.error(Method::GET, &format!("{ACTS}/p/a"), Some(&g), None, 404)
        .await;
    h.error(Method::GET, &format!("{PKGS}/p"), Some(&g), None, 404)
        .await;
    assert_eq!(ok(&h, Method::GET, ACTS, &g, None).await, json!([]));
}

#[tokio::test]
async fn bindings_merge_parameters_in_order() {
    let h = Harness::start().await;
    let g = guest();
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/base"),
        &g,
        Some(json!({"parameters": [
            {"key": "from_pkg", "value": "pkg"}, {"key": "x", "value": "pkg"},
            {"key": "y", "value": "pkg"}, {"key": "z", "value": "pkg"}]})),
    )
    .await;
    let (s, v) = put_action(
        &h,
        &g,
        "_",
        "base/show",
        json!([{"key": "z", "value": "action"}, {"key": "w", "value": "action"}]),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Binding errors.
    let msg = put_fails(
        &h,
        &g,
        "b0",
        json!({"binding": {"namespace": "_", "name": "missing"}}),
        400,
    )
    .await;
    assert_eq!(msg, "Binding references a package that does not exist.");
    let b = ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/b"),
        &g,
        Some(json!({"binding": {"namespace": "_", "name": "base"},
                    "parameters": [{"key": "x", "value": "binding"}, {"key": "y", "value": "binding"}]})),
    )
    .await;
    assert_eq!(b["binding"], json!({"namespace": "guest", "name": "base"}));
    assert_eq!(
        b["annotations"],
        json!([{"key": "binding", "value": {"namespace": "guest", "name": "base"}}])
    );
    let msg = put_fails(
        &h,
        &g,
        "bb",
        json!({"binding": {"namespace": "guest", "name": "b"}}),
        400,
    )
    .await;
    assert_eq!(msg, "Cannot bind to another package binding.");
    let msg = put_fails(
        &h,
        &g,
        "base?overwrite=true",
        json!({"binding": {"namespace": "guest", "name": "b"}}),
        409,
    )
    .await;
    assert_eq!(
        msg,
        "Resource is a package and cannot be converted into a binding."
    );
    // No action is written through a binding.
    let (s, v) = put_action(&h, &g, "_", "b/other", json!([])).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"], "Operation not permitted on package binding.");

    // The list shows the binding; GET of the binding shows the bound package's actions and
    // its parameters under the binding's.
    let list = ok(&h, Method::GET, PKGS, &g, None).await;
    let summary = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "b")
        .unwrap()
        .clone();
    assert_eq!(
        summary["binding"],
        json!({"namespace": "guest", "name": "base"})
    );
    let got = ok(&h, Method::GET, &format!("{PKGS}/b"), &g, None).await;
    assert_eq!(names(&got["actions"]), ["show"]);
    let params: Value = got["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        params,
        json!({"from_pkg": "pkg", "x": "binding", "y": "binding", "z": "pkg"})
    );
    assert_eq!(
        names(&ok(&h, Method::GET, &format!("{ACTS}/b/"), &g, None).await),
        ["show"]
    );

    // package → binding → action → invoke.
    let r = ok(
        &h,
        Method::POST,
        &format!("{ACTS}/b/show?blocking=true&result=true"),
        &g,
        Some(json!({"y": "invoke"})),
    )
    .await;
    assert_eq!(
        r,
        json!({"from_pkg": "pkg", "x": "binding", "y": "invoke", "z": "action", "w": "action"})
    );
    // The package's and the binding's new parameters reach the next invoke (the invoke path
    // caches packages; writes forget them).
    for (path, body) in [
        (
            format!("{PKGS}/base?overwrite=true"),
            json!({"parameters": [{"key": "from_pkg", "value": "pkg2"}, {"key": "x", "value": "pkg"},
                                  {"key": "y", "value": "pkg"}, {"key": "z", "value": "pkg"}]}),
        ),
        (
            format!("{PKGS}/b?overwrite=true"),
            json!({"parameters": [{"key": "x", "value": "binding2"}]}),
        ),
    ] {
        ok(&h, Method::PUT, &path, &g, Some(body)).await;
    }
    let r = ok(
        &h,
        Method::POST,
        &format!("{ACTS}/b/show?blocking=true&result=true"),
        &g,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        r,
        json!({"from_pkg": "pkg2", "x": "binding2", "y": "pkg", "z": "action", "w": "action"})
    );
    // Invoked in the package itself: no binding parameters.
    let r = ok(
        &h,
        Method::POST,
        &format!("{ACTS}/base/show?blocking=true"),
        &g,
        Some(json!({})),
    )
    .await;
    assert_eq!(r["response"]["result"]["x"], "pkg");
    let path = r["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "path")
        .unwrap()["value"]
        .clone();
    assert_eq!(path, "guest/base/show");
    // GET through the binding: the action where it lives, parameters merged.
    let a = ok(&h, Method::GET, &format!("{ACTS}/b/show"), &g, None).await;
    assert_eq!(a["namespace"], "guest/base");
    assert_eq!(a["parameters"].as_array().unwrap().len(), 5, "{a}");

    // A binding goes without force; its package stays.
    ok(&h, Method::DELETE, &format!("{PKGS}/b"), &g, None).await;
    ok(&h, Method::GET, &format!("{PKGS}/base"), &g, None).await;
}

#[tokio::test]
async fn final_parameters_resist_the_invoke() {
    let h = Harness::start().await;
    let g = guest();
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/f"),
        &g,
        Some(json!({"parameters": [{"key": "secret", "value": "pkg"}]})),
    )
    .await;
    let (s, v) = h
        .call(
            Method::PUT,
            &format!("{ACTS}/f/a"),
            Some(&g),
            Some(json!({"exec": {"kind": "python:3", "code": "x"},
                        "annotations": [{"key": "final", "value": true}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let msg = h
        .error(
            Method::POST,
            &format!("{ACTS}/f/a?blocking=true"),
            Some(&g),
            Some(json!({"secret": "mine"})),
            400,
        )
        .await;
    assert_eq!(
        msg,
        "Request defines parameters that are not allowed (e.g., reserved properties)."
    );
    let r = ok(
        &h,
        Method::POST,
        &format!("{ACTS}/f/a?blocking=true&result=true"),
        &g,
        Some(json!({"other": 1})),
    )
    .await;
    assert_eq!(r, json!({"secret": "pkg", "other": 1}));
}

#[tokio::test]
async fn other_namespaces_read_published_packages_and_never_write() {
    let h = Harness::start().await;
    let g = guest();
    let s = stranger(&h).await;
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/priv"),
        &g,
        Some(json!({})),
    )
    .await;
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/pub"),
        &g,
        Some(json!({"publish": true, "parameters": [{"key": "p", "value": 1}]})),
    )
    .await;
    for p in ["priv/a", "pub/a"] {
        let (st, v) = put_action(&h, &g, "_", p, json!([])).await;
        assert_eq!(st, 200, "{v}");
    }
    h.create_action(&g, "loose", json!([])).await;
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/mybinding"),
        &g,
        Some(json!({"binding": {"namespace": "guest", "name": "pub"}, "publish": true})),
    )
    .await;

    let gpk = "/api/v1/namespaces/guest/packages";
    let gac = "/api/v1/namespaces/guest/actions";
    // Reads: the published package only (a binding of another namespace never).
    let list = ok(&h, Method::GET, gpk, &s, None).await;
    assert_eq!(names(&list), ["pub"]);
    assert_eq!(
        ok(&h, Method::GET, &format!("{gpk}?count=true"), &s, None).await,
        json!({"packages": 1})
    );
    let got = ok(&h, Method::GET, &format!("{gpk}/pub"), &s, None).await;
    assert_eq!(names(&got["actions"]), ["a"]);
    ok(&h, Method::GET, &format!("{gac}/pub/a"), &s, None).await;
    for path in [
        format!("{gpk}/priv"),
        format!("{gpk}/missing"),
        format!("{gpk}/mybinding"),
        format!("{gac}/priv/a"),
        format!("{gac}/missing/a"),
        format!("{gac}/loose"),
        format!("{gac}/mybinding/a"),
        format!("{gac}/priv/"),
    ] {
        let msg = h.error(Method::GET, &path, Some(&s), None, 403).await;
        assert!(msg.contains("not authorized"), "{path}: {msg}");
    }
    // Invokes: through the published package, with its parameters.
    let r = ok(
        &h,
        Method::POST,
        &format!("{gac}/pub/a?blocking=true"),
        &s,
        Some(json!({"q": 2})),
    )
    .await;
    assert_eq!(r["response"]["result"], json!({"p": 1, "q": 2}));
    assert_eq!(r["namespace"], "stranger", "the record is the invoker's");
    for path in [format!("{gac}/priv/a"), format!("{gac}/loose")] {
        h.error(Method::POST, &path, Some(&s), Some(json!({})), 403)
            .await;
    }
    // A binding of its own to the published package works; to the private one it does not.
    ok(
        &h,
        Method::PUT,
        "/api/v1/namespaces/_/packages/mine",
        &s,
        Some(json!({"binding": {"namespace": "guest", "name": "pub"},
                    "parameters": [{"key": "p", "value": "mine"}]})),
    )
    .await;
    let r = ok(
        &h,
        Method::POST,
        "/api/v1/namespaces/_/actions/mine/a?blocking=true&result=true",
        &s,
        Some(json!({})),
    )
    .await;
    assert_eq!(r, json!({"p": "mine"}));
    for bound in ["priv", "mybinding", "missing"] {
        h.error(
            Method::PUT,
            "/api/v1/namespaces/_/packages/bad",
            Some(&s),
            Some(json!({"binding": {"namespace": "guest", "name": bound}})),
            403,
        )
        .await;
    }
    // Writes into another namespace's package: 403, and nothing changes.
    let code = json!({"exec": {"kind": "python:3", "code": "x"}});
    for (method, path, body) in [
        (Method::PUT, format!("{gac}/pub/evil"), Some(code.clone())),
        (
            Method::PUT,
            format!("{gac}/pub/a?overwrite=true"),
            Some(code),
        ),
        (Method::DELETE, format!("{gac}/pub/a"), None),
        (
            Method::PUT,
            format!("{gpk}/pub?overwrite=true"),
            Some(json!({})),
        ),
        (Method::DELETE, format!("{gpk}/pub?force=true"), None),
    ] {
        h.error(method, &path, Some(&s), body, 403).await;
    }
    let got = ok(&h, Method::GET, &format!("{PKGS}/pub"), &g, None).await;
    assert_eq!(names(&got["actions"]), ["a"]);
    assert_eq!(got["version"], "0.0.1");
    // Unpublished: gone for the stranger, its binding too.
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/pub?overwrite=true"),
        &g,
        Some(json!({"publish": false})),
    )
    .await;
    h.error(
        Method::POST,
        "/api/v1/namespaces/_/actions/mine/a",
        Some(&s),
        Some(json!({})),
        403,
    )
    .await;
    assert_eq!(ok(&h, Method::GET, gpk, &s, None).await, json!([]));
}

#[tokio::test]
async fn catalog_is_public_and_invocable() {
    let h = Harness::start().await;
    whisk_controller::catalog::install_catalog(h.store.as_ref())
        .await
        .unwrap();
    let g = guest();
    let sys = "/api/v1/namespaces/whisk.system";
    let list = ok(&h, Method::GET, &format!("{sys}/packages"), &g, None).await;
    assert_eq!(names(&list), ["alarms", "messaging", "utils"]);
    let utils = ok(&h, Method::GET, &format!("{sys}/packages/utils"), &g, None).await;
    assert_eq!(
        names(&utils["actions"]),
        [
            "cat",
            "date",
            "echo",
            "head",
            "hosturl",
            "namespace",
            "smash",
            "sort",
            "split"
        ]
    );
    assert_eq!(utils["publish"], true);
    let r = ok(
        &h,
        Method::POST,
        &format!("{sys}/actions/utils/echo?blocking=true"),
        &g,
        Some(json!({"payload": "hi"})),
    )
    .await;
    assert_eq!(r["response"]["result"], json!({"payload": "hi"}));
    let path = r["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "path")
        .unwrap()["value"]
        .clone();
    assert_eq!(path, "whisk.system/utils/echo");
    // Read-only for everyone else.
    h.error(
        Method::PUT,
        &format!("{sys}/actions/utils/echo?overwrite=true"),
        Some(&g),
        Some(json!({"exec": {"kind": "python:3", "code": "x"}})),
        403,
    )
    .await;
}

#[tokio::test]
async fn execute_only_sharing_invokes_and_binds_but_never_reads() {
    let config = whisk_controller::ControllerConfig {
        shared_packages_execute_only: true,
        ..Default::default()
    };
    let h = Harness::start_with(config, true).await;
    let g = guest();
    let s = stranger(&h).await;
    ok(
        &h,
        Method::PUT,
        &format!("{PKGS}/pub"),
        &g,
        Some(json!({"publish": true, "parameters": [{"key": "p", "value": 1}]})),
    )
    .await;
    let (st, v) = put_action(&h, &g, "_", "pub/a", json!([])).await;
    assert_eq!(st, 200, "{v}");

    // The owner reads as ever.
    ok(&h, Method::GET, &format!("{PKGS}/pub"), &g, None).await;
    ok(
        &h,
        Method::GET,
        "/api/v1/namespaces/_/actions/pub/a",
        &g,
        None,
    )
    .await;

    // Another namespace: no read of the package or its action, with upstream's messages.
    let gpk = "/api/v1/namespaces/guest/packages";
    let gac = "/api/v1/namespaces/guest/actions";
    let msg = h
        .error(Method::GET, &format!("{gpk}/pub"), Some(&s), None, 403)
        .await;
    assert_eq!(
        msg,
        "GET not permitted for 'guest/pub' since it's a shared package"
    );
    let msg = h
        .error(Method::GET, &format!("{gac}/pub/a"), Some(&s), None, 403)
        .await;
    assert_eq!(
        msg,
        "GET not permitted for 'guest/pub' since it's an action in a shared package"
    );
    // ... but it invokes it, and binds it (the binding is not readable either).
    let r = ok(
        &h,
        Method::POST,
        &format!("{gac}/pub/a?blocking=true&result=true"),
        &s,
        Some(json!({"q": 2})),
    )
    .await;
    assert_eq!(r, json!({"p": 1, "q": 2}));
    ok(
        &h,
        Method::PUT,
        "/api/v1/namespaces/_/packages/mine",
        &s,
        Some(json!({"binding": {"namespace": "guest", "name": "pub"}})),
    )
    .await;
    let msg = h
        .error(
            Method::GET,
            "/api/v1/namespaces/_/packages/mine",
            Some(&s),
            None,
            403,
        )
        .await;
    assert_eq!(
        msg,
        "GET not permitted since mine is a binding of a shared package"
    );
    let msg = h
        .error(
            Method::GET,
            "/api/v1/namespaces/_/actions/mine/a",
            Some(&s),
            None,
            403,
        )
        .await;
    assert!(
        msg.starts_with("GET not permitted for 'stranger/mine/a'."),
        "{msg}"
    );
    let r = ok(
        &h,
        Method::POST,
        "/api/v1/namespaces/_/actions/mine/a?blocking=true&result=true",
        &s,
        Some(json!({})),
    )
    .await;
    assert_eq!(r, json!({"p": 1}));
}
