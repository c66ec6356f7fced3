//! The whisk-rs controller: OpenWhisk's REST API (`/api/v1`), authentication and entitlement,
//! per-namespace throttles, the sharding load balancer over invoker health pings, and the wait
//! for completions of blocking invocations.
//!
//! Layers (a module imports only from its own layer or those below it):
//!
//! 1. [`controller`]: [`Controller`] — builds the [`services`] once, feeds them from the bus
//!    (completions, health pings, cache invalidations) in tasks it can drain
//!    ([`Controller::join`]), and hands them to the [`api`]. This file: [`serve`].
//! 2. [`api`]: the routes, one module per collection, the extractors, the CORS/error layers,
//!    and the `whisk admin` socket; their state is [`services::Services`].
//! 3. [`services`]: one handle per concern, each owning its state —
//!    [`Entities`](services::Entities) (actions, the action cache, other entities),
//!    [`Activations`](services::Activations) (records),
//!    [`Invocations`](services::Invocations) (throttles, invoker health, publish, wait,
//!    expire), [`Identities`](services::Identities) (authentication, `whisk admin`'s
//!    operations). Services never import one another.
//! 4. Below the services, each independent of the API and of the services:
//!    - [`cache`]: the action cache, invalidated across controllers.
//!    - [`health`]: invoker states from pings, memory reserved per invoker; over
//!      [`balancer`], the pure sharding choice (home invoker, co-prime steps, capacity).
//!    - [`throttle`]: invocations per minute and activations in flight, per namespace, and
//!      the limits they check.
//!    - [`inflight`]: the table of activations in flight and the record of a lost one.
//!    - [`auth`]: the identity cache, Basic credentials, entitlement.
//!    - [`admin`]: `wskadmin`'s operations on the store, the private socket, first keys.
//!    - [`catalog`]: the public `/whisk.system` packages installed at start.
//!    - [`errors`]: [`WhiskError`](whisk_core::WhiskError) → `{"error", "code"}` responses.
//!    - [`listener`]: the HTTP listener: hyper-util's server with header-read, body and send
//!      timeouts and a lingering close.
//!    - [`config`]: [`ControllerConfig`], every setting with its default.
//! 5. `whisk-core`, `whisk-store`, `whisk-bus`, `whisk-proto`, `whisk-edge-io`.

pub mod admin;
pub mod api;
pub mod auth;
pub mod balancer;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod controller;
pub mod errors;
pub mod health;
pub mod inflight;
pub mod listener;
pub mod services;
#[cfg(test)]
mod testing;
pub mod throttle;

pub use config::ControllerConfig;
pub use controller::{Controller, ControllerError};

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
