//! Every setting of a whisk process, with defaults, loaded with the `config` crate: built-in
//! defaults, then an optional TOML file, then `WHISK_*` environment variables (nested keys
//! joined by `__`, e.g. `WHISK_CONTROLLER__INVOCATIONS_PER_MINUTE=1000`,
//! `WHISK_INVOKER__USER_MEMORY_MB=8192`). `docs/configuration.md` lists them.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use whisk_bus::KafkaConfig;
use whisk_controller::ControllerConfig;
use whisk_directory::DirectoryConfig;
use whisk_gateway::GatewayConfig;
use whisk_invoker::{DockerConfig, InvokerConfig};
use whisk_store::CouchConfig;

/// Where actions, activations and subjects live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// A redb file in the data dir (one process only).
    #[default]
    Embedded,
    /// A CouchDB-compatible server (`couchdb.*`).
    Couchdb,
}

/// How controllers and invokers exchange messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusBackend {
    /// Channels inside one process (standalone only).
    #[default]
    Memory,
    /// A Kafka-protocol broker (`kafka.*`).
    Kafka,
}

/// Where actions run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Local action proxy processes, one loopback IP each.
    #[default]
    Process,
    /// Docker containers (`docker.*`).
    Docker,
}

/// All settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address of the REST API.
    pub listen: String,
    /// Serve HTTPS here through the gateway in front of the API (`--tls`).
    pub tls_listen: Option<std::net::SocketAddr>,
    /// Folder for the database and peer maps (default `$HOME/.whisk`).
    pub data_dir: Option<PathBuf>,
    /// Python interpreter for actions (default: Debian's `/usr/bin/python3` when present).
    pub python: Option<String>,
    /// Command that starts an action proxy (default: `whisk-proxy` beside the binary, else
    /// `whisk proxy`).
    pub proxy_command: Option<Vec<String>>,
    /// Give actions `__OW_API_HOST` = the address the API listens on.
    pub invoker_api_host_from_listen: bool,
    /// `embedded` (default) or `couchdb`.
    pub store: StoreBackend,
    /// CouchDB settings (`store = "couchdb"`).
    pub couchdb: CouchConfig,
    /// `memory` (default) or `kafka`.
    pub bus: BusBackend,
    /// With `bus = "memory"`: keep the activation messages in `<data>/bus` until their records
    /// are stored, so that a standalone killed and restarted on the same folder runs (or, if
    /// they had started, finishes with a whisk error) the activations it had accepted.
    /// Default true.
    pub durable_bus: bool,
    /// Kafka settings (`bus = "kafka"`).
    pub kafka: KafkaConfig,
    /// `process` (default) or `docker`.
    pub runtime: Runtime,
    /// Docker settings (`runtime = "docker"`).
    pub docker: DockerConfig,
    /// Gateway settings (`whisk gateway`).
    pub gateway: GatewayConfig,
    /// Controller settings.
    pub controller: ControllerConfig,
    /// Invoker settings.
    pub invoker: InvokerConfig,
    /// Address of an external directory service (`whisk directory`); default: in-process.
    pub directory_url: Option<String>,
    /// Directory settings (standalone runs it in-process; only the lease timings apply).
    pub directory: DirectoryConfig,
    /// Feed provider settings.
    pub feeds: whisk_feeds::FeedsSettings,
    /// Serve Prometheus' `/metrics` of this process's roles here (an internal address; the
    /// controller serves it on its API port as well). Default: none.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Web console settings (`/console`: the trace UI's URL template).
    pub console: whisk_console::ConsoleConfig,
}

/// The platform's default `controller.invocations_per_minute` (OpenWhisk's is 60).
const INVOCATIONS_PER_MINUTE: u32 = 60_000;
/// The platform's default `controller.concurrent_invocations` (OpenWhisk's is 30).
const CONCURRENT_INVOCATIONS: u32 = 1_000;

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3233".into(),
            tls_listen: None,
            data_dir: None,
            python: None,
            proxy_command: None,
            invoker_api_host_from_listen: true,
            // A laptop platform for parallel jobs: OpenWhisk's 60/min and 30 in flight would
            // stop a 64-instance gang (the seed raised them to 216000 for the same reason).
            controller: ControllerConfig {
                invocations_per_minute: INVOCATIONS_PER_MINUTE,
                concurrent_invocations: CONCURRENT_INVOCATIONS,
                ..ControllerConfig::default()
            },
            invoker: InvokerConfig::default(),
            directory_url: None,
            runtime: Runtime::default(),
            docker: DockerConfig::default(),
            gateway: GatewayConfig::default(),
            store: StoreBackend::default(),
            couchdb: CouchConfig::default(),
            bus: BusBackend::default(),
            durable_bus: true,
            kafka: KafkaConfig::default(),
            directory: DirectoryConfig::default(),
            feeds: whisk_feeds::FeedsSettings::default(),
            metrics_listen: None,
            console: whisk_console::ConsoleConfig::default(),
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the `WHISK_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, config::ConfigError> {
        // Defaults of keys whose value differs from their section's own default, given per
        // key: a file or variable that sets another key of the section keeps them.
        let mut b = config::Config::builder()
            .set_default("controller.invocations_per_minute", INVOCATIONS_PER_MINUTE)?
            .set_default("controller.concurrent_invocations", CONCURRENT_INVOCATIONS)?;
        if let Some(f) = file {
            b = b.add_source(config::File::from(f));
        }
        let env_source = config::Environment::with_prefix("WHISK")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(" ")
            .with_list_parse_key("proxy_command")
            .source(Some(env.clone()));
        b = b.add_source(env_source);
        b.build()?.try_deserialize()
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".whisk")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let env: HashMap<String, String> = [
            ("WHISK_LISTEN", "127.0.0.1:0"),
            ("WHISK_CONTROLLER__INVOCATIONS_PER_MINUTE", "5000"),
            ("WHISK_INVOKER__USER_MEMORY_MB", "1024"),
            ("UNRELATED", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = Settings::load(None, &env).unwrap();
        assert_eq!(s.listen, "127.0.0.1:0");
        assert_eq!(s.controller.invocations_per_minute, 5000);
        // Another key of the same section keeps the platform's default.
        assert_eq!(s.controller.concurrent_invocations, CONCURRENT_INVOCATIONS);
        assert_eq!(s.invoker.user_memory_mb, 1024);
        assert_eq!(s.invoker.stem_cells.len(), 2);
    }
}
