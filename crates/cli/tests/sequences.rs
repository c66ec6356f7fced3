//! Sequences and conductor actions end to end with the real `whisk standalone` (its invoker
//! and Python runtime) and the `whisk` binary: `action create NAME a,b --sequence` as wsk,
//! the kind in `action get`/`list`, a blocking invoke through both Python actions, the
//! components' records (`cause`, `causedBy`), a failing component, and a conductor that loops
//! until the platform stops it.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;

/// The JSON after wsk's `ok: ...` line.
fn json_after_ok(out: &str) -> Value {
    let body = out.split_once('\n').map_or(out, |(_, rest)| rest);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v["annotations"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

#[tokio::test]
async fn sequences_and_conductors_with_the_cli() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), dir).await;
    let host = server.url("");
    let api = Api::new(&host, GUEST_KEY);
    let file = |name: &str, code: &str| {
        let p = dir.join(name);
        std::fs::write(&p, code).unwrap();
        p.display().to_string()
    };
    let double = file(
        "double.py",
        "def main(a):\n    return {'n': a.get('n', 0) * 2}\n",
    );
    let inc = file(
        "inc.py",
        "def main(a):\n    return {'n': a.get('n', 0) + 1}\n",
    );
    let fail = file("fail.py", "def main(a):\n    return {'error': 'no luck'}\n");
    // Calls `inc` until the platform refuses; then answers what it was told.
    let looping = file(
        "loop.py",
        "def main(a):\n    if 'error' in a:\n        return {'params': {'stopped': a['error']}}\n    return {'action': 'inc', 'params': a}\n",
    );
    let twice = file(
        "twice.py",
        "def main(a):\n    step = a.pop('$step', 0)\n    if step < 2:\n        return {'action': 'double', 'params': a, 'state': {'$step': step + 1}}\n    return {'params': a}\n",
    );
    for (name, path) in [("double", &double), ("inc", &inc), ("fail", &fail)] {
        succeeded(&whisk_as_guest(
            dir,
            &host,
            &["action", "create", name, path],
        ));
    }

    // `--sequence` as wsk: the artifact is the list of actions.
    let out = succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "create", "calc", "--sequence", "double,inc"],
    ));
    assert_eq!(out.trim(), "ok: created action calc");
    let got = json_after_ok(&succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "get", "calc"],
    )));
    assert_eq!(got["exec"]["kind"], "sequence", "{got}");
    assert_eq!(
        got["exec"]["components"],
        json!(["/guest/double", "/guest/inc"])
    );
    let list = succeeded(&whisk_as_guest(dir, &host, &["action", "list"]));
    let line = list
        .lines()
        .find(|l| l.starts_with("/guest/calc "))
        .expect(&list);
    assert!(line.ends_with(" sequence"), "{list}");

    let (status, v) = api.invoke("calc", "blocking=true", json!({"n": 5})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["result"], json!({"n": 11}));
    let ids: Vec<String> = serde_json::from_value(v["logs"].clone()).unwrap();
    assert_eq!(ids.len(), 2);
    let first = api.record(&ids[0], Duration::from_secs(30)).await;
    assert_eq!(first["name"], "double");
    assert_eq!(first["cause"], v["activationId"]);
    assert_eq!(annotation(&first, "causedBy"), Some(&json!("sequence")));
    assert_eq!(annotation(&v, "limits").unwrap()["memory"], 256, "{v}");

    // A failing component ends the sequence with its error.
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &["action", "update", "calc", "double,fail,inc", "--sequence"],
    ));
    let (status, v) = api.invoke("calc", "blocking=true", json!({"n": 1})).await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["response"]["result"], json!({"error": "no luck"}));
    assert_eq!(v["logs"].as_array().unwrap().len(), 2);

    // A conductor: double twice, through its state.
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &[
            "action",
            "create",
            "twice",
            &twice,
            "-a",
            "conductor",
            "true",
        ],
    ));
    let (status, v) = api
        .invoke("twice", "blocking=true&result=true", json!({"n": 3}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"n": 12}));

    // A conductor that never stops on its own: the platform ends it at its limits.
    succeeded(&whisk_as_guest(
        dir,
        &host,
        &[
            "action",
            "create",
            "loop",
            &looping,
            "-a",
            "conductor",
            "true",
        ],
    ));
    let (status, v) = api.invoke("loop", "blocking=true", json!({"n": 0})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["response"]["result"],
        json!({"stopped": "Too many actions in the composition."})
    );
    assert_eq!(v["logs"].as_array().unwrap().len(), 2 * 50 + 2);
    let (status, _) = api.invoke("inc", "blocking=true", json!({})).await;
    assert_eq!(status, 200, "the platform keeps serving");
}
