//! Feeds with OpenWhisk's feed protocol, run by the platform: the catalog's feed actions
//! (`/whisk.system/alarms/{alarm,once,interval}`, `/whisk.system/messaging/kafkaFeed`) are
//! built-in actions the controller answers itself by writing a [`Registration`] to the store
//! ([`lifecycle`]); a [`Provider`] (in process in standalone, `whisk feeds` in distributed
//! mode) runs the registrations it holds a lease on and fires their triggers through the
//! controller's ordinary trigger fire route with the owner's identity.
//!
//! Layout:
//! - [`catalog`]: the feed actions ([`Feed`]), their documents and how the controller
//!   recognises them.
//! - [`registration`]: the registration document, its leases and compare-and-swap writes.
//! - [`lifecycle`]: CREATE / READ / UPDATE / DELETE / PAUSE / UNPAUSE against the store.
//! - [`alarm`]: the alarms feeds' parameters (upstream openwhisk-package-alarms) and schedules.
//! - [`kafka`]: the Kafka feed's parameters, message batches and consumer.
//! - [`fire`]: posting a trigger fire with the owner's key, and what its status means.
//! - [`provider`]: [`Provider`]: leases, one task per registration held, restarts.

pub mod alarm;
pub mod catalog;
pub mod fire;
pub mod kafka;
pub mod lifecycle;
pub mod provider;
pub mod registration;

pub use catalog::{Feed, FEED_KIND};
pub use provider::{FeedsSettings, Provider, ProviderConfig, ProviderError};
pub use registration::Registration;

use thiserror::Error;
use whisk_store::StoreError;

/// The bus topic on which the controller announces a changed registration (its key) to the
/// providers (each reads every message: one consumer group per provider).
pub const NOTIFY_TOPIC: &str = "feeds";

/// A failure of a feed operation.
#[derive(Debug, Error)]
pub enum FeedError {
    /// A lifecycle request the feed refuses, with the HTTP-like status OpenWhisk's providers
    /// answer it with (400 bad parameters, 401 bad key, 403 not the owner, 404 no trigger or
    /// registration).
    #[error("{message}")]
    Refused {
        /// 400, 401, 403, 404, 409.
        status: u16,
        /// What is wrong.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FeedError {
    /// A 400 refusal.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::Refused {
            status: 400,
            message: message.into(),
        }
    }

    /// A refusal with `status`.
    pub fn refused(status: u16, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            message: message.into(),
        }
    }
}
