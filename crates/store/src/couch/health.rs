//! [`CouchHealth`]: CouchDB's probe for `whisk status` — the server answers `GET /` and takes
//! the credentials ([`CouchStore::ping`]), and which of the store's databases exist (`GET
//! /<db>`). Only reads: a missing database is reported, not created (the first controller
//! creates them).

use async_trait::async_trait;
use couch_rs::http::{Method, StatusCode};
use whisk_core::health::{Checked, Health};

use super::{client, CouchConfig, CouchStore, DATABASES};
use crate::StoreError;

/// Probes the CouchDB server of a [`CouchConfig`].
#[derive(Debug, Clone)]
pub struct CouchHealth {
    config: CouchConfig,
}

impl CouchHealth {
    /// The server and databases of `config` (each request bounded by its
    /// `request_timeout_ms`).
    pub fn new(config: CouchConfig) -> Self {
        Self { config }
    }

    /// The store's databases that do not exist on the server.
    async fn missing_databases(&self) -> Result<Vec<String>, StoreError> {
        let (_, client) = client(&self.config)?;
        let mut missing = vec![];
        for name in DATABASES {
            let db = format!("{}{name}", self.config.db_prefix);
            let answer = client
                .req(Method::GET, &format!("/{db}"), None)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(format!("GET /{db}: {e}")))?;
            match answer.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => missing.push(db),
                code => {
                    return Err(StoreError::Unavailable(format!(
                        "GET /{db} answered {code}"
                    )))
                }
            }
        }
        Ok(missing)
    }
}

#[async_trait]
impl Health for CouchHealth {
    fn name(&self) -> &str {
        "couchdb"
    }

    fn address(&self) -> String {
        self.config.url.clone()
    }

    async fn check(&self) -> Checked {
        let version = CouchStore::ping(&self.config)
            .await
            .map_err(|e| e.to_string())?;
        let missing = self.missing_databases().await.map_err(|e| e.to_string())?;
        let prefix = &self.config.db_prefix;
        Ok(match missing.len() {
            0 => format!("{version}, databases {prefix}*"),
            n if n == DATABASES.len() => {
                format!("{version}, no databases {prefix}* yet (a controller creates them)")
            }
            _ => format!("{version}, missing databases {}", missing.join(", ")),
        })
    }
}
