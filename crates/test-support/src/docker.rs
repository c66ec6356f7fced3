//! Docker for tests: the daemon ([`require_daemon`]), the action images built by
//! `deploy/images/build-actions.sh` ([`ensure_action_images`]), and `docker` CLI calls
//! ([`docker`], [`inspect`], [`exists`], [`remove_containers`]). Without a daemon a test fails
//! ([`crate::missing`]); `scripts/test.sh` (or `scripts/dockerd.sh`) starts one.

use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

use crate::missing;

/// The action images every Docker test may use (both runtime families).
pub const ACTION_IMAGES: [&str; 2] = ["whisk/python3action", "whisk/nodejsaction"];

/// `docker ARGS` to its end (whatever the exit status); fails the test when the CLI is missing.
pub fn docker(args: &[&str]) -> Output {
    match Command::new("docker").args(args).output() {
        Ok(out) => out,
        Err(e) => missing(
            "the docker CLI",
            format!("{e}; install docker.io and start dockerd (scripts/dockerd.sh)"),
        ),
    }
}

/// Checks, once per test binary, that a Docker daemon answers.
pub fn require_daemon() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let out = Command::new("docker")
            .args(["info", "-f", "{{.ServerVersion}}"])
            .output()
            .map_err(|e| format!("the docker CLI is not installed ({e})"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`docker info` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    if let Err(e) = checked {
        missing(
            "a Docker daemon",
            format!("{e}; install docker.io and start dockerd (scripts/dockerd.sh)"),
        );
    }
}

/// Checks the daemon and builds every action image the tests use ([`ACTION_IMAGES`]), once per
/// test binary; `build-actions.sh` itself locks and skips images that are up to date, so
/// concurrent test binaries build once.
pub fn ensure_action_images() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    require_daemon();
    let built = BUILT.get_or_init(|| {
        let script = crate::repo_root().join("deploy/images/build-actions.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "deploy/images/build-actions.sh failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        match ACTION_IMAGES.iter().find(|image| !exists("image", image)) {
            Some(image) => Err(format!("{image} is missing after build-actions.sh")),
            None => Ok(()),
        }
    });
    if let Err(e) = built {
        panic!("the action images: {e}");
    }
}

/// Whether `docker <kind> inspect <name>` finds it (`kind`: container, image, network, ...).
pub fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).status.success()
}

/// `docker <kind> inspect <name>`, as JSON; fails the test when it is not there.
pub fn inspect(kind: &str, name: &str) -> Value {
    let out = docker(&[kind, "inspect", name]);
    assert!(
        out.status.success(),
        "docker {kind} inspect {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("docker inspect prints JSON");
    all[0].clone()
}

/// Removes (forced) every container carrying `label` (`key` or `key=value`); how many.
pub fn remove_containers(label: &str) -> usize {
    let out = docker(&["ps", "-aq", "--filter", &format!("label={label}")]);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for id in &ids {
        let _ = docker(&["rm", "-f", id]);
    }
    ids.len()
}
