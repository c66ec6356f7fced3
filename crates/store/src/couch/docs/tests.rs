use super::*;
use crate::testsuite::activation;

#[test]
fn ids_never_start_with_an_underscore_and_stay_distinct() {
    assert_eq!(doc_id("guest/x"), "guest/x");
    assert_eq!(doc_id("_design/x"), "%_design/x");
    assert_eq!(doc_id("%_design/x"), "%%_design/x");
    assert_eq!(doc_id(""), "%");
    assert_eq!(doc_id("%"), "%%");
    let raws = ["", "%", "%%", "_", "%_", "a", "_a", "%a"];
    let ids: std::collections::HashSet<String> = raws.iter().map(|r| doc_id(r)).collect();
    assert_eq!(ids.len(), raws.len(), "escaping is injective");
    assert!(ids.iter().all(|id| !id.starts_with('_') && !id.is_empty()));

    assert_eq!(
        entity_id(EntityKind::Action, "guest/pkg/hello"),
        "actions/guest/pkg/hello"
    );
    assert_ne!(
        entity_id(EntityKind::Action, "guest/x"),
        entity_id(EntityKind::Trigger, "guest/x")
    );
    assert_eq!(activation_id("guest", "abc"), "guest/abc");
    assert_eq!(identity_id("_x"), "%_x");
}

#[test]
fn paths_encode_every_special_byte() {
    assert_eq!(doc_path("db", "a-b_c~9"), "/db/a-b_c~9");
    assert_eq!(
        doc_path("db", "actions/ns/we ird+\u{e9}/..%2F?#"),
        "/db/actions%2Fns%2Fwe%20ird%2B%C3%A9%2F%2E%2E%252F%3F%23"
    );
}

#[test]
fn entity_envelopes_round_trip_any_document() {
    let doc = json!({"name": "hello", "updated": 42, "_id": "not mine", "_rev": "9-x", "x": [1]});
    let env = entity_envelope(EntityKind::Rule, "guest/pkg/hello", &doc, Some("3-abc"));
    assert_eq!(env["_id"], "rules/guest/pkg/hello");
    assert_eq!(env["_rev"], "3-abc");
    assert_eq!(env["root"], "guest");
    assert_eq!(env["kind"], "rules");
    assert_eq!(env["updated"], 42);
    assert_eq!(env["name"], "hello");
    let (rev, back) = entity_from_envelope(env).unwrap();
    assert_eq!((rev.as_str(), back), ("3-abc", doc));

    // Missing name/updated fall back to the key's last segment and 0.
    let env = entity_envelope(EntityKind::Action, "ns/a/b", &json!({}), None);
    assert_eq!(
        (env["name"].clone(), env["updated"].clone()),
        (json!("b"), json!(0))
    );
    assert!(env.get("_rev").is_none());
    assert!(matches!(
        entity_from_envelope(env),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn name_keys_mirror_the_query_filter() {
    let plain = activation("ns", "ns/fib", 1);
    assert_eq!(name_keys(&plain), ["fib"]);
    let packaged = activation("ns", "ns/pkg/fib", 1);
    assert_eq!(name_keys(&packaged), ["fib", "pkg/fib"]);
    let leading = activation("ns", "/ns/pkg/fib", 1);
    assert_eq!(name_keys(&leading), ["fib", "ns/pkg/fib", "pkg/fib"]);

    // Every key matches, and every other plausible filter is decided the same way.
    for a in [&plain, &packaged, &leading] {
        let keys = name_keys(a);
        for name in [
            "fib",
            "pkg/fib",
            "ns/pkg/fib",
            "ns/fib",
            "ib",
            "kg/fib",
            "/fib",
            "x",
        ] {
            let q = ActivationQuery {
                name: Some(name.into()),
                ..Default::default()
            };
            assert_eq!(
                keys.iter().any(|k| k == name),
                q.matches(a),
                "{name} on {:?}",
                a.path()
            );
        }
    }
}

#[test]
fn activation_documents_round_trip() {
    let a = activation("ns", "ns/pkg/fib", 7);
    let doc = activation_doc(&a).unwrap();
    assert_eq!(doc["_id"], format!("ns/{}", a.activation_id.as_str()));
    assert_eq!(doc["entityType"], "activation");
    assert_eq!(doc["nameKeys"], json!(["fib", "pkg/fib"]));
    let mut stored = doc.clone();
    stored["_rev"] = json!("1-x");
    assert_eq!(activation_from_doc(stored).unwrap(), a);
    assert!(matches!(
        activation_from_doc(json!({"x": 1})),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn identity_documents_round_trip() {
    let i = Identity::generate("alice", "guest");
    let doc = identity_doc(&i, Some("2-y")).unwrap();
    assert_eq!(doc["_id"], i.uuid.as_str());
    assert_eq!(doc["_rev"], "2-y");
    assert_eq!(identity_from_doc(doc).unwrap(), i);
}

fn q(v: &QueryParams<Value>) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn entity_queries_cover_exactly_one_namespace() {
    let list = q(&entity_query(EntityKind::Action, "guest", Some((2, 5))));
    assert_eq!(
        list,
        json!({"start_key": ["actions", "guest"], "end_key": ["actions", "guest", {}],
               "reduce": false, "include_docs": true, "limit": 5, "skip": 2})
    );
    let count = q(&entity_query(EntityKind::Package, "guest", None));
    assert_eq!(
        count,
        json!({"start_key": ["packages", "guest"], "end_key": ["packages", "guest", {}], "reduce": true})
    );
}

#[test]
fn activation_queries_run_newest_first_between_inclusive_bounds() {
    let all = ActivationQuery::default();
    let (view, params) = activation_query("ns", &all, Some((0, 10))).unwrap();
    assert_eq!(view, ACTIVATIONS_VIEW);
    assert_eq!(
        q(&params),
        json!({"descending": true, "start_key": ["ns", {}], "end_key": ["ns"],
               "reduce": false, "include_docs": true, "limit": 10})
    );

    let named = ActivationQuery {
        name: Some("pkg/fib".into()),
        since: Some(10),
        upto: Some(30),
        ..Default::default()
    };
    let (view, params) = activation_query("ns", &named, None).unwrap();
    assert_eq!(view, ACTIVATIONS_BY_NAME_VIEW);
    assert_eq!(
        q(&params),
        json!({"descending": true, "start_key": ["ns", "pkg/fib", 30],
               "end_key": ["ns", "pkg/fib", 10], "reduce": true})
    );

    let since_only = ActivationQuery {
        since: Some(5),
        ..Default::default()
    };
    let (_, params) = activation_query("ns", &since_only, None).unwrap();
    assert_eq!(q(&params)["start_key"], json!(["ns", {}]));
    assert_eq!(q(&params)["end_key"], json!(["ns", 5]));

    let inverted = ActivationQuery {
        since: Some(30),
        upto: Some(10),
        ..Default::default()
    };
    assert!(activation_query("ns", &inverted, None).is_none());
}
