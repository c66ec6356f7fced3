//! HTTPS with certificates made by `whisk_gateway::certs`: the generated CA trusted, or
//! verification skipped (`wsk -i`), HTTP/2 through ALPN, a certificate reloaded while
//! connections stay open, and bad TLS clients that do not disturb others.

mod common;

use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whisk_gateway::certs::{write_bundle, BundlePaths, CertAuthority};
use whisk_gateway::GatewayConfig;

const HOST: &str = "gateway.test";

fn bundle(dir: &Path) -> BundlePaths {
    write_bundle(
        dir,
        "whisk-rs test CA",
        &[HOST.to_string(), "127.0.0.1".to_string()],
        30,
    )
    .unwrap()
}

fn tls_config(backend: String, paths: &BundlePaths) -> GatewayConfig {
    GatewayConfig {
        listen_https: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: paths.cert.clone(),
        tls_key: paths.key.clone(),
        tls_handshake_timeout: Duration::from_millis(500),
        ..test_config(vec![backend])
    }
}

fn trusting_client(ca: &Path, addr: SocketAddr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .resolve(HOST, addr)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn rustls_client(ca: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A resumed session would show the certificate of the session it resumes.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
}

fn first_cert_in(path: &Path) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_with_the_generated_ca_or_without_verification() {
    let dir = whisk_test_support::temp_dir();
    let paths = bundle(dir.path());
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(tls_config(b.url(), &paths)).await;
    let addr = gw.https.unwrap();
    let port = addr.port();

    // The generated CA trusted (`--cacert`).
    let c = trusting_client(&paths.ca_cert, addr);
    let v = get_json(&c, &format!("https://{HOST}:{port}/echo/api/v1/namespaces")).await;
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert_eq!(v["headers"]["host"], format!("{HOST}:{port}"));
    // The IP address is in the certificate too.
    let r = c
        .get(format!("https://127.0.0.1:{port}/api/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Verification skipped (`wsk -i`).
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = insecure
        .get(format!("https://127.0.0.1:{port}/api/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Neither: the handshake is refused by the client.
    let strict = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(strict
        .get(format!("https://127.0.0.1:{port}/api/v1"))
        .send()
        .await
        .is_err());

    // HTTP/2 when the client offers it.
    let tls = tls_connect(&rustls_client(&paths.ca_cert, &[b"h2"]), addr)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::get(format!("https://{HOST}/echo/h2"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-request-id"));
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["headers"]["host"], HOST);
        assert_eq!(v["path"], "/echo/h2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certificate_reload_serves_new_connections_and_keeps_old_ones() {
    let dir = whisk_test_support::temp_dir();
    let paths = bundle(dir.path());
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(tls_config(b.url(), &paths)).await;
    let addr = gw.https.unwrap();
    let connector = rustls_client(&paths.ca_cert, &[b"http/1.1"]);
    let old_cert = first_cert_in(&paths.cert);

    // A keep-alive connection opened before the reload.
    let tls = tls_connect(&connector, addr).await.unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], old_cert);
    let (mut old_conn, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let get = || {
        http::Request::get("/api/v1")
            .header("host", HOST)
            .body(Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    assert_eq!(old_conn.send_request(get()).await.unwrap().status(), 200);

    // A new certificate from the same CA, then the reload SIGHUP triggers.
    let ca = CertAuthority::load(&paths.ca_cert, &paths.ca_key).unwrap();
    whisk_gateway::issue_server_cert(&ca, &[HOST.to_string()], 10)
        .unwrap()
        .write(&paths.cert, &paths.key)
        .unwrap();
    let new_cert = first_cert_in(&paths.cert);
    assert_ne!(new_cert, old_cert);
    gw.reloader.as_ref().unwrap().reload().unwrap();

    let tls = tls_connect(&connector, addr).await.unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], new_cert);
    // The old connection is still served.
    let resp = old_conn.send_request(get()).await.unwrap();
    assert_eq!(resp.status(), 200);

    // A broken file is refused and the current certificate stays.
    std::fs::write(&paths.cert, "not a certificate").unwrap();
    assert!(gw.reloader.as_ref().unwrap().reload().is_err());
    let tls = tls_connect(&connector, addr).await.unwrap();
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], new_cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_tls_clients_do_not_disturb_others() {
    let dir = whisk_test_support::temp_dir();
    let paths = bundle(dir.path());
    let b = TestBackend::start("b0");
    let gw = TestGateway::start(tls_config(b.url(), &paths)).await;
    let addr = gw.https.unwrap();
    let good = trusting_client(&paths.ca_cert, addr);
    let url = format!("https://{HOST}:{}/api/v1", addr.port());

    // Garbage instead of a ClientHello: the gateway closes the connection.
    let mut garbage = tokio::net::TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .await
        .unwrap();
    garbage.write_all(&[0x42; 2048]).await.unwrap();
    // A client that connects and never starts the handshake.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Plain HTTP on the HTTPS port.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /api/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    assert_eq!(good.get(&url).send().await.unwrap().status(), 200);
    for (name, s) in [
        ("garbage", &mut garbage),
        ("silent", &mut silent),
        ("plain", &mut plain),
    ] {
        assert!(closed_by_peer(s).await, "{name} connection closed");
    }
    // A client that does not trust the certificate gives up during the handshake.
    let untrusting = rustls_client(&write_other_ca(dir.path()), &[]);
    assert!(tls_connect(&untrusting, addr).await.is_err());

    for _ in 0..5 {
        assert_eq!(good.get(&url).send().await.unwrap().status(), 200);
    }
}

/// A CA unrelated to the gateway's certificate.
fn write_other_ca(dir: &Path) -> std::path::PathBuf {
    let ca = whisk_gateway::generate_ca("other CA", 10).unwrap();
    let (cert, key) = (dir.join("other-ca.crt"), dir.join("other-ca.key"));
    ca.write(&cert, &key).unwrap();
    cert
}

/// Reads until the peer closes (true) or 20 s pass (false); data sent before the close (a TLS
/// alert) is skipped.
async fn closed_by_peer(s: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}
