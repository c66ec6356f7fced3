//! Node.js for tests: the tools ([`require_node`], [`require_npm`], [`run_tool`]) and the
//! conformance suite of the `openwhisk` npm client in `tests/conformance` ([`NpmClient`]),
//! run against a platform under test. Without Node.js or npm a test fails, never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::missing;

/// The oldest Node.js the tests support.
pub const MIN_NODE_MAJOR: u32 = 18;

/// Whether `node` can be run here.
pub fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a tool to its end, failing the test (never skipping) when it is not installed.
pub fn run_tool(cmd: &mut Command, what: &str) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing(
            &format!("`{}`", cmd.get_program().to_string_lossy()),
            format!(
                "{what}: not installed or not on PATH; the tests need Node.js >= {MIN_NODE_MAJOR} \
                 and npm (`apt-get install nodejs npm`; scripts/test.sh installs them)"
            ),
        ),
        Err(e) => panic!(
            "{what}: running `{}`: {e}",
            cmd.get_program().to_string_lossy()
        ),
    }
}

/// Fails the test unless Node.js >= [`MIN_NODE_MAJOR`] runs here.
pub fn require_node() {
    let out = run_tool(Command::new("node").arg("--version"), "checking node");
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if !out.status.success() || major < MIN_NODE_MAJOR {
        missing(
            &format!("Node.js >= {MIN_NODE_MAJOR}"),
            format!("node --version gave {version:?}"),
        );
    }
}

/// Fails the test unless Node.js and npm run here.
pub fn require_npm() {
    require_node();
    let npm = run_tool(Command::new("npm").arg("--version"), "checking npm");
    if !npm.status.success() {
        missing(
            "npm",
            format!(
                "npm --version failed: {}",
                String::from_utf8_lossy(&npm.stderr)
            ),
        );
    }
}

/// Prints a tool's stdout and stderr under `what` (shown when the test fails).
pub fn print_output(what: &str, out: &Output) {
    println!(
        "---- {what}: stdout ----\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "---- {what}: stderr ----\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `npm ci` (or `npm install` without a lock file) in `dir` when its `node_modules` lacks
/// `package` (e.g. `openwhisk`).
pub fn ensure_node_modules(dir: &Path, package: &str) {
    if dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .exists()
    {
        return;
    }
    let verb = if dir.join("package-lock.json").exists() {
        "ci"
    } else {
        "install"
    };
    let out = run_tool(
        Command::new("npm")
            .arg(verb)
            .args(["--no-audit", "--no-fund"])
            .current_dir(dir),
        &format!("npm {verb} in {}", dir.display()),
    );
    print_output(&format!("npm {verb}"), &out);
    assert!(
        out.status.success(),
        "npm {verb} in {} failed with {}",
        dir.display(),
        out.status
    );
}

/// The repository's `tests/conformance`: the `openwhisk` npm client's conformance suite.
pub fn conformance_dir() -> PathBuf {
    crate::repo_root().join("tests/conformance")
}

/// A run of the `openwhisk` npm client's conformance suite (`node --test` in
/// `tests/conformance`) against a platform: its API host, a key and namespace, and extra
/// environment for the suite. `CONFORMANCE_TEST_PATTERN` picks tests by name.
pub struct NpmClient {
    apihost: String,
    key: String,
    namespace: String,
    env: Vec<(String, String)>,
}

impl NpmClient {
    /// The client of `apihost` (`http://host:port`) with `key` (`uuid:secret`) in `namespace`.
    pub fn new(apihost: &str, key: &str, namespace: &str) -> NpmClient {
        NpmClient {
            apihost: apihost.to_string(),
            key: key.to_string(),
            namespace: namespace.to_string(),
            env: vec![],
        }
    }

    /// Sets an environment variable of the suite (overriding the client's own).
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> NpmClient {
        let value = value.as_ref().to_string_lossy().into_owned();
        self.env.push((name.to_string(), value));
        self
    }

    /// Runs the suite; fails the test with its output when a test of it fails.
    pub async fn run_suite(self) {
        require_npm();
        let dir = conformance_dir();
        ensure_node_modules(&dir, "openwhisk");
        let mut node = Command::new("node");
        node.args(["--test", "--test-reporter=spec"]);
        if let Ok(pattern) = std::env::var("CONFORMANCE_TEST_PATTERN") {
            node.arg(format!("--test-name-pattern={pattern}"));
        }
        node.current_dir(&dir)
            .env("__OW_API_HOST", &self.apihost)
            .env("__OW_API_KEY", &self.key)
            .env("__OW_NAMESPACE", &self.namespace)
            .env_remove("__OW_IGNORE_CERTS")
            .env_remove("__OW_APIGW_TOKEN")
            .stdin(Stdio::null());
        // The client sends every request through a proxy named in these; the server is local.
        for var in [
            "PROXY",
            "proxy",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
        ] {
            node.env_remove(var);
        }
        node.envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = tokio::task::spawn_blocking(move || run_tool(&mut node, "running node --test"))
            .await
            .expect("the node --test thread");
        print_output("node --test", &out);
        assert!(
            out.status.success(),
            "node --test in {} failed with {} (its output is above)",
            dir.display(),
            out.status
        );
    }
}
