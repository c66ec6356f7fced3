//! Invoker settings. Every field has a default; the `whisk` binary loads them with the
//! `config` crate (file, then `WHISK_INVOKER__*` environment variables).

use serde::Deserialize;
use std::time::Duration;

/// Prewarmed containers to keep for one kind.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct StemCell {
    /// Canonical kind, e.g. `python:3`.
    pub kind: String,
    /// How many to keep ready.
    pub count: usize,
    /// Memory of each, MB.
    #[serde(default = "default_stem_memory")]
    pub memory: u64,
}

impl StemCell {
    /// The runtime kinds' own stems (`whisk_core::kinds::KINDS`: python:3 ×2, nodejs:20 ×1).
    pub fn defaults() -> Vec<StemCell> {
        whisk_core::kinds::stem_cells()
            .map(|k| StemCell {
                kind: k.kind.into(),
                count: k.stem_cells,
                memory: k.memory_mb,
            })
            .collect()
    }
}

fn default_stem_memory() -> u64 {
    whisk_core::limits::MEMORY_DEFAULT_MB
}

/// Settings of one invoker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InvokerConfig {
    /// Invoker id: consumes topic `invoker<id>`.
    pub id: u32,
    /// Memory for action containers, MB.
    pub user_memory_mb: u64,
    /// Most bytes of action documents (code included) the invoker's action cache keeps; the
    /// least recently used go past it (0 keeps nothing: every activation reads the store).
    pub action_cache_mb: u64,
    /// Prewarmed stems [default: [`StemCell::defaults`], from the table of runtime kinds].
    pub stem_cells: Vec<StemCell>,
    /// Idle containers are destroyed after this long unused.
    #[serde(with = "humantime_ms")]
    pub idle_timeout: Duration,
    /// Idle containers are paused after this grace; `None` keeps them running.
    #[serde(with = "humantime_ms_opt")]
    pub pause_grace: Option<Duration>,
    /// Value of `__OW_API_HOST` given to actions.
    pub api_host: String,
    /// Interval of health pings.
    #[serde(with = "humantime_ms")]
    pub ping_interval: Duration,
    /// Folder for peer maps: `<data_dir>/addrMap/<namespace>/<group>/` (host copies) and
    /// `<data_dir>/containers/<name>/` (each container's folder). Default: a temporary folder.
    pub data_dir: Option<std::path::PathBuf>,
    /// Parent of the containers' own peer-map folders (default: a fresh folder in /dev/shm
    /// when the host has it, else `<data_dir>/containers`).
    pub containers_dir: Option<std::path::PathBuf>,
    /// Lease this invoker holds at the directory, ms (heartbeats every third of it).
    pub peer_lease_ms: u64,
    /// CA that signed the directory's certificate (`ca.crt` of `whisk certs`). With
    /// `directory_cert` and `directory_key`, the invoker speaks TLS to a separate directory and
    /// presents its client certificate (which such a directory requires).
    pub directory_ca: Option<std::path::PathBuf>,
    /// This invoker's client certificate (`whisk certs --client invoker0`).
    pub directory_cert: Option<std::path::PathBuf>,
    /// This invoker's client key.
    pub directory_key: Option<std::path::PathBuf>,
    /// The cluster's peer key (a file of at least 32 characters, `peers.key` of `whisk certs
    /// --peer-key`): each group's secret is HMAC-SHA256 of it over the namespace and group, so
    /// every invoker holding the same file gives a group's instances the same secret. Default:
    /// a random key of this process (groups whose instances all run on this invoker).
    pub peer_key_file: Option<std::path::PathBuf>,
    /// The process runtime's sandbox (`invoker.process.*`).
    pub process: ProcessConfig,
    /// Live logs: how often the lines of a followed activation are sent to its followers,
    /// ms (`live_logs_interval`). Default 100.
    #[serde(with = "humantime_ms")]
    pub live_logs_interval: Duration,
}

/// The process runtime's sandbox: bubblewrap namespaces and cgroup limits
/// (`crate::sandbox`, `crate::cgroup`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ProcessConfig {
    /// Run actions without a sandbox: only for a platform whose every action is trusted by
    /// its operator (one tenant). Without it, a host that cannot sandbox refuses to start.
    pub single_tenant: bool,
    /// The bubblewrap program.
    pub bwrap: std::path::PathBuf,
    /// Host uid and gid the containers run as when the invoker runs as root.
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// Most processes and threads in one container (cgroup `pids.max`).
    pub pids_max: u64,
    /// The cgroup (below each hierarchy's root) that holds the containers' cgroups.
    pub cgroup_parent: String,
    /// When root, remount the host's cgroup2 hierarchy with `favordynmods` (Linux >= 6.0):
    /// moving a new container into its cgroup otherwise waits for an RCU grace period (7-15 ms
    /// here). Off by default: it changes a host-wide setting (every fork and exit on the host
    /// pays a little), which the operator decides, not the platform.
    pub favor_dynmods: bool,
    /// Addresses of the action proxies: an IPv4 subnet (`10.232.3.0/24`) that the host treats
    /// as its own (`ip route add local 10.232.3.0/24 dev lo`) and other hosts route to it, so
    /// that instances on different hosts reach each other at the addresses in their peer maps
    /// (the ansible netns environment). Default: none, loopback addresses 127.1.0.1 onwards.
    pub subnet: Option<String>,
}

impl ProcessConfig {
    /// First address and size of [`ProcessConfig::subnet`], or of the loopback range
    /// 127.1.0.0 - 127.254.255.255 when none is set; an error says what is wrong with it.
    pub fn address_range(&self) -> Result<(u32, u32), String> {
        let Some(net) = self.subnet.as_deref() else {
            return Ok((0x7f01_0000, 0x00fe_0000));
        };
        let bad = || {
            format!("invoker.process.subnet '{net}' is not an IPv4 subnet like 10.232.3.0/24 (prefix 8 to 30)")
        };
        let (ip, len) = net.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv4Addr = ip.trim().parse().map_err(|_| bad())?;
        let len: u32 = len.trim().parse().map_err(|_| bad())?;
        if !(8..=30).contains(&len) {
            return Err(bad());
        }
        let size = 1u32 << (32 - len);
        Ok((u32::from(ip) & !(size - 1), size))
    }
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            single_tenant: false,
            bwrap: "bwrap".into(),
            uid: 65534,
            gid: 65534,
            pids_max: 512,
            cgroup_parent: "whisk".into(),
            favor_dynmods: false,
            subnet: None,
        }
    }
}

impl Default for InvokerConfig {
    fn default() -> Self {
        Self {
            id: 0,
            user_memory_mb: 16384,
            action_cache_mb: crate::actions::DEFAULT_MAX_BYTES / (1024 * 1024),
            stem_cells: StemCell::defaults(),
            idle_timeout: Duration::from_secs(600),
            pause_grace: None,
            api_host: "http://127.0.0.1:3233".into(),
            ping_interval: Duration::from_secs(1),
            data_dir: None,
            containers_dir: None,
            peer_lease_ms: 300,
            directory_ca: None,
            directory_cert: None,
            directory_key: None,
            peer_key_file: None,
            process: ProcessConfig::default(),
            live_logs_interval: crate::live::LIVE_INTERVAL_DEFAULT,
        }
    }
}

impl InvokerConfig {
    /// The TLS files of this invoker's directory client (`None`: plain gRPC, for a directory
    /// on loopback); a partial set is an error.
    pub fn directory_tls(
        &self,
    ) -> Result<Option<whisk_directory_api::TlsFiles>, whisk_directory_api::DirectoryError> {
        whisk_directory_api::TlsFiles::from_parts(
            "invoker.directory_*",
            self.directory_ca.as_deref(),
            self.directory_cert.as_deref(),
            self.directory_key.as_deref(),
        )
    }
}

/// Durations as integer milliseconds in configuration.
mod humantime_ms {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Optional durations as integer milliseconds (absent or 0 = none).
mod humantime_ms_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::ProcessConfig;

    #[test]
    fn proxy_address_ranges() {
        let range = |s: Option<&str>| {
            ProcessConfig {
                subnet: s.map(str::to_owned),
                ..ProcessConfig::default()
            }
            .address_range()
        };
        assert_eq!(range(None), Ok((0x7f01_0000, 0x00fe_0000)));
        assert_eq!(range(Some("10.232.3.0/24")), Ok((0x0ae8_0300, 256)));
        // Host bits are ignored.
        assert_eq!(range(Some("10.232.3.7/24")), Ok((0x0ae8_0300, 256)));
        for bad in [
            "10.232.3.0",
            "10.232.3.0/31",
            "x/24",
            "10.232.3.0/abc",
            "::1/64",
        ] {
            assert!(range(Some(bad)).is_err(), "{bad}");
        }
    }
}
