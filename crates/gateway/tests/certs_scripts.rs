//! `certs/key_gen.sh` (its openssl path) makes files the gateway serves and clients trust, and
//! the rcgen API reuses the CA it made.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use whisk_gateway::GatewayConfig;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../certs")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_gen_with_openssl_then_rcgen_reissue() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED key_gen_with_openssl_then_rcgen_reissue: openssl not found");
        return;
    }
    let dir = whisk_test_support::temp_dir();
    let status = Command::new("bash")
        .arg(script("key_gen.sh"))
        .args(["-o", dir.path().to_str().unwrap(), "-d", "30"])
        .args(["gateway.test", "127.0.0.1"])
        .env("CERT_TOOL", "openssl")
        .status()
        .unwrap();
    assert!(status.success());
    let paths = whisk_gateway::certs::BundlePaths::in_dir(dir.path());

    let b = TestBackend::start("b0");
    let config = GatewayConfig {
        listen_https: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: paths.cert.clone(),
        tls_key: paths.key.clone(),
        ..test_config(vec![b.url()])
    };
    let gw = TestGateway::start(config).await;
    let port = gw.https.unwrap().port();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&paths.ca_cert).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve("gateway.test", gw.https.unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("https://gateway.test:{port}/api/v1");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);

    // rcgen reissues with the CA openssl made; the same client still trusts the result.
    let ca_before = std::fs::read(&paths.ca_cert).unwrap();
    whisk_gateway::write_bundle(dir.path(), "unused", &["gateway.test".into()], 30).unwrap();
    assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), ca_before);
    gw.reloader.as_ref().unwrap().reload().unwrap();
    let fresh = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&paths.ca_cert).unwrap()).unwrap(),
        )
        .resolve("gateway.test", gw.https.unwrap())
        .build()
        .unwrap();
    assert_eq!(fresh.get(&url).send().await.unwrap().status(), 200);
}

#[test]
fn scripts_parse() {
    for name in [
        "key_gen.sh",
        "set_certs.sh",
        "run_registry.sh",
        "cert_dist.sh",
    ] {
        let ok = Command::new("bash")
            .arg("-n")
            .arg(script(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "{name} has a syntax error");
    }
}
