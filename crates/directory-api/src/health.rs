//! [`DirectoryHealth`]: the directory's probe for `whisk status` — a gRPC watch of a group no
//! invoker uses answers its first snapshot (over mutual TLS with the invoker's client
//! certificate when the directory serves TLS). A watch only reads: no lease, no entry.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use whisk_core::health::{error_chain, Checked, Health};

use crate::api::PeerDirectory;
use crate::client::DirectoryClient;
use crate::error::DirectoryError;
use crate::tls::TlsFiles;

/// The namespace and group the probe watches (never registered in).
const PROBE_GROUP: (&str, &str) = ("whisk.system", "whisk-status");

/// Probes the directory service at an address.
#[derive(Debug, Clone)]
pub struct DirectoryHealth {
    addr: String,
    tls: Option<TlsFiles>,
    patience: Duration,
}

impl DirectoryHealth {
    /// The directory at `addr`, over TLS with `tls`; connecting is tried for up to `patience`.
    pub fn new(addr: &str, tls: Option<TlsFiles>, patience: Duration) -> Self {
        Self {
            addr: addr.to_string(),
            tls,
            patience,
        }
    }

    async fn watch_once(&self) -> Result<(), DirectoryError> {
        let client =
            DirectoryClient::connect_within_tls(&self.addr, self.patience, self.tls.as_ref())
                .await?;
        let mut maps = client.watch(PROBE_GROUP.0, PROBE_GROUP.1).await?;
        match maps.next().await {
            Some(_) => Ok(()),
            None => Err(DirectoryError::Unavailable(
                "the watch ended without a snapshot".into(),
            )),
        }
    }
}

#[async_trait]
impl Health for DirectoryHealth {
    fn name(&self) -> &str {
        "directory"
    }

    fn address(&self) -> String {
        self.addr.clone()
    }

    async fn check(&self) -> Checked {
        match self.watch_once().await {
            Ok(()) if self.tls.is_some() => Ok("answers a watch (mutual TLS)".into()),
            Ok(()) => Ok("answers a watch".into()),
            Err(e) => Err(error_chain(&e)),
        }
    }
}
