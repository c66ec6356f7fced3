//! The peer directory's API, for its users: [`PeerDirectory`] (register, deregister, lease,
//! watch), its types and [`DirectoryError`], and [`DirectoryClient`], the gRPC client of a
//! `whisk directory` service (over mutual TLS with [`TlsFiles`]). An invoker needs only this
//! crate; the directory itself (registry, leases, the gRPC server, Redis) is `whisk-directory`,
//! which implements [`PeerDirectory`] in process and re-exports everything here.
//!
//! Layout:
//! - [`api`]: [`PeerDirectory`], [`Deregistered`], [`Lease`], [`PeerMapStream`].
//! - [`client`]: [`DirectoryClient`]. [`tls`]: [`TlsFiles`] and the client's TLS settings.
//! - [`error`]: [`DirectoryError`] and its gRPC status mapping (both ways).
//! - [`health`]: [`DirectoryHealth`], the directory's probe for `whisk status`.
//! - [`proto`]: the messages and the tonic client generated from `proto/directory.proto`.

#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod error;
pub mod health;
pub mod tls;

/// Messages and the gRPC client stub of package `whisk.directory.v1` (generated; the server
/// stub is in `whisk-directory`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/whisk.directory.v1.rs"));
}

pub use api::{Deregistered, Lease, PeerDirectory, PeerMapStream, GROUPS_LIST_MAX};
pub use client::DirectoryClient;
pub use error::DirectoryError;
pub use health::DirectoryHealth;
pub use proto::{Peer, PeerMap};
pub use tls::TlsFiles;
