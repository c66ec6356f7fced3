//! `whisk-runtime`: the action proxy that runs inside every action container.
//!
//! It speaks OpenWhisk's action proxy protocol (`POST /init`, `POST /run`,
//! `GET /health`) and runs the launcher its kind names in `whisk_core::kinds::KINDS`:
//! Python 3 or Node.js functions in one long-lived launcher process per proxy, started
//! (prewarmed) before `/init` arrives, or a native executable once per activation.
//!
//! Layout:
//! - [`config`]: the launcher and paths the proxy is started with.
//! - [`protocol`]: the `/init` and `/run` request bodies and the `__OW_*` env.
//! - [`action`]: writes an action's code (source or zip) into its directory.
//! - [`launcher`]: the launchers: an interpreter spoken to over stdin / fd 3, or the
//!   native action's executable.
//! - [`error`]: proxy errors and their HTTP status and `{"error": ...}` body.
//! - [`cli`]: the proxy's flags and its run-until-signal entry point.
//! - [`server`]: the axum routes, the one-run-at-a-time state and the
//!   end-of-activation sentinels.

pub mod action;
pub mod cli;
pub mod config;
pub mod error;
pub mod launcher;
pub mod protocol;
pub mod server;

pub use config::ProxyConfig;
pub use error::ProxyError;
pub use server::{router, serve, Proxy, SENTINEL};

/// The peers library for Python actions, written into `<workdir>/lib` (on `sys.path`).
pub const PEERS_PY: &str = include_str!("../python/whisk_peers.py");
