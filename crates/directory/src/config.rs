//! [`DirectoryConfig`]: the settings of a directory service, with every key and default in one
//! place. It deserializes from any serde source (the `config` crate: file, then `WHISK_*`
//! environment), and [`Default`] is a working local directory.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Where the directory keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In this process only: lost on restart, one directory per cluster.
    #[default]
    Memory,
    /// In Redis (`redis_url`): survives restarts, several directories can share it.
    Redis,
}

/// Settings of a directory service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DirectoryConfig {
    /// The gRPC listen address. Default `127.0.0.1:7070`.
    pub listen: SocketAddr,
    /// `memory` (default) or `redis`.
    pub backend: BackendKind,
    /// Redis to use with `backend = "redis"`. Default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// Lease given by a heartbeat that asks for none (`ttl_ms = 0`), ms. Default 300.
    pub lease_ms: u64,
    /// Longest lease a heartbeat can ask for, ms. Default 60 000.
    pub max_lease_ms: u64,
    /// How often lapsed leases are looked for, ms. Default 50: an invoker's instances are
    /// removed at most lease + 50 ms after its last heartbeat.
    pub sweep_ms: u64,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            backend: BackendKind::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            lease_ms: 300,
            max_lease_ms: 60_000,
            sweep_ms: 50,
        }
    }
}

impl DirectoryConfig {
    /// The registry timings of this configuration.
    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            default_lease: Duration::from_millis(self.lease_ms.max(1)),
            max_lease: Duration::from_millis(self.max_lease_ms.max(self.lease_ms).max(1)),
            sweep_interval: Duration::from_millis(self.sweep_ms.clamp(1, 50)),
        }
    }
}

/// Timings of a [`crate::Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Lease of a heartbeat that asks for none.
    pub default_lease: Duration,
    /// Cap on the lease a heartbeat can ask for.
    pub max_lease: Duration,
    /// Period of the lease sweeper (at most 50 ms).
    pub sweep_interval: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        DirectoryConfig::default().registry_options()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_input() {
        let d = DirectoryConfig::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:7070");
        assert_eq!(d.backend, BackendKind::Memory);
        let c: DirectoryConfig =
            serde_json::from_str(r#"{"backend":"redis","lease_ms":1000}"#).unwrap();
        assert_eq!(c.backend, BackendKind::Redis);
        assert_eq!(c.lease_ms, 1000);
        assert_eq!(c.redis_url, d.redis_url);
        let o = c.registry_options();
        assert_eq!(o.default_lease, Duration::from_millis(1000));
        assert_eq!(o.sweep_interval, Duration::from_millis(50));
        assert!(serde_json::from_str::<DirectoryConfig>(r#"{"backend":"etcd"}"#).is_err());
    }
}
