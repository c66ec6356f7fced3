//! Packages end to end with the real `whisk standalone` (its invoker, the Node.js and Python
//! runtimes, the `/whisk.system` catalog it installs) and the `whisk` binary, as wsk users type
//! them: `package create|update|bind|get [--summary]|list|delete`, `whisk list` and `namespace
//! get`, invoking catalog actions directly and through a binding (parameters merged, the
//! record's `binding` and `path` annotations), and the errors (exit codes and messages).

mod support;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;
use support::*;

/// The `whisk` binary as the guest against one server, with a private wskprops file.
struct Cli {
    dir: PathBuf,
    apihost: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(whisk_bin())
            .args(args)
            .env("WSK_CONFIG_FILE", self.dir.join("wskprops"))
            .env("HOME", &self.dir)
            .env("WHISK_APIHOST", &self.apihost)
            .env("WHISK_AUTH", GUEST_KEY)
            .env_remove("WHISK_NAMESPACE")
            .env_remove("RUST_LOG")
            .output()
            .expect("run whisk")
    }

    /// Stdout of a command that must succeed.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "whisk {args:?} failed: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    /// Stderr of a command that must fail with exit `code`.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "whisk {args:?}: {err}");
        err
    }

    /// The JSON a command printed (after its `ok:` line, if any).
    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        let body = if out.starts_with("ok:") {
            out.split_once('\n').map_or("", |(_, rest)| rest)
        } else {
            &out
        };
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

fn annotation(record: &Value, key: &str) -> Value {
    record["annotations"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .map(|kv| kv["value"].clone())
        .unwrap_or(Value::Null)
}

fn row(name: &str, scope: &str) -> String {
    format!("{name:<70} {scope}")
}

fn write(dir: &Path, name: &str, code: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, code).unwrap();
    f.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_with_the_cli() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), dir).await;
    let w = Cli {
        dir: dir.to_path_buf(),
        apihost: server.url(""),
    };

    // The catalog every platform starts with.
    let list = w.ok(&["package", "list", "/whisk.system"]);
    for p in ["alarms", "messaging", "utils"] {
        assert!(
            list.contains(&row(&format!("/whisk.system/{p}"), "shared")),
            "{list}"
        );
    }
    let summary = w.ok(&["package", "get", "/whisk.system/utils", "--summary"]);
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines[0],
        "package /whisk.system/utils: Building blocks that format and assemble data"
    );
    assert!(
        summary.contains(
            " action /whisk.system/utils/echo: Returns the input\n   (parameters: payload)\n"
        ),
        "{summary}"
    );
    let r = w.json(&[
        "action",
        "invoke",
        "/whisk.system/utils/echo",
        "-p",
        "payload",
        "hi",
        "-r",
    ]);
    assert_eq!(r, json!({"payload": "hi"}));
    let r = w.json(&[
        "action",
        "invoke",
        "/whisk.system/utils/sort",
        "-P",
        &write(dir, "lines.json", r#"{"lines": ["b", "c", "a"]}"#),
        "-r",
    ]);
    assert_eq!(r, json!({"lines": ["a", "b", "c"], "length": 3}));
    // smash, and the two that read the caller's namespace and the API host (as upstream's).
    let r = w.json(&[
        "action",
        "invoke",
        "/whisk.system/utils/smash",
        "-P",
        &write(
            dir,
            "smash.json",
            r#"{"a": 1, "b": {"c": 2}, "$fieldName": "p"}"#,
        ),
        "-r",
    ]);
    assert_eq!(r, json!({"p": {"a": 1, "b": {"c": 2}}}));
    let r = w.json(&["action", "invoke", "/whisk.system/utils/namespace", "-r"]);
    assert_eq!(r, json!({"namespace": "guest"}));
    let r = w.json(&[
        "action",
        "invoke",
        "/whisk.system/utils/hosturl",
        "-p",
        "web",
        "true",
        "-p",
        "path",
        "hello",
        "-p",
        "ext",
        ".json",
        "-r",
    ]);
    let url = r["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with("http") && url.ends_with("/api/v1/web/guest/default/hello.json"),
        "{r}"
    );

    // A package of our own, an action in it, a binding with its own parameters.
    assert_eq!(
        w.ok(&["package", "create", "p", "-p", "a", "pkg", "-p", "b", "pkg"]),
        "ok: created package p\n"
    );
    let err = w.fails(&["package", "create", "p"], 409 - 256);
    assert!(
        err.contains("Unable to create package 'p': resource already exists"),
        "{err}"
    );
    assert_eq!(
        w.ok(&["package", "update", "p", "--shared", "yes", "-p", "a", "pkg", "-p", "b", "pkg"]),
        "ok: updated package p\n"
    );
    let err = w.fails(&["package", "update", "p", "--shared", "maybe"], 1);
    assert!(
        err.contains("Cannot use value 'maybe' for shared."),
        "{err}"
    );
    let show = write(dir, "show.py", "def main(a):\n    return a\n");
    w.ok(&["action", "create", "p/show", &show, "-p", "c", "action"]);
    assert_eq!(
        w.ok(&["package", "bind", "p", "b", "-p", "b", "binding"]),
        "ok: created binding b\n"
    );
    let err = w.fails(&["package", "bind", "nope", "b2"], 400 - 256);
    assert!(
        err.contains("Binding creation failed: Binding references a package that does not exist."),
        "{err}"
    );
    let got = w.json(&["package", "get", "p"]);
    assert_eq!(got["publish"], true);
    assert_eq!(got["version"], "0.0.2");
    assert_eq!(got["actions"][0]["name"], "show");
    let got = w.json(&["package", "get", "b", "binding"]);
    assert_eq!(got, json!({"namespace": "guest", "name": "p"}));
    assert_eq!(
        w.ok(&["package", "get", "b", "--summary"]).lines().next(),
        Some("package /guest/b: Returns a result based on parameters a and b")
    );

    // Through the binding: package → binding → action → invoke; the record names both.
    let record = w.json(&["action", "invoke", "b/show", "-b", "-p", "d", "invoke"]);
    assert_eq!(
        record["response"]["result"],
        json!({"a": "pkg", "b": "binding", "c": "action", "d": "invoke"})
    );
    assert_eq!(annotation(&record, "binding"), "guest/b");
    assert_eq!(annotation(&record, "path"), "guest/p/show");
    let direct = w.json(&["action", "invoke", "p/show", "-b"]);
    assert_eq!(direct["response"]["result"]["b"], "pkg");
    assert_eq!(annotation(&direct, "binding"), Value::Null);
    // A binding of the catalog.
    w.ok(&[
        "package",
        "bind",
        "/whisk.system/utils",
        "myutils",
        "-p",
        "payload",
        "bound",
    ]);
    let r = w.json(&["action", "invoke", "myutils/echo", "-r"]);
    assert_eq!(r, json!({"payload": "bound"}));

    // Lists.
    let utils = w.ok(&["action", "list", "/whisk.system/utils", "--name-sort"]);
    assert_eq!(utils.lines().count(), 10, "{utils}");
    assert!(
        utils.contains(&format!("{:<70} shared nodejs:", "/whisk.system/utils/cat")),
        "{utils}"
    );
    for pkg in ["p", "b"] {
        let list = w.ok(&["action", "list", pkg]);
        assert_eq!(
            list,
            format!("actions\n{:<70} private python:3\n", "/guest/p/show"),
            "action list {pkg}"
        );
    }
    let list = w.ok(&["package", "list"]);
    assert_eq!(list.lines().next(), Some("packages"));
    assert!(list.contains(&row("/guest/p", "shared")), "{list}");
    assert!(list.contains(&row("/guest/b", "private")), "{list}");
    let all = w.ok(&["list", "--name-sort"]);
    let expected_head = format!(
        "Entities in namespace: default\npackages\n{}\n{}\n{}\nactions\n",
        row("/guest/b", "private"),
        row("/guest/myutils", "private"),
        row("/guest/p", "shared"),
    );
    assert!(all.starts_with(&expected_head), "{all}");
    assert!(all.contains("/guest/p/show"), "{all}");
    assert!(all.ends_with("triggers\nrules\n"), "{all}");
    assert_eq!(w.ok(&["namespace", "get", "-n"]), all);

    // Deletes: a package with actions only once they are gone.
    let err = w.fails(&["package", "delete", "p"], 409 - 256);
    assert!(
        err.contains(
            "Unable to delete package 'p': Package not empty (contains 1 entity). Set force param or delete package contents."
        ),
        "{err}"
    );
    w.ok(&["action", "delete", "p/show"]);
    for name in ["b", "myutils", "p"] {
        assert_eq!(
            w.ok(&["package", "delete", name]),
            format!("ok: deleted package {name}\n")
        );
    }
    let err = w.fails(&["package", "get", "p"], 404 - 256);
    assert!(
        err.contains("Unable to get package 'p': The requested resource does not exist."),
        "{err}"
    );
    // The catalog is read-only for the guest.
    let err = w.fails(&["package", "delete", "/whisk.system/utils"], 403 - 256);
    assert!(err.contains("not authorized"), "{err}");
    assert_eq!(w.ok(&["package", "list"]), "packages\n");
}
