//! [`CouchConfig`]: where the CouchDB server is and how the backend talks to it.

use crate::StoreError;
use serde::Deserialize;
use std::time::Duration;

/// Settings of [`super::CouchStore`], read from configuration (every key optional).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct CouchConfig {
    /// Base URL of the server, `http://host:port` (default `http://127.0.0.1:5984`, where
    /// `scripts/couchdb.sh up` starts one). Plain HTTP only: the client is built without TLS,
    /// as CouchDB is reached inside the deployment's network.
    pub url: String,
    /// User for HTTP basic authentication (default `whisk`, the admin that
    /// `scripts/couchdb.sh` creates); empty: no authentication.
    pub username: String,
    /// Password of `username` (default `whisk`).
    pub password: String,
    /// Prefix of the three database names, `<prefix>whisks`, `<prefix>activations`,
    /// `<prefix>subjects` (default `whisk_local_`, as OpenWhisk). Lowercase letters, digits and
    /// `_$()+-`, starting with a letter.
    pub db_prefix: String,
    /// After a failed request, how long the next call may take to find out whether the server
    /// accepts connections again before it answers `Unavailable`, ms (default 1000).
    pub connect_timeout_ms: u64,
    /// Longest time one store call may take, ms (default 10000); past it the call answers
    /// `Unavailable`.
    pub request_timeout_ms: u64,
    /// Most activation records written in one `_bulk_docs` request (default 256).
    pub activation_batch_max: usize,
    /// How long the first activation record of a batch waits for others, ms (default 0: a
    /// batch takes what queued while earlier batches were being written, and no more).
    pub activation_batch_window_ms: u64,
    /// How many `_bulk_docs` requests may be in flight at once (default 2; pouchdb-server is
    /// single-threaded, so more only shrinks batches).
    pub activation_writers: usize,
}

impl Default for CouchConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:5984".into(),
            username: "whisk".into(),
            password: "whisk".into(),
            db_prefix: "whisk_local_".into(),
            connect_timeout_ms: 1000,
            request_timeout_ms: 10_000,
            activation_batch_max: 256,
            activation_batch_window_ms: 0,
            activation_writers: 2,
        }
    }
}

impl std::fmt::Debug for CouchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("db_prefix", &self.db_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("activation_batch_max", &self.activation_batch_max)
            .field(
                "activation_batch_window_ms",
                &self.activation_batch_window_ms,
            )
            .field("activation_writers", &self.activation_writers)
            .finish()
    }
}

/// A checked [`CouchConfig`].
#[derive(Debug, Clone)]
pub(super) struct Checked {
    pub(super) url: url::Url,
    /// `host:port` for the reachability probe.
    pub(super) address: (String, u16),
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) batch_max: usize,
    pub(super) batch_window: Duration,
    pub(super) writers: usize,
}

impl CouchConfig {
    /// Validates every key, with a message naming the bad one.
    pub(super) fn check(&self) -> Result<Checked, StoreError> {
        let bad = |m: String| StoreError::Unavailable(format!("bad CouchDB configuration: {m}"));
        let url =
            url::Url::parse(&self.url).map_err(|e| bad(format!("url {:?}: {e}", self.url)))?;
        if url.scheme() != "http" {
            return Err(bad(format!(
                "url {:?}: only http:// is supported (the client is built without TLS)",
                self.url
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad(format!("url {:?} has no host", self.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(5984);
        if !valid_prefix(&self.db_prefix) {
            return Err(bad(format!(
                "db_prefix {:?}: use lowercase letters, digits and _$()+-, starting with a letter",
                self.db_prefix
            )));
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(bad("timeouts must be at least 1 ms".into()));
        }
        if self.activation_batch_max == 0 || self.activation_writers == 0 {
            return Err(bad(
                "activation_batch_max and activation_writers must be at least 1".into(),
            ));
        }
        Ok(Checked {
            url,
            address: (host, port),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            batch_max: self.activation_batch_max,
            batch_window: Duration::from_millis(self.activation_batch_window_ms),
            writers: self.activation_writers,
        })
    }
}

/// CouchDB's rule for database names, applied to the prefix.
fn valid_prefix(prefix: &str) -> bool {
    prefix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_$()+-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c = CouchConfig::default().check().unwrap();
        assert_eq!(c.address, ("127.0.0.1".to_string(), 5984));
        assert!(!format!("{:?}", CouchConfig::default()).contains("password: \"whisk\""));

        let parsed: CouchConfig =
            serde_json::from_value(serde_json::json!({"url": "http://couch:7000"})).unwrap();
        assert_eq!(parsed.db_prefix, "whisk_local_");
        assert_eq!(parsed.check().unwrap().address, ("couch".to_string(), 7000));

        for bad in [
            CouchConfig {
                url: "https://x".into(),
                ..Default::default()
            },
            CouchConfig {
                url: "not a url".into(),
                ..Default::default()
            },
            CouchConfig {
                db_prefix: "Whisk_".into(),
                ..Default::default()
            },
            CouchConfig {
                db_prefix: "".into(),
                ..Default::default()
            },
            CouchConfig {
                activation_writers: 0,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.check(), Err(StoreError::Unavailable(m)) if m.contains("configuration")),
                "{bad:?}"
            );
        }
    }
}
