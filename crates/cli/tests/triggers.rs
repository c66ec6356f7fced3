//! Triggers and rules end to end with the real `whisk standalone` (its invoker and Python
//! runtime) and the `whisk` binary, as wsk users type them: `trigger create|update|get|fire|
//! list|delete`, `rule create|status|get --summary|list|disable|enable|update|delete
//! --disable`, what each prints, a fire that runs the rule's action with the trigger's
//! parameters and the payload, and the errors (exit codes and messages) of missing entities.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;
use support::{failed as fails, succeeded as ok};

/// The JSON after wsk's `ok: ...` line.
fn json_after_ok(out: &str) -> Value {
    let body = out.split_once('\n').map_or(out, |(_, rest)| rest);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The activation id at the end of `ok: triggered /_/t with id ID`.
fn fired_id(out: &str) -> String {
    let line = out.trim_end();
    assert!(line.starts_with("ok: triggered /_/t with id"), "{out}");
    line.split(' ').nth(5).unwrap_or("").to_string()
}

#[tokio::test]
async fn triggers_and_rules_with_the_cli() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let api = Api::new(&host, GUEST_KEY);
    let w = |args: &[&str]| whisk_as_guest(dir, &host, args);
    let hello = dir.join("hello.py");
    std::fs::write(&hello, "def main(a):\n    return a\n").unwrap();
    let hello = hello.display().to_string();
    ok(&w(&["action", "create", "hello", &hello]));
    ok(&w(&["action", "create", "other", &hello]));

    // Triggers.
    assert_eq!(
        ok(&w(&["trigger", "create", "t", "-p", "p", "1"])),
        "ok: created trigger t\n"
    );
    let err = fails(&w(&["trigger", "create", "t"]), 409 - 256);
    assert!(
        err.contains("Unable to create trigger 't': resource already exists"),
        "{err}"
    );
    assert_eq!(
        ok(&w(&[
            "trigger",
            "update",
            "t",
            "-p",
            "p",
            "2",
            "-a",
            "description",
            "a trigger"
        ])),
        "ok: updated trigger t\n"
    );
    let out = ok(&w(&["trigger", "get", "t"]));
    assert!(out.starts_with("ok: got trigger t\n"), "{out}");
    let t = json_after_ok(&out);
    assert_eq!(t["version"], "0.0.2");
    assert_eq!(t["parameters"][0]["value"], 2);
    assert_eq!(t["limits"], serde_json::json!({}));
    assert_eq!(
        ok(&w(&["trigger", "get", "t", "--summary"])),
        "trigger /guest/t: a trigger\n   (parameters: *p)\n"
    );
    assert_eq!(
        ok(&w(&["trigger", "get", "t", "version"])),
        "ok: got trigger t, displaying field version\n\"0.0.2\"\n"
    );
    // No rule yet: wsk's line with an empty id.
    assert_eq!(fired_id(&ok(&w(&["trigger", "fire", "t"]))), "");

    // Rules.
    assert_eq!(
        ok(&w(&["rule", "create", "r", "t", "hello"])),
        "ok: created rule r\n"
    );
    assert_eq!(ok(&w(&["rule", "status", "r"])), "ok: rule r is active\n");
    assert_eq!(
        ok(&w(&["rule", "get", "r", "--summary"])),
        "rule /guest/r\n   (status: active)\n"
    );
    let r = json_after_ok(&ok(&w(&["rule", "get", "r"])));
    assert_eq!(r["trigger"]["name"], "t");
    assert_eq!(r["action"]["name"], "hello");
    assert_eq!(
        ok(&w(&["rule", "list"])),
        format!("rules\n{:<70} {:<20} active\n", "/guest/r", "private")
    );

    // A fire runs the rule's action with the trigger's parameters under the payload.
    let id = fired_id(&ok(&w(&["trigger", "fire", "t", "-p", "x", "5"])));
    assert_eq!(id.len(), 32, "{id}");
    let record = api.record(&id, Duration::from_secs(30)).await;
    assert_eq!(record["name"], "t");
    assert_eq!(record["response"]["result"], serde_json::json!({"x": 5}));
    let line: Value = serde_json::from_str(record["logs"][0].as_str().unwrap()).unwrap();
    assert_eq!(line["rule"], "guest/r");
    let ran = line["activationId"].as_str().unwrap();
    let result = api.result(ran).await;
    assert_eq!(
        (result["p"].clone(), result["x"].clone()),
        (2.into(), 5.into())
    );
    let got = ok(&w(&["activation", "get", &id]));
    assert!(
        got.starts_with(&format!("ok: got activation {id}")),
        "{got}"
    );

    // Disabled, the rule does nothing; enabled again, and moved to another action.
    assert_eq!(ok(&w(&["rule", "disable", "r"])), "ok: disabled rule r\n");
    assert_eq!(ok(&w(&["rule", "status", "r"])), "ok: rule r is inactive\n");
    assert_eq!(fired_id(&ok(&w(&["trigger", "fire", "t"]))), "");
    assert_eq!(ok(&w(&["rule", "enable", "r"])), "ok: enabled rule r\n");
    assert_eq!(
        ok(&w(&["rule", "update", "r", "t", "other"])),
        "ok: updated rule r\n"
    );
    let r = json_after_ok(&ok(&w(&["rule", "get", "r"])));
    assert_eq!(
        (r["action"]["name"].as_str(), r["status"].as_str()),
        (Some("other"), Some("active"))
    );
    assert_eq!(
        ok(&w(&["rule", "delete", "r", "--disable"])),
        "ok: disabled rule r\nok: deleted rule r\n"
    );
    let err = fails(&w(&["rule", "get", "r"]), 404 - 256);
    assert!(
        err.contains("Unable to get rule 'r': The requested resource does not exist."),
        "{err}"
    );
    let err = fails(&w(&["rule", "create", "x", "nope", "hello"]), 400 - 256);
    assert!(err.contains("trigger /guest/nope does not exist"), "{err}");

    assert_eq!(
        ok(&w(&["trigger", "list"])),
        format!("triggers\n{:<70} private\n", "/guest/t")
    );
    assert_eq!(
        ok(&w(&["trigger", "delete", "t"])),
        "ok: deleted trigger t\n"
    );
    let err = fails(&w(&["trigger", "fire", "t"]), 404 - 256);
    assert!(
        err.contains("Unable to fire trigger 't': The requested resource does not exist."),
        "{err}"
    );
    assert_eq!(ok(&w(&["trigger", "list"])), "triggers\n");
    drop(server);
}
