//! Shared by the native-action tests of both runtimes (`native_sandbox.rs`, `native_docker.rs`):
//! a container spec of the `native` family, and `/init` with a compiled binary of the host.

#![allow(dead_code)]

use base64::Engine;
use serde_json::json;
use whisk_invoker::{Container, ContainerSpec};

use crate::common;

/// A `native` container of `memory_mb` (see [`common::spec`]).
pub fn spec(prefix: &str, memory_mb: u64) -> ContainerSpec {
    ContainerSpec {
        family: "native".into(),
        ..common::spec(prefix, memory_mb)
    }
}

/// `/init` with `/bin/echo`, base64 (`binary: true`): an ELF executable that prints its argv[1],
/// so the parameters come back as the result. It must succeed.
pub async fn init_echo(c: &dyn Container) {
    let elf = std::fs::read("/bin/echo").expect("/bin/echo");
    let code = base64::engine::general_purpose::STANDARD.encode(elf);
    let (status, v) = common::call(
        c,
        "/init",
        json!({"value": {"name": "echo", "main": "main", "code": code, "binary": true}}),
    )
    .await;
    assert_eq!(status, 200, "/init: {v}");
}
