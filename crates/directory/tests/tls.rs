//! The directory over mutual TLS: a client with a certificate from the project's CA is served;
//! a client without one, with one from another CA, with the server's own certificate (made
//! for server authentication only) or speaking plain HTTP/2 is refused and changes nothing.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use whisk_core::health::Health;
use whisk_directory::{
    DirectoryClient, DirectoryError, DirectoryHealth, PeerDirectory, Registry, TlsFiles,
};

struct Ca {
    pem: String,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca { pem, key }
}

/// Writes `<name>.crt`/`<name>.key` signed by `ca` for `hosts`, for `usage`, and `ca.crt`.
fn issue(
    dir: &Path,
    ca: &Ca,
    name: &str,
    hosts: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> TlsFiles {
    let mut p =
        CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.extended_key_usages = vec![usage];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_ca_cert_pem(&ca.pem, &ca.key).unwrap();
    let cert = p.signed_by(&key, &issuer).unwrap();
    let files = TlsFiles {
        ca: dir.join(format!("{name}-ca.crt")),
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.ca, &ca.pem).unwrap();
    std::fs::write(&files.cert, format!("{}{}", cert.pem(), ca.pem)).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

/// What a refused client gets: the connection or the call fails, nothing else.
async fn refused(what: &str, addr: &str, tls: Option<&TlsFiles>, s: &Served) {
    match DirectoryClient::connect_within_tls(addr, Duration::from_millis(500), tls).await {
        Err(DirectoryError::Unavailable(m)) => eprintln!("{what}: refused at connect: {m}"),
        Err(e) => panic!("{what}: unexpected error {e:?}"),
        Ok(c) => {
            // The TCP (and perhaps TLS) connection opened; every call must fail.
            let e = c
                .register("ns", "g", peer("intruder", "10.9.9.9", 7))
                .await
                .expect_err(what);
            eprintln!("{what}: register refused: {e}");
            match c.watch("ns", "g").await {
                Err(e) => eprintln!("{what}: watch refused: {e}"),
                Ok(_) => panic!("{what}: watched a group"),
            }
        }
    }
    let lazy = DirectoryClient::connect_lazy_tls(addr, tls).unwrap();
    assert!(lazy.heartbeat(7, Duration::ZERO).await.is_err(), "{what}");
    assert!(
        s.registry
            .snapshot("ns", "g")
            .await
            .unwrap()
            .peers
            .is_empty(),
        "{what} changed the map"
    );
}

#[tokio::test]
async fn only_clients_with_a_certificate_of_the_ca_are_served() {
    let dir = whisk_test_support::temp_dir();
    let d = dir.path();
    let project = ca("whisk-rs CA");
    let server = issue(
        d,
        &project,
        "directory",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let invoker = issue(
        d,
        &project,
        "invoker0",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = issue(
        d,
        &ca("another CA"),
        "stranger",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    let s = Served::start_tls(
        "127.0.0.1:0".parse().unwrap(),
        Registry::in_memory(long_lease()),
        Some(server.clone()),
    )
    .await;
    let addr = format!("localhost:{}", s.addr.port());

    // The invoker is served, by name and by IP address.
    let c = DirectoryClient::connect_within_tls(&addr, Duration::from_secs(5), Some(&invoker))
        .await
        .unwrap();
    conformance(&c, "tls").await;
    let by_ip = DirectoryClient::connect_within_tls(
        &format!("127.0.0.1:{}", s.addr.port()),
        Duration::from_secs(5),
        Some(&invoker),
    )
    .await
    .unwrap();
    by_ip.heartbeat(3, Duration::ZERO).await.unwrap();

    // `whisk status`'s probe: answers with the invoker's certificate, is refused without one.
    let probe = DirectoryHealth::new(&addr, Some(invoker.clone()), Duration::from_secs(5));
    assert_eq!(
        probe.check().await.as_deref(),
        Ok("answers a watch (mutual TLS)")
    );
    let plain = DirectoryHealth::new(&addr, None, Duration::from_millis(500));
    let reason = plain.check().await.unwrap_err();
    eprintln!("probe without a certificate: {reason}");

    // No certificate: plain HTTP/2 to a TLS port.
    refused("no TLS at all", &addr, None, &s).await;
    // TLS with a client certificate that another CA signed.
    let stranger = TlsFiles {
        ca: server.ca.clone(), // trusts the server: only the server can refuse
        ..stranger
    };
    refused("a certificate of another CA", &addr, Some(&stranger), &s).await;
    // The server's own certificate is for server authentication only.
    let as_client = TlsFiles {
        ca: server.ca.clone(),
        cert: server.cert.clone(),
        key: server.key.clone(),
    };
    refused(
        "the server certificate as a client",
        &addr,
        Some(&as_client),
        &s,
    )
    .await;
    // A raw TLS client that presents no certificate at all.
    let no_cert = no_certificate_handshake(&server.ca, s.addr).await;
    eprintln!("no client certificate: {no_cert}");
    s.stop().await;
}

/// Opens TLS to `addr` trusting `ca`, presents no certificate, and tries an HTTP/2 preface;
/// returns how the server refused.
async fn no_certificate_handshake(ca: &Path, addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for c in rustls_pemfile_like(&pem) {
        roots.add(c).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = match connector.connect(name, tcp).await {
        Ok(t) => t,
        Err(e) => return format!("handshake failed: {e}"),
    };
    // TLS 1.3: the server checks the client's (absent) certificate after the client finished;
    // the refusal arrives on the first read.
    let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
        Ok(Ok(0)) => "closed".into(),
        Ok(Err(e)) => format!("refused: {e}"),
        Ok(Ok(n)) => panic!("the server answered {n} bytes to a client without a certificate"),
        Err(_) => panic!("the server neither refused nor answered"),
    }
}

/// The DER certificates of a PEM bundle.
fn rustls_pemfile_like(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}
