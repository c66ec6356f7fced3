//! The Docker runtime end to end (needs a Docker daemon; `scripts/test.sh` installs and starts
//! one; every image used here — `whisk/python3action` and `whisk/nodejsaction` — is built once
//! by `deploy/images/build-actions.sh`, which locks): the seed's workflow —
//! `whisk action update --docker whisk/python3action fib ...`, four instances with
//! `-p instanceID myname0..3`, each reading all four container IPs from
//! `/addrMap/addrMap.txt` — ring / allreduce across containers, and the `openwhisk`
//! npm-client conformance suite with every action in a container; blackbox images off the
//! lists refused by the API (403) and, should one get past it, by the invoker.

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_workflow_and_collectives_in_containers() {
    ensure_action_images();
    let tmp = whisk_test_support::temp_dir();
    // The API lets `evil/*` through so that the invoker's own check can be seen.
    let settings = tmp.path().join("settings.toml");
    std::fs::write(
        &settings,
        "[controller]\nblackbox_images = [\"whisk/*\", \"evil/*\"]\n",
    )
    .unwrap();
    let server = Server::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &[
            "--runtime",
            "docker",
            "--config",
            settings.to_str().unwrap(),
        ],
    )
    .await;
    let api = Api::new(&server.url(""), GUEST_KEY);

    // Blackbox images: refused by the API unless listed...
    let r = api
        .req(reqwest::Method::PUT, "actions/other")
        .json(&json!({"exec": {"kind": "blackbox", "image": "yangzhou1997/python3action:mpi"}}))
        .send()
        .await
        .expect("PUT action");
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("is not allowed for blackbox actions"),
        "{body}"
    );
    assert!(body["code"].is_string(), "{body}");
    // ...and by the invoker (defence in depth) when an image got past the API.
    api.put_action(
        "evil",
        json!({"kind": "blackbox", "image": "evil/image"}),
        128,
    )
    .await;
    let (status, body) = api.invoke("evil", "blocking=true", json!({})).await;
    assert_eq!(status, 500, "a whisk error: {body}");
    assert_eq!(body["response"]["status"], "whisk internal error", "{body}");
    assert_eq!(
        body["response"]["result"]["error"],
        "Failed to start a container for the action: The image 'evil/image' is not allowed \
         for blackbox actions on this platform (allowed: whisk/*).",
        "{body}"
    );

    api.put_action("fib", json!({"kind": "blackbox", "image": "whisk/python3action", "code": include_str!("../../../functions/fib.py")}), 128).await;
    let (status, body) = api
        .invoke("fib", "blocking=true&result=true", json!({"number": 20}))
        .await;
    assert_eq!((status, &body), (200, &json!({"fibonacci": 6765})));

    api.put_action("seen", json!({"kind": "blackbox", "image": "whisk/python3action", "code": include_str!("../../../functions/peers_seen.py")}), 128).await;
    let mut ids = vec![];
    for i in 0..4 {
        let (status, body) = api
            .invoke(
                "seen",
                "blocking=false",
                json!({"instanceID": format!("myname{i}"), "n": 4, "timeout": 60}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["activationId"].as_str().unwrap().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        let r = api.result(id).await;
        assert_eq!(r["me"], format!("myname{i}"));
        let peers = r["peers"].as_object().unwrap();
        assert_eq!(
            peers.keys().collect::<Vec<_>>(),
            vec!["myname0", "myname1", "myname2", "myname3"],
            "{r}"
        );
        let ips: std::collections::BTreeSet<&str> =
            peers.values().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(ips.len(), 4, "four container IPs: {r}");
        assert!(
            ips.iter().all(|ip| !ip.starts_with("127.")),
            "container network addresses: {r}"
        );
    }

    api.put_action("ring", json!({"kind": "blackbox", "image": "whisk/python3action", "code": include_str!("../../../functions/ring.py")}), 128).await;
    api.put_action("allreduce", json!({"kind": "blackbox", "image": "whisk/python3action", "code": include_str!("../../../functions/allreduce.py")}), 128).await;
    for n in [2, 4] {
        api.check_ring_and_allreduce(n).await;
    }

    // The same npm-client conformance suite as the process runtime, every action in a
    // container (Python and the client's default kind, Node.js).
    run_conformance(&server.url(""), &server.data_dir, &[]).await;
}
