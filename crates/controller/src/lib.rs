//! The whisk-rs controller: OpenWhisk's REST API (`/api/v1`), authentication and entitlement,
//! per-namespace throttles, the sharding load balancer over invoker health pings, and the wait
//! for completions of blocking invocations.
//!
//! Layout:
//! - [`config`]: [`ControllerConfig`], every setting with its default.
//! - [`service`]: [`Controller`] (shared state, bus consumers) and [`ControllerError`].
//! - [`api`]: the routes, one module per collection, and the CORS/error layers.
//! - [`cache`]: the action cache of the invoke path, invalidated across controllers.
//! - [`admin`]: `wskadmin`'s operations on the store, the operator's unix socket, first keys.
//! - [`auth`]: Basic auth against the store's identities, cached; namespace entitlement.
//! - [`errors`]: [`WhiskError`](whisk_core::WhiskError) → `{"error", "code"}` responses.
//! - [`throttle`]: invocations per minute and activations in flight, per namespace.
//! - [`balancer`]: the pure sharding choice (home invoker, co-prime steps, capacity).
//! - [`health`]: invoker states from pings, memory reserved per invoker.
//! - [`invoke`]: publish an activation, wait for its completion, free slots.
//! - [`listener`]: the HTTP listener: hyper-util's server with header-read, body and send
//!   timeouts and a lingering close.
//! - this file: [`serve`].

pub mod admin;
pub mod api;
pub mod auth;
pub mod balancer;
pub mod cache;
pub mod config;
pub mod errors;
pub mod health;
pub mod invoke;
pub mod listener;
pub mod service;
pub mod throttle;

pub use config::ControllerConfig;
pub use service::{Controller, ControllerError};

use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets requests in flight
/// finish; with the [`listener`]'s default timeouts (30 s to send a request head) and its
/// lingering close.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener::serve_with(listener, router, listener::Settings::default(), shutdown).await
}
