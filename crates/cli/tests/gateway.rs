//! The gateway in front of a real platform: certificates from `whisk certs`, `whisk gateway`
//! terminating TLS, and the `openwhisk` npm-client conformance suite through it over HTTPS,
//! trusting the generated CA.

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;
use whisk_test_support::run_ok;

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_client_through_the_gateway_over_https() {
    let tmp = whisk_test_support::temp_dir();
    let certs = tmp.path().join("certs");
    run_ok(
        Command::new(whisk_bin())
            .args(["certs", "--out"])
            .arg(&certs)
            .args(["127.0.0.1", "localhost"]),
        "whisk certs",
    );
    let ca = certs.join("ca.crt");
    assert!(ca.exists() && certs.join("domain.crt").exists() && certs.join("domain.key").exists());

    let server = Server::start(&tmp.path().join("data"), tmp.path()).await;
    let port = free_port();
    let https = format!("127.0.0.1:{port}");
    let backend = server.url("");
    let cert = certs.join("domain.crt").display().to_string();
    let key = certs.join("domain.key").display().to_string();
    let args = [
        "gateway",
        "--http",
        "off",
        "--https",
        &https,
        "--backend",
        &backend,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let _gateway = spawn_whisk(tmp.path(), "gateway", &args, &[]);

    let pem = std::fs::read(&ca).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let apihost = format!("https://127.0.0.1:{port}");
    let url = format!("{apihost}/api/v1");
    eventually(
        "the gateway over HTTPS",
        Duration::from_secs(30),
        || async {
            let r = http.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    let ca = ca.display().to_string();
    run_conformance(&apihost, &server.data_dir, &[("NODE_EXTRA_CA_CERTS", &ca)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_fronts_itself_with_the_gateway() {
    let tmp = whisk_test_support::temp_dir();
    let port = free_port();
    let server = Server::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &["--tls", &format!("127.0.0.1:{port}")],
    )
    .await;
    let ca = std::fs::read(server.data_dir.join("certs/ca.crt"))
        .expect("the CA issued into <data-dir>/certs");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let (u, k) = GUEST_KEY.split_once(':').unwrap();
    let url = format!("https://127.0.0.1:{port}/api/v1/namespaces");
    let r = eventually("an answer over HTTPS", Duration::from_secs(30), || async {
        http.get(&url).basic_auth(u, Some(k)).send().await.ok()
    })
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!(["guest"])
    );
}
