//! The harness every crate's integration tests share, so that none keeps its own copy:
//!
//! - [`free_port`], [`temp_dir`], [`repo_root`], [`run_ok`]; polling ([`wait_until`],
//!   [`eventually`], [`wait_for_port`]);
//! - [`process`]: child processes of a test (log file, stopped on drop, log tail on panic);
//! - [`services`]: Redis, the Kafka broker (tansu) and CouchDB (pouchdb-server), one per test
//!   on free ports, or all three through `scripts/services.sh`;
//! - [`bins`]: the workspace's binaries in the target folder;
//! - [`docker`]: the Docker daemon and the action images;
//! - [`node`]: Node.js, npm and the `openwhisk` npm client's conformance suite;
//! - [`http`]: raw HTTP/1.1 clients for edge tests (slow writers, reading an answer's head);
//! - [`fuzz`]: case counts and generators of the property tests (`tests/fuzz_*.rs`).
//! - [`otlp`]: an OTLP/HTTP (JSON) receiver of exported trace spans.
//!
//! **Missing services.** A test that needs a service, tool or daemon that is not there fails,
//! saying what is missing and how to get it ([`missing`]); it never passes (or skips) without
//! it. Under CI (`CI` set) the message says that the runner's setup (`scripts/test.sh`) is at
//! fault.
//!
//! This crate depends on no whisk crate, so that every whisk crate can use it as a
//! dev-dependency; helpers that need a crate's own types stay in that crate's tests.

pub mod bins;
pub mod docker;
pub mod fuzz;
pub mod http;
pub mod node;
pub mod otlp;
pub mod process;
pub mod services;

use std::fmt::Display;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use process::{processes_with, signal, wait_until_gone, Proc};
pub use tempfile::TempDir;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A loopback port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .expect("the bound address")
        .port()
}

/// `127.0.0.1:<a free port>`: an address nothing listens on.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A temporary folder (`whisk-test-*`), removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("whisk-test-")
        .tempdir()
        .expect("creating a temporary folder")
}

/// Fails the test because `what` is not available here, with `detail` (what failed, how to
/// get it). Tests never pass without the services they need.
pub fn missing(what: &str, detail: impl Display) -> ! {
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what} is not available on this CI runner: {detail}\n\
             (scripts/test.sh installs and starts what the tests need; the runner's setup is broken)"
        );
    }
    panic!("{what} is not available: {detail}\n(this test needs it and does not pass without it)");
}

/// Logs of the code under test in the test's output (shown when it fails): `RUST_LOG`, or
/// warnings and errors.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Runs `cmd` to its end and returns its output, failing the test (with its stderr) when it
/// cannot be run or exits unsuccessfully. `what` names it in the message.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: running {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` to its end; its stdout, trimmed. Fails the test like [`run_ok`].
pub fn run_stdout(cmd: &mut Command, what: &str) -> String {
    let out = run_ok(cmd, what);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `cond` every 10 ms until it holds; fails the test naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Calls `attempt` every 100 ms until it gives `Some`, and returns that; fails the test naming
/// `what` after `within`. (`attempt` may assert on what it sees meanwhile.)
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = attempt().await {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`wait_until`] for code outside a runtime (blocks the thread).
pub fn wait_until_blocking(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something accepts connections on `127.0.0.1:port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits (blocking) until something accepts connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, within: Duration) {
    wait_until_blocking(&format!("a listener on port {port}"), within, || {
        listening(port)
    });
}
