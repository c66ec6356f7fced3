//! [`DirectoryConfig`]: the settings of a directory service, with every key and default in one
//! place. It deserializes from any serde source (the `config` crate: file, then `WHISK_*`
//! environment), and [`Default`] is a working local directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::DirectoryError;
use crate::tls::TlsFiles;

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
    /// CA whose client certificates are accepted (`ca.crt` of `whisk certs`). With
    /// `tls_cert` and `tls_key`: gRPC over TLS, and every client must present a certificate.
    pub tls_ca: Option<PathBuf>,
    /// The server's certificate chain (`whisk certs --name directory directory`).
    pub tls_cert: Option<PathBuf>,
    /// The server's private key.
    pub tls_key: Option<PathBuf>,
    /// Serve without TLS on a non-loopback address (anyone who reaches it can register,
    /// deregister and watch). Default false: such a bind is refused.
    pub insecure: bool,
    /// Most groups the in-memory backend holds (a group is forgotten when it empties); a
    /// register that would create one more is refused. Default 100 000.
    pub max_groups: usize,
    /// Most instances in one group (in-memory backend). Default 4096.
    pub max_group_peers: usize,
    /// Most watch streams open at once on this directory; more are refused. Default 65 536.
    pub max_watchers: usize,
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
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            insecure: false,
            max_groups: crate::memory::MAX_GROUPS_DEFAULT,
            max_group_peers: crate::memory::MAX_GROUP_PEERS_DEFAULT,
            max_watchers: MAX_WATCHERS_DEFAULT,
        }
    }
}

impl DirectoryConfig {
    /// The server's TLS files; `None` without TLS. Refuses a partial set, and a listen address
    /// that is not loopback without TLS unless `insecure`.
    pub fn server_tls(&self) -> Result<Option<TlsFiles>, DirectoryError> {
        let tls = TlsFiles::from_parts(
            "directory",
            self.tls_ca.as_deref(),
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
        )?;
        if tls.is_none() && !self.listen.ip().is_loopback() && !self.insecure {
            return Err(DirectoryError::Config(format!(
                "refusing to serve the directory on {} without TLS: anyone who reaches it could \
                 register, deregister and watch peers. Give --tls-ca, --tls-cert and --tls-key \
                 (made by `whisk certs`), listen on a loopback address, or pass --insecure",
                self.listen
            )));
        }
        Ok(tls)
    }

    /// The registry timings of this configuration.
    pub fn registry_options(&self) -> RegistryOptions {
        RegistryOptions {
            default_lease: Duration::from_millis(self.lease_ms.max(1)),
            max_lease: Duration::from_millis(self.max_lease_ms.max(self.lease_ms).max(1)),
            sweep_interval: Duration::from_millis(self.sweep_ms.clamp(1, 50)),
            max_groups: self.max_groups.max(1),
            max_group_peers: self.max_group_peers.max(1),
            max_watchers: self.max_watchers.max(1),
        }
    }
}

/// Default most watch streams open at once on one directory.
pub const MAX_WATCHERS_DEFAULT: usize = 65_536;

/// Timings and limits of a [`crate::Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Lease of a heartbeat that asks for none.
    pub default_lease: Duration,
    /// Cap on the lease a heartbeat can ask for.
    pub max_lease: Duration,
    /// Period of the lease sweeper (at most 50 ms).
    pub sweep_interval: Duration,
    /// Most groups (in-memory backend).
    pub max_groups: usize,
    /// Most instances per group (in-memory backend).
    pub max_group_peers: usize,
    /// Most watch streams open at once.
    pub max_watchers: usize,
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

    #[test]
    fn public_bind_needs_tls_or_insecure() {
        let mut c = DirectoryConfig::default();
        assert_eq!(
            c.server_tls().unwrap(),
            None,
            "loopback without TLS is fine"
        );
        c.listen = "0.0.0.0:7070".parse().unwrap();
        let e = c.server_tls().unwrap_err();
        assert!(e.to_string().contains("without TLS"), "{e}");
        c.insecure = true;
        assert_eq!(c.server_tls().unwrap(), None);
        c.insecure = false;
        c.tls_ca = Some("/c/ca.crt".into());
        c.tls_cert = Some("/c/directory.crt".into());
        assert!(c.server_tls().is_err(), "no key");
        c.tls_key = Some("/c/directory.key".into());
        assert_eq!(
            c.server_tls().unwrap().unwrap().key,
            PathBuf::from("/c/directory.key")
        );
        c.listen = "[::1]:7070".parse().unwrap();
        c.tls_ca = None;
        c.tls_cert = None;
        c.tls_key = None;
        assert_eq!(c.server_tls().unwrap(), None);
    }
}
