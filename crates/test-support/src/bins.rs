//! The workspace's binaries for tests of other crates. A crate's tests reach its own binaries
//! with `env!("CARGO_BIN_EXE_<name>")` (cargo builds them first); another package's binary is
//! found next to the running test binary, in `target/<profile>/`, and brought up to date with
//! cargo once per test binary (a binary left from an older build would test old code).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// `target/<profile>/` of the running test binary (which is `target/<profile>/deps/<name>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps")
        .to_path_buf()
}

/// `target/<profile>/<bin>` of package `package`, brought up to date (`cargo build -p <package>
/// --bin <bin>`, in the test binary's profile; a no-op when it is) once per test binary.
pub fn target_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    let dir = target_dir();
    let path = dir.join(bin);
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if built.contains(&path) {
        return path;
    }
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", package, "--bin", bin]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {bin}: {e}"));
    assert!(
        status.success(),
        "building {bin} (package {package}) failed"
    );
    assert!(
        path.exists(),
        "cargo built {bin} but {} is missing",
        path.display()
    );
    built.push(path.clone());
    path
}
