//! `whisk status`: the health of every service of a platform — controller, each invoker
//! (state and free memory, as the controller sees them from their pings), directory, Kafka,
//! CouchDB, Redis — as a table for an operator or as JSON (`--json`) for scripts. Exits 1 when
//! anything is down or unhealthy.
//!
//! Addresses come from the settings the services themselves read (`-c FILE`, then `WHISK_*`
//! variables; see docs/configuration.md), overridden by flags named as the services' own
//! (`--kafka`, `--couchdb`, `--directory`, `--redis`). Each service is probed through the
//! [`Health`] probe of its seam (`whisk_core::health`), concurrently, each within
//! `--timeout-ms`. Probes only read: nothing is created or written anywhere.
//!
//! - controller: [`ControllerHealth`], `GET /api/v1`; then `GET /invokers/details`
//!   (OpenWhisk's `GET /invokers` when the controller has no details);
//! - Kafka: [`KafkaHealth`], a metadata request (brokers and topics; no topic is created);
//! - CouchDB: [`CouchHealth`], the server answers and takes the credentials, and which of the
//!   store's databases exist; the embedded store: [`EmbeddedHealth`], its file is a readable
//!   redb database;
//! - directory: [`DirectoryHealth`], a gRPC watch answers its first snapshot (over TLS with the
//!   invoker's client certificate, `invoker.directory_ca/cert/key`, when the directory serves
//!   TLS);
//! - Redis: [`RedisHealth`], `PING` and `INFO server`.
//!
//! A backend the settings keep inside the platform's process (standalone's embedded store,
//! in-process bus, in-process directory) is reported `embedded`; Redis, when the directory
//! keeps its state in memory, `unused`.

use crate::error::Failure;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use whisk_bus::KafkaHealth;
use whisk_core::health::{error_chain, Checked, Health};
use whisk_directory::{BackendKind, DirectoryHealth, RedisHealth};
use whisk_serve::settings::{BusBackend, StoreBackend};
use whisk_serve::Settings;
use whisk_store::{CouchHealth, EmbeddedHealth};

/// Flags of `whisk status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The services' TOML settings file (see docs/configuration.md).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Controller URL [default: http:// + the `listen` setting].
    #[arg(long, value_name = "URL")]
    pub controller: Option<String>,
    /// Kafka brokers, host:port[,host:port] [default: `kafka.brokers` when `bus = "kafka"`].
    #[arg(long, value_name = "BROKERS")]
    pub kafka: Option<String>,
    /// CouchDB URL [default: `couchdb.url` when `store = "couchdb"`].
    #[arg(long, value_name = "URL")]
    pub couchdb: Option<String>,
    /// Directory service address [default: the `directory_url` setting].
    #[arg(long, value_name = "ADDR")]
    pub directory: Option<String>,
    /// Redis URL [default: `directory.redis_url` when `directory.backend = "redis"`].
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// How long each probe may take, ms.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
}

/// Default bound of each probe, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;

impl Default for StatusArgs {
    fn default() -> Self {
        Self {
            config: None,
            controller: None,
            kafka: None,
            couchdb: None,
            directory: None,
            redis: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }
}

/// The health of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `controller`, `invoker<N>`, `directory`, `kafka`, `couchdb`, `redis`.
    pub service: String,
    /// `up`, `down`, `unhealthy` (an invoker that pings but is not healthy), `embedded` or
    /// `unused`; invokers may also show any other state word their controller reports.
    pub state: String,
    /// Where it was looked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// What it said, or why it is down.
    pub detail: String,
    /// Invokers: memory budget of action containers, MB.
    #[serde(rename = "userMemoryMB", skip_serializing_if = "Option::is_none")]
    pub user_memory_mb: Option<u64>,
    /// Invokers: memory not taken by containers, MB.
    #[serde(rename = "freeMemoryMB", skip_serializing_if = "Option::is_none")]
    pub free_memory_mb: Option<u64>,
}

impl Check {
    fn new(service: &str, state: &str, address: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            service: service.to_string(),
            state: state.to_string(),
            address: address.map(str::to_string),
            detail: detail.into(),
            user_memory_mb: None,
            free_memory_mb: None,
        }
    }

    /// True for `up`, `embedded` and `unused`.
    pub fn is_ok(&self) -> bool {
        matches!(self.state.as_str(), "up" | "embedded" | "unused")
    }
}

/// What to probe, resolved from settings and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Controller base URL.
    pub controller: String,
    /// Kafka settings; `None`: the in-process bus.
    pub kafka: Option<whisk_bus::KafkaConfig>,
    /// CouchDB settings; `None`: the embedded store (its file).
    pub couchdb: Option<whisk_store::CouchConfig>,
    /// The embedded store's file.
    pub embedded_db: PathBuf,
    /// Directory address; `None`: in the invoker's process.
    pub directory: Option<String>,
    /// The client certificate for a directory that serves TLS (`invoker.directory_*`).
    pub directory_tls: Option<whisk_directory::TlsFiles>,
    /// Redis URL; `None`: the directory keeps its state in memory.
    pub redis: Option<String>,
    /// Bound of each probe.
    pub timeout: Duration,
}

impl Targets {
    /// Settings from `args.config` and the `WHISK_*` variables of `env`, then the flags.
    pub fn resolve(args: &StatusArgs, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let s = Settings::load(args.config.as_deref(), env)?;
        let timeout = Duration::from_millis(args.timeout_ms.max(1));
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let controller = match &args.controller {
            Some(c) => c.trim_end_matches('/').to_string(),
            None => format!("http://{}", s.listen.replace("0.0.0.0", "127.0.0.1")),
        };
        let kafka = match (&args.kafka, s.bus) {
            (Some(brokers), _) => Some(s.kafka.clone()).map(|mut k| {
                k.brokers = brokers.clone();
                k
            }),
            (None, BusBackend::Kafka) => Some(s.kafka.clone()),
            (None, BusBackend::Memory) => None,
        }
        .map(|mut k| {
            k.request_timeout_ms = ms;
            k
        });
        let couchdb = match (&args.couchdb, s.store) {
            (Some(url), _) => Some(s.couchdb.clone()).map(|mut c| {
                c.url = url.clone();
                c
            }),
            (None, StoreBackend::Couchdb) => Some(s.couchdb.clone()),
            (None, StoreBackend::Embedded) => None,
        }
        .map(|mut c| {
            c.request_timeout_ms = u64::from(ms);
            c
        });
        let redis = match (&args.redis, s.directory.backend) {
            (Some(url), _) => Some(url.clone()),
            (None, BackendKind::Redis) => Some(s.directory.redis_url.clone()),
            (None, BackendKind::Memory) => None,
        };
        Ok(Self {
            controller,
            kafka,
            couchdb,
            embedded_db: s.data_dir().join("whisk.redb"),
            directory: args.directory.clone().or(s.directory_url.clone()),
            directory_tls: s.invoker.directory_tls()?,
            redis,
            timeout,
        })
    }
}

/// Runs `whisk status`: prints the table (or JSON) and fails (exit 1) when anything is down.
pub async fn run(
    args: &StatusArgs,
    json: bool,
    env: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let targets = Targets::resolve(args, env)?;
    let checks = probe_all(&targets).await;
    if json {
        let healthy = checks.iter().all(Check::is_ok);
        crate::output::print_json(&serde_json::json!({"healthy": healthy, "services": checks}));
    } else {
        print!("{}", table(&checks));
    }
    let bad: Vec<&str> = checks
        .iter()
        .filter(|c| !c.is_ok())
        .map(|c| c.service.as_str())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Failure::general(format!("not healthy: {}", bad.join(", "))).into())
    }
}

/// Probes every service at once; controller and invokers first, then directory, Kafka,
/// CouchDB, Redis.
pub async fn probe_all(t: &Targets) -> Vec<Check> {
    let timeout = t.timeout;
    // The Kafka and CouchDB clients bound their own requests by `timeout`: one more second
    // here lets them say why they failed.
    let slack = timeout + Duration::from_secs(1);
    let directory = async {
        match &t.directory {
            Some(addr) => {
                let probe = DirectoryHealth::new(addr, t.directory_tls.clone(), timeout);
                probed("directory", "up", &probe, timeout).await
            }
            None => Check::new(
                "directory",
                "embedded",
                None,
                "in the invoker's process (no directory_url)",
            ),
        }
    };
    let kafka = async {
        match &t.kafka {
            Some(cfg) => probed("kafka", "up", &KafkaHealth::new(cfg.clone()), slack).await,
            None => Check::new(
                "kafka",
                "embedded",
                None,
                "in-process bus (bus = \"memory\")",
            ),
        }
    };
    let couchdb = async {
        match &t.couchdb {
            Some(cfg) => probed("couchdb", "up", &CouchHealth::new(cfg.clone()), slack).await,
            None => {
                let probe = EmbeddedHealth::new(&t.embedded_db);
                let mut c = probed("couchdb", "embedded", &probe, timeout).await;
                if c.is_ok() {
                    c.detail = format!("embedded store (store = \"embedded\"), {}", c.detail);
                }
                c
            }
        }
    };
    let redis = async {
        match &t.redis {
            Some(url) => probed("redis", "up", &RedisHealth::new(url, timeout), timeout).await,
            None => Check::new(
                "redis",
                "unused",
                None,
                "the directory keeps its state in memory (directory.backend = \"memory\")",
            ),
        }
    };
    let (mut checks, directory, kafka, couchdb, redis) = tokio::join!(
        controller(&t.controller, timeout),
        directory,
        kafka,
        couchdb,
        redis,
    );
    checks.extend([directory, kafka, couchdb, redis]);
    checks
}

/// The operator's table: service, state, address, detail.
pub fn table(checks: &[Check]) -> String {
    let rows: Vec<[&str; 4]> = checks
        .iter()
        .map(|c| {
            [
                c.service.as_str(),
                c.state.as_str(),
                c.address.as_deref().unwrap_or("-"),
                c.detail.as_str(),
            ]
        })
        .collect();
    let header = ["SERVICE", "STATE", "ADDRESS", "DETAIL"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows) {
        let line = format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The row of `service` from `probe` (within `timeout`): `ok_state` when it answers, else
/// `down` with the reason.
async fn probed(service: &str, ok_state: &str, probe: &dyn Health, timeout: Duration) -> Check {
    let address = probe.address();
    let (state, detail) = match tokio::time::timeout(timeout, probe.check()).await {
        Ok(Ok(detail)) => (ok_state, detail),
        Ok(Err(reason)) => ("down", reason),
        Err(_) => ("down", format!("no answer within {timeout:?}")),
    };
    Check::new(service, state, Some(&address), detail)
}

/// The controller's probe: `GET /api/v1` answers OpenWhisk's API description; the detail is
/// its build. Its client also reads the invokers' states for the table.
pub struct ControllerHealth {
    base: String,
    http: reqwest::Client,
}

impl ControllerHealth {
    /// The controller at `base` (`http://host:port`), each request bounded by `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| error_chain(&e))?;
        Ok(Self {
            base: base.to_string(),
            http,
        })
    }

    async fn get(&self, path: &str) -> Result<Value, reqwest::Error> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .error_for_status()?;
        resp.json::<Value>().await
    }
}

#[async_trait]
impl Health for ControllerHealth {
    fn name(&self) -> &str {
        "controller"
    }

    fn address(&self) -> String {
        self.base.clone()
    }

    async fn check(&self) -> Checked {
        let info = self
            .get("/api/v1")
            .await
            .map_err(|e| format!("GET /api/v1: {}", error_chain(&e)))?;
        Ok(info
            .get("buildno")
            .or_else(|| info.get("build"))
            .and_then(Value::as_str)
            .unwrap_or("OpenWhisk API")
            .to_string())
    }
}

/// The controller's row, then one per invoker it knows.
async fn controller(base: &str, timeout: Duration) -> Vec<Check> {
    let probe = match ControllerHealth::new(base, timeout) {
        Ok(p) => p,
        Err(e) => return vec![Check::new("controller", "down", Some(base), e)],
    };
    let build = match probe.check().await {
        Ok(build) => build,
        Err(reason) => return vec![Check::new("controller", "down", Some(base), reason)],
    };
    let invokers = match probe.get("/invokers/details").await {
        Ok(Value::Array(list)) => Ok(list.iter().map(invoker_check).collect::<Vec<_>>()),
        // Not a whisk-rs controller: OpenWhisk's map of states.
        _ => probe.get("/invokers").await.map(|v| {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(name, state)| {
                            Check::new(&invoker_name(name), state.as_str().unwrap_or("?"), None, "")
                        })
                        .collect()
                })
                .unwrap_or_default()
        }),
    };
    let mut checks = vec![];
    match invokers {
        Ok(list) => {
            let healthy = list.iter().filter(|c| c.state == "up").count();
            checks.push(Check::new(
                "controller",
                "up",
                Some(base),
                format!("{build}, {healthy} of {} invokers up", list.len()),
            ));
            if list.is_empty() {
                checks.push(Check::new(
                    "invokers",
                    "down",
                    None,
                    "no invoker has pinged this controller",
                ));
            }
            checks.extend(list);
        }
        Err(e) => checks.push(Check::new(
            "controller",
            "unhealthy",
            Some(base),
            format!("{build}; GET /invokers: {}", error_chain(&e)),
        )),
    }
    checks
}

/// `invoker0/0` → `invoker0`.
fn invoker_name(key: &str) -> String {
    key.split('/').next().unwrap_or(key).to_string()
}

/// One entry of `GET /invokers/details`.
fn invoker_check(v: &Value) -> Check {
    let num = |k: &str| v.get(k).and_then(Value::as_u64);
    let name = invoker_name(v.get("name").and_then(Value::as_str).unwrap_or("invoker?"));
    let state = v.get("state").and_then(Value::as_str).unwrap_or("?");
    let (user, free) = (num("userMemoryMB"), num("freeMemoryMB"));
    let ping = match num("lastPingMsAgo") {
        None => "never pinged this controller".to_string(),
        Some(ms) if ms < 10_000 => format!("last ping {ms} ms ago"),
        Some(ms) => format!("last ping {} s ago", ms / 1000),
    };
    let detail = if state == "up" || state == "unhealthy" {
        format!(
            "free {} of {} MB, {} containers, {ping}",
            free.unwrap_or(0),
            user.unwrap_or(0),
            num("containers").unwrap_or(0)
        )
    } else {
        ping
    };
    let mut c = Check::new(&name, state, None, detail);
    if state == "up" || state == "unhealthy" {
        c.user_memory_mb = user;
        c.free_memory_mb = free;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn standalone_settings_mean_embedded_backends() {
        let t = Targets::resolve(&StatusArgs::default(), &env(&[])).unwrap();
        assert_eq!(t.controller, "http://127.0.0.1:3233");
        assert!(t.kafka.is_none() && t.couchdb.is_none() && t.directory.is_none());
        assert!(t.redis.is_none());
    }

    #[test]
    fn settings_then_flags() {
        let e = env(&[
            ("WHISK_LISTEN", "0.0.0.0:4000"),
            ("WHISK_BUS", "kafka"),
            ("WHISK_KAFKA__BROKERS", "k:9092"),
            ("WHISK_STORE", "couchdb"),
            ("WHISK_DIRECTORY__BACKEND", "redis"),
            ("WHISK_DIRECTORY_URL", "d:7070"),
        ]);
        let t = Targets::resolve(&StatusArgs::default(), &e).unwrap();
        assert_eq!(t.controller, "http://127.0.0.1:4000");
        assert_eq!(t.kafka.as_ref().unwrap().brokers, "k:9092");
        assert_eq!(t.kafka.as_ref().unwrap().request_timeout_ms, 3000);
        assert_eq!(t.couchdb.as_ref().unwrap().url, "http://127.0.0.1:5984");
        assert_eq!(t.directory.as_deref(), Some("d:7070"));
        assert_eq!(t.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        let args = StatusArgs {
            controller: Some("http://c:1/".into()),
            kafka: Some("k2:1".into()),
            couchdb: Some("http://c2:2".into()),
            redis: Some("redis://r:3".into()),
            timeout_ms: 500,
            ..Default::default()
        };
        let t = Targets::resolve(&args, &env(&[])).unwrap();
        assert_eq!(t.controller, "http://c:1");
        assert_eq!(t.kafka.unwrap().brokers, "k2:1");
        assert_eq!(t.couchdb.unwrap().request_timeout_ms, 500);
        assert_eq!(t.redis.as_deref(), Some("redis://r:3"));
    }

    #[test]
    fn invoker_details_become_checks() {
        let up = invoker_check(
            &json!({"name": "invoker2/2", "state": "up", "userMemoryMB": 1024,
            "freeMemoryMB": 768, "containers": 2, "lastPingMsAgo": 300}),
        );
        assert_eq!(up.service, "invoker2");
        assert_eq!(up.free_memory_mb, Some(768));
        assert_eq!(
            up.detail,
            "free 768 of 1024 MB, 2 containers, last ping 300 ms ago"
        );
        assert!(up.is_ok());
        let down = invoker_check(&json!({"name": "invoker1/1", "state": "down",
            "userMemoryMB": 1024, "freeMemoryMB": 1024, "lastPingMsAgo": 12_500}));
        assert_eq!(
            (down.state.as_str(), down.detail.as_str()),
            ("down", "last ping 12 s ago")
        );
        assert_eq!(down.free_memory_mb, None);
        assert!(!down.is_ok());
    }

    #[test]
    fn table_aligns_columns() {
        let checks = vec![
            Check::new("controller", "up", Some("http://c"), "ok"),
            Check::new("redis", "unused", None, "memory"),
        ];
        assert_eq!(
            table(&checks),
            "SERVICE     STATE   ADDRESS   DETAIL\n\
             controller  up      http://c  ok\n\
             redis       unused  -         memory\n"
        );
    }

    #[tokio::test]
    async fn unreachable_services_are_down_within_the_timeout() {
        let t = Targets {
            controller: "http://127.0.0.1:1".into(),
            kafka: None,
            couchdb: Some(whisk_store::CouchConfig {
                url: "http://127.0.0.1:1".into(),
                request_timeout_ms: 500,
                ..Default::default()
            }),
            embedded_db: PathBuf::from("x"),
            directory: Some("127.0.0.1:1".into()),
            directory_tls: None,
            redis: Some("redis://127.0.0.1:1".into()),
            timeout: Duration::from_millis(500),
        };
        let started = std::time::Instant::now();
        let checks = probe_all(&t).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        let states: Vec<(&str, &str)> = checks
            .iter()
            .map(|c| (c.service.as_str(), c.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("controller", "down"),
                ("directory", "down"),
                ("kafka", "embedded"),
                ("couchdb", "down"),
                ("redis", "down")
            ]
        );
    }
}
