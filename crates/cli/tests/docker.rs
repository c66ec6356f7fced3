//! The Docker runtime end to end (needs a Docker daemon; `scripts/test.sh` installs and starts
//! one, and the image comes from `deploy/images/build.sh`): the seed's workflow —
//! `whisk action update --docker whisk/python3action fib ...`, four instances with
//! `-p instanceID myname0..3`, each reading all four container IPs from
//! `/addrMap/addrMap.txt` — ring / allreduce across containers, and the `openwhisk`
//! npm-client conformance suite with every action in a container.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::Command;
use support::*;

fn ensure_image() {
    let info = Command::new("docker").arg("info").output();
    assert!(
        matches!(&info, Ok(o) if o.status.success()),
        "the Docker tests need a running Docker daemon (scripts/test.sh installs and starts one): {info:?}"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/images/build.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("running deploy/images/build.sh");
    assert!(
        out.status.success(),
        "building the image failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_workflow_and_collectives_in_containers() {
    ensure_image();
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &["--runtime", "docker"],
    )
    .await;
    let api = Api::new(&server.url(""), GUEST_KEY);

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
