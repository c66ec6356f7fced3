//! Blackbox images from the platform's list only: creating or updating an action that names
//! any other image is 403 with OpenWhisk's error body, and nothing is stored.

mod common;

use common::{guest, Harness};
use reqwest::Method;
use serde_json::json;
use whisk_controller::ControllerConfig;

async fn put(h: &Harness, name: &str, image: &str, overwrite: bool) -> (u16, serde_json::Value) {
    h.call(
        Method::PUT,
        &format!("/api/v1/namespaces/_/actions/{name}?overwrite={overwrite}"),
        Some(&guest()),
        Some(
            json!({"exec": {"kind": "blackbox", "image": image, "code": "def main(a): return a"}}),
        ),
    )
    .await
}

#[tokio::test]
async fn only_listed_images_may_be_blackbox_actions() {
    let h = Harness::start().await;
    // The project's own images are on the default list.
    let (s, v) = put(&h, "ok", "whisk/python3action", false).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["exec"]["image"], "whisk/python3action");

    for image in [
        "yangzhou1997/python3action:mpi",
        "evil/whisk/python3action",
        "docker.io/whisk/python3action",
    ] {
        let (s, v) = put(&h, "bad", image, false).await;
        assert_eq!(s, 403, "{image}: {v}");
        assert_eq!(
            v["error"],
            format!(
                "The image '{image}' is not allowed for blackbox actions on this platform (allowed: whisk/*)."
            )
        );
        assert!(v["code"].is_string(), "{v}");
    }
    let (s, _) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/actions/bad",
            Some(&guest()),
            None,
        )
        .await;
    assert_eq!(s, 404, "nothing stored");

    // An update cannot switch an allowed action to another image either.
    let (s, v) = put(&h, "ok", "attacker/image:latest", true).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/actions/ok",
            Some(&guest()),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["exec"]["image"], "whisk/python3action", "unchanged");
}

#[tokio::test]
async fn the_list_is_configurable() {
    let config = ControllerConfig {
        blackbox_images: vec!["openwhisk/action-*:nightly".into(), "me/exact".into()],
        ..ControllerConfig::default()
    };
    let h = Harness::start_with(config, true).await;
    assert_eq!(
        put(&h, "a", "openwhisk/action-python-v3.11:nightly", false)
            .await
            .0,
        200
    );
    assert_eq!(put(&h, "b", "me/exact", false).await.0, 200);
    assert_eq!(put(&h, "c", "me/exact:latest", false).await.0, 403);
    let (s, v) = put(&h, "d", "whisk/python3action", false).await;
    assert_eq!(s, 403, "not on this list: {v}");
    assert_eq!(
        v["error"],
        "The image 'whisk/python3action' is not allowed for blackbox actions on this platform (allowed: openwhisk/action-*:nightly, me/exact)."
    );
    // Code actions need no image and are not affected.
    let (s, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/code",
            Some(&guest()),
            Some(json!({"exec": {"kind": "python:3", "code": "def main(a): return a"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}
