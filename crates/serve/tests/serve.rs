//! `whisk_serve::serve` with real roles in this process: the whole platform answers its API
//! and shuts down within the grace period, releasing the store and its sockets; a local
//! directory is the one the local invoker registers with; a role that fails stops the others
//! and is the shutdown's error.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use whisk_directory::PeerDirectory;
use whisk_serve::{serve, Role, RoleSet, ServeError, Settings, SHUTDOWN_GRACE};

/// A platform on a free loopback port in `data`, without prewarmed containers.
fn settings(data: &Path) -> Settings {
    let mut s = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: Some(data.to_path_buf()),
        ..Settings::default()
    };
    s.invoker.stem_cells = vec![];
    s.directory.listen = "127.0.0.1:0".parse().unwrap();
    s
}

/// The status line of `GET path`.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: whisk\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await?;
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_platform_serves_then_shuts_down_within_the_grace_period() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    let roles = RoleSet::standalone(&s);
    let running = serve(s, roles, CancellationToken::new()).await.unwrap();
    let api = running.api_addr.expect("the controller's API");
    assert_eq!(get(api, "/api/v1").await.unwrap(), "HTTP/1.1 200 OK");
    // On loopback, a whole platform starts with OpenWhisk's well-known keys: no key files.
    assert!(running.new_key_files.is_empty());
    let admin = data.path().join(whisk_controller::admin::SOCKET_FILE);
    assert!(admin.exists(), "the `whisk admin` socket");

    let started = Instant::now();
    running.shutdown().await.unwrap();
    assert!(
        started.elapsed() < SHUTDOWN_GRACE,
        "{:?}",
        started.elapsed()
    );
    assert!(get(api, "/api/v1").await.is_err(), "the API still answers");
    assert!(!admin.exists(), "the admin socket is left behind");
    // The store file is released: another process could open it now.
    whisk_store::EmbeddedStore::open(&data.path().join("whisk.redb")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_directory_is_the_local_invokers() {
    let data = tempfile::tempdir().unwrap();
    let s = settings(data.path());
    let id = s.invoker.id;
    let roles = RoleSet::standalone(&s).with(Role::Directory);
    let running = serve(s, roles, CancellationToken::new()).await.unwrap();
    let addr = running
        .directory_addr
        .expect("the directory's gRPC address");
    let registry = running.directory.clone().expect("the local registry");
    // The invoker holds a lease at the local registry (its heartbeat came first)...
    let lease = registry
        .heartbeat(id, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        !lease.new_lease,
        "the invoker has no lease at the local directory"
    );
    // ...which also serves gRPC.
    let client = whisk_directory::DirectoryClient::connect(&addr.to_string())
        .await
        .unwrap();
    let lease = client.heartbeat(id, Duration::from_secs(1)).await.unwrap();
    assert!(!lease.new_lease);
    running.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_role_stops_the_others_and_is_the_error() {
    let data = tempfile::tempdir().unwrap();
    let mut s = settings(data.path());
    // HTTPS without its certificate: the gateway alone fails once it runs.
    s.gateway.listen_http = None;
    s.gateway.listen_https = Some("127.0.0.1:0".parse().unwrap());
    s.gateway.tls_cert = data.path().join("missing.crt");
    s.gateway.tls_key = data.path().join("missing.key");
    let roles = RoleSet::only(Role::Gateway).with(Role::Directory);
    let shutdown = CancellationToken::new();
    let running = serve(s, roles, shutdown.clone()).await.unwrap();
    let directory = running.directory_addr.unwrap();
    tokio::time::timeout(Duration::from_secs(10), running.stopped())
        .await
        .expect("the gateway's failure stops the process");
    assert!(!shutdown.is_cancelled(), "the caller's token is its own");
    match running.shutdown().await {
        Err(ServeError::Stopped { role, .. }) => assert_eq!(role, Role::Gateway),
        other => panic!("{other:?}"),
    }
    assert!(tokio::net::TcpStream::connect(directory).await.is_err());
}
