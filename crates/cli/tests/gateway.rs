//! The gateway in front of a real platform: certificates from `whisk certs`, `whisk gateway`
//! terminating TLS, and the `openwhisk` npm-client conformance suite through it over HTTPS,
//! trusting the generated CA.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_client_through_the_gateway_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let out = Command::new(whisk_bin())
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["127.0.0.1", "localhost"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "whisk certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca = certs.join("ca.crt");
    assert!(ca.exists() && certs.join("domain.crt").exists() && certs.join("domain.key").exists());

    let server = Server::start(&tmp.path().join("data"), tmp.path()).await;
    let port = free_port();
    let log = std::fs::File::create(tmp.path().join("gateway.log")).unwrap();
    let gateway = Command::new(whisk_bin())
        .args([
            "gateway",
            "--http",
            "off",
            "--https",
            &format!("127.0.0.1:{port}"),
            "--backend",
            &server.url(""),
        ])
        .arg("--cert")
        .arg(certs.join("domain.crt"))
        .arg("--key")
        .arg(certs.join("domain.key"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("whisk gateway");
    let _gateway = Killed(gateway);

    let pem = std::fs::read(&ca).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let apihost = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{apihost}/api/v1")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not answer over HTTPS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ca = ca.display().to_string();
    run_conformance(&apihost, &server.data_dir, &[("NODE_EXTRA_CA_CERTS", &ca)]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_fronts_itself_with_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        match http
            .get(format!("https://127.0.0.1:{port}/api/v1/namespaces"))
            .basic_auth(u, Some(k))
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) => assert!(Instant::now() < deadline, "no HTTPS answer: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!(["guest"])
    );
}
