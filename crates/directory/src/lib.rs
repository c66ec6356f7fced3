//! The directory: a registry of running action instances ("peers") per namespace and group,
//! with invoker leases and watch streams that push every change the moment it happens. It
//! replaces the seed's 1-second polling of IP deltas through Kafka health pings.
//!
//! Invokers register an instance when it runs (namespace, group, instance id, IP, invoker),
//! deregister it when it ends, and hold a lease by heartbeat; when a lease lapses every
//! instance of that invoker is removed. A watcher gets the whole map of its group (versioned,
//! peers sorted by id) first, then again after every change.
//!
//! Layout:
//! - [`api`]: [`PeerDirectory`], the trait the invoker uses; implemented by [`Registry`]
//!   (in-process, for standalone) and [`DirectoryClient`] (gRPC).
//! - [`registry`]: [`Registry`], the transport-free model: validation, watch channels, the
//!   lease sweeper; [`Deregistered`], [`Lease`], [`PeerMapStream`].
//! - [`backend`]: [`RegistryBackend`], where state lives, and [`GroupKey`].
//! - [`memory`]: [`MemoryBackend`] (default). [`redis`]: [`RedisBackend`] (restarts and
//!   several directories share one Redis; schema in that module).
//! - [`server`]: the gRPC service and [`serve`]. [`client`]: [`DirectoryClient`].
//! - [`config`]: [`DirectoryConfig`] (listen address, backend, Redis URL, lease, TLS).
//! - [`tls`]: [`TlsFiles`], the CA, certificate and key of a server or client; mutual TLS
//!   (`whisk certs`): the server requires a client certificate from the project's CA.
//! - [`validate`]: the rules for names, instance ids and addresses. [`error`]:
//!   [`DirectoryError`] and its gRPC status mapping.
//! - [`proto`]: the messages and tonic stubs generated from `proto/directory.proto`.

#![deny(missing_docs)]

pub mod api;
pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod memory;
pub mod redis;
pub mod registry;
pub mod server;
pub mod tls;
pub mod validate;

/// Messages and gRPC stubs of package `whisk.directory.v1` (generated).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/whisk.directory.v1.rs"));
}

pub use api::PeerDirectory;
pub use backend::{BackendEvent, GroupKey, RegistryBackend};
pub use client::DirectoryClient;
pub use config::{BackendKind, DirectoryConfig, RegistryOptions};
pub use error::DirectoryError;
pub use memory::MemoryBackend;
pub use proto::{Peer, PeerMap};
pub use redis::RedisBackend;
pub use registry::{Deregistered, Lease, PeerMapStream, Registry};
pub use server::{serve, serve_with, DirectoryService};
pub use tls::TlsFiles;
