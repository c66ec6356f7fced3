//! The directory: a registry of running action instances ("peers") per namespace and group,
//! with invoker leases and watch streams that push every change the moment it happens. It
//! replaces the seed's 1-second polling of IP deltas through Kafka health pings.
//!
//! Invokers register an instance when it runs (namespace, group, instance id, IP, invoker),
//! deregister it when it ends, and hold a lease by heartbeat; when a lease lapses every
//! instance of that invoker is removed. A watcher gets the whole map of its group (versioned,
//! peers sorted by id) first, then again after every change.
//!
//! The API its users need — [`PeerDirectory`], [`Peer`], [`PeerMap`], [`DirectoryError`],
//! [`DirectoryClient`], [`TlsFiles`] — lives in `whisk-directory-api` (so an invoker links no
//! server, Redis or registry) and is re-exported here, modules included ([`client`],
//! [`error`], [`api`]).
//!
//! Layout:
//! - [`registry`]: [`Registry`], the transport-free model: validation, watch channels, the
//!   lease sweeper; it implements [`PeerDirectory`] in process (standalone).
//! - [`backend`]: [`RegistryBackend`], where state lives, and [`GroupKey`].
//! - [`memory`]: [`MemoryBackend`] (default). [`redis`]: [`RedisBackend`] (restarts and
//!   several directories share one Redis; schema in that module). [`health`]:
//!   [`RedisHealth`], the probe of that Redis for `whisk status`.
//! - [`server`]: the gRPC service and [`serve`].
//! - [`config`]: [`DirectoryConfig`] (listen address, backend, Redis URL, lease, TLS).
//! - [`tls`]: [`TlsFiles`] and the server's TLS settings ([`tls::server_config`]); mutual
//!   TLS (`whisk certs`): the server requires a client certificate from the project's CA.
//! - [`validate`]: the rules for names, instance ids and addresses.
//! - [`proto`]: the messages and client of `whisk-directory-api`, and the tonic server stub
//!   generated from `proto/directory.proto`.

#![deny(missing_docs)]

pub mod backend;
pub mod config;
pub mod health;
pub mod memory;
pub mod redis;
pub mod registry;
pub mod server;
pub mod tls;
pub mod validate;

pub use whisk_directory_api::{api, client, error};

/// Messages and gRPC stubs of package `whisk.directory.v1`: the messages and the client of
/// `whisk-directory-api`, and the server stub (generated here).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    pub use whisk_directory_api::proto::*;
    include!(concat!(env!("OUT_DIR"), "/whisk.directory.v1.rs"));
}

pub use backend::{BackendEvent, GroupKey, RegistryBackend};
pub use config::{BackendKind, DirectoryConfig, RegistryOptions};
pub use health::RedisHealth;
pub use memory::MemoryBackend;
pub use redis::RedisBackend;
pub use registry::Registry;
pub use server::{serve, serve_with, DirectoryService};
pub use whisk_directory_api::{
    Deregistered, DirectoryClient, DirectoryError, DirectoryHealth, Lease, Peer, PeerDirectory,
    PeerMap, PeerMapStream, TlsFiles,
};
