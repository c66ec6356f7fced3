//! `whisk status`: the health of every service of a platform — controller, each invoker
//! (state and free memory, as the controller sees them from their pings), directory, Kafka,
//! CouchDB, Redis — as a table for an operator or as JSON (`--json`) for scripts. Exits 1 when
//! anything is down or unhealthy.
//!
//! Addresses come from the settings the services themselves read (`-c FILE`, then `WHISK_*`
//! variables; see docs/configuration.md), overridden by flags named as the services' own
//! (`--kafka`, `--couchdb`, `--directory`, `--redis`). Each service is probed directly with the
//! project's own clients, concurrently, each within `--timeout-ms`:
//!
//! - controller: `GET /api/v1`, then `GET /invokers/details` (OpenWhisk's `GET /invokers`
//!   when the controller has no details);
//! - Kafka: the bus ensures topic `health` (what every controller does on start);
//! - CouchDB: [`CouchStore::ping`] (the server answers and takes the credentials);
//! - directory: a gRPC watch answers its first snapshot (over TLS with the invoker's client
//!   certificate, `invoker.directory_ca/cert/key`, when the directory serves TLS);
//! - Redis: `PING`.
//!
//! A backend the settings keep inside the platform's process (standalone's embedded store,
//! in-process bus, in-process directory) is reported `embedded`; Redis, when the directory
//! keeps its state in memory, `unused`.

use crate::error::Failure;
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use whisk_bus::{Bus, KafkaBus};
use whisk_directory::{BackendKind, DirectoryClient, PeerDirectory};
use whisk_serve::settings::{BusBackend, StoreBackend};
use whisk_serve::Settings;
use whisk_store::CouchStore;

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
    let (mut checks, directory, kafka, couchdb, redis) = tokio::join!(
        controller(&t.controller, t.timeout),
        directory(t.directory.as_deref(), t.directory_tls.as_ref(), t.timeout),
        kafka(t.kafka.as_ref(), t.timeout),
        couchdb(t.couchdb.as_ref(), &t.embedded_db, t.timeout),
        redis(t.redis.as_deref(), t.timeout),
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

/// Runs `probe` within `timeout`; a timeout is an error saying so.
async fn bounded<T, E: std::error::Error>(
    timeout: Duration,
    probe: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, probe).await {
        Ok(r) => r.map_err(|e| chain(&e)),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// An error with its causes (`a: b: c`), as reqwest and tonic hide the useful part there.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn controller(base: &str, timeout: Duration) -> Vec<Check> {
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(h) => h,
        Err(e) => return vec![Check::new("controller", "down", Some(base), chain(&e))],
    };
    let get = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        async move {
            let resp = req.send().await?.error_for_status()?;
            resp.json::<Value>().await
        }
    };
    let info = match get("/api/v1").await {
        Ok(v) => v,
        Err(e) => {
            return vec![Check::new(
                "controller",
                "down",
                Some(base),
                format!("GET /api/v1: {}", chain(&e)),
            )]
        }
    };
    let build = info
        .get("buildno")
        .or_else(|| info.get("build"))
        .and_then(Value::as_str)
        .unwrap_or("OpenWhisk API")
        .to_string();
    let invokers = match get("/invokers/details").await {
        Ok(Value::Array(list)) => Ok(list.iter().map(invoker_check).collect::<Vec<_>>()),
        // Not a whisk-rs controller: OpenWhisk's map of states.
        _ => get("/invokers").await.map(|v| {
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
            format!("{build}; GET /invokers: {}", chain(&e)),
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

async fn directory(
    addr: Option<&str>,
    tls: Option<&whisk_directory::TlsFiles>,
    timeout: Duration,
) -> Check {
    let Some(addr) = addr else {
        return Check::new(
            "directory",
            "embedded",
            None,
            "in the invoker's process (no directory_url)",
        );
    };
    let probe = async {
        let client = DirectoryClient::connect_within_tls(addr, timeout, tls).await?;
        let mut maps = client.watch("whisk.system", "whisk-status").await?;
        match maps.next().await {
            Some(_) => Ok(()),
            None => Err(whisk_directory::DirectoryError::Unavailable(
                "the watch ended without a snapshot".into(),
            )),
        }
    };
    match bounded(timeout, probe).await {
        Ok(()) => Check::new("directory", "up", Some(addr), "answers a watch"),
        Err(e) => Check::new("directory", "down", Some(addr), e),
    }
}

async fn kafka(cfg: Option<&whisk_bus::KafkaConfig>, timeout: Duration) -> Check {
    let Some(cfg) = cfg else {
        return Check::new(
            "kafka",
            "embedded",
            None,
            "in-process bus (bus = \"memory\")",
        );
    };
    let addr = Some(cfg.brokers.as_str());
    let probe = async {
        let bus = KafkaBus::new(cfg.clone())?;
        bus.ensure_topic(whisk_proto::HEALTH_TOPIC).await
    };
    match bounded(timeout + Duration::from_secs(1), probe).await {
        Ok(()) => Check::new("kafka", "up", addr, "brokers answer (topic health)"),
        Err(e) => Check::new("kafka", "down", addr, e),
    }
}

async fn couchdb(
    cfg: Option<&whisk_store::CouchConfig>,
    embedded: &std::path::Path,
    timeout: Duration,
) -> Check {
    let Some(cfg) = cfg else {
        let file = embedded.display().to_string();
        return Check::new(
            "couchdb",
            "embedded",
            Some(&file),
            "embedded store (store = \"embedded\")",
        );
    };
    let addr = Some(cfg.url.as_str());
    match bounded(timeout + Duration::from_secs(1), CouchStore::ping(cfg)).await {
        Ok(what) => Check::new("couchdb", "up", addr, what),
        Err(e) => Check::new("couchdb", "down", addr, e),
    }
}

async fn redis(url: Option<&str>, timeout: Duration) -> Check {
    let Some(url) = url else {
        return Check::new(
            "redis",
            "unused",
            None,
            "the directory keeps its state in memory (directory.backend = \"memory\")",
        );
    };
    let probe = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| format!("redis {}", v.trim()))
            .unwrap_or(pong);
        Ok::<_, redis::RedisError>(version)
    };
    match bounded(timeout, probe).await {
        Ok(what) => Check::new("redis", "up", Some(url), what),
        Err(e) => Check::new("redis", "down", Some(url), e),
    }
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
