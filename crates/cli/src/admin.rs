//! `whisk admin`: users, keys and limits, as OpenWhisk's `wskadmin` — straight on the store,
//! never through the REST API.
//!
//! The store is CouchDB with `--couchdb URL` (credentials from `WHISK_COUCHDB__USERNAME` and
//! `WHISK_COUCHDB__PASSWORD`, as the services read them), else the embedded file of
//! `whisk standalone` (`<data-dir>/whisk.redb`; data dir `--data-dir`, else `$WHISK_DATA_DIR`,
//! else `$HOME/.whisk`). While a running standalone holds that file, the same request goes to
//! its unix socket `<data-dir>/admin/admin.sock`, which only the data dir's owner can open.
//! The operations themselves are [`whisk_controller::admin::execute`].

use crate::error::Failure;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use whisk_controller::admin::{execute, AdminRequest, SOCKET_FILE};
use whisk_core::UserLimits;
use whisk_store::{CouchConfig, CouchStore, EmbeddedStore, StoreError};

/// Which store to administer.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Data folder of `whisk standalone` (default: $WHISK_DATA_DIR, else ~/.whisk).
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The CouchDB server of a distributed deployment, e.g. http://127.0.0.1:5984
    /// (user and password from WHISK_COUCHDB__USERNAME / WHISK_COUCHDB__PASSWORD).
    #[arg(long, value_name = "URL", global = true)]
    pub couchdb: Option<String>,
}

/// `whisk admin ...`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage a namespace's limits.
    #[command(subcommand)]
    Limits(LimitsCommand),
}

/// Limits given on the command line.
#[derive(Debug, Clone, clap::Args)]
struct LimitArgs {
    /// Invocations allowed per minute in the namespace.
    #[arg(long, value_name = "N")]
    invocations_per_minute: Option<u32>,
    /// Activations allowed in flight at once in the namespace.
    #[arg(long, value_name = "N")]
    concurrent_invocations: Option<u32>,
    /// Trigger fires allowed per minute in the namespace.
    #[arg(long, value_name = "N")]
    fires_per_minute: Option<u32>,
}

impl From<LimitArgs> for UserLimits {
    fn from(l: LimitArgs) -> Self {
        UserLimits {
            invocations_per_minute: l.invocations_per_minute,
            concurrent_invocations: l.concurrent_invocations,
            fires_per_minute: l.fires_per_minute,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create a user and print its key (`uuid:key`); an existing user's key if it has one.
    Create {
        /// The subject (user name).
        subject: String,
        /// The user's namespace (default: the subject).
        #[arg(long)]
        namespace: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print a user's key (one line `uuid:key<TAB>namespace` per namespace).
    Get {
        /// The subject.
        subject: String,
    },
    /// Delete a user (from every namespace, or one).
    Delete {
        /// The subject.
        subject: String,
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// List the keys of a namespace (`uuid:key<TAB>subject`).
    List {
        /// The namespace.
        namespace: String,
    },
    /// Who owns a key (`uuid:key` or its uuid).
    Whois {
        /// The key.
        key: String,
    },
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    /// Give a user a new key and print it; the old one stops working.
    Regenerate {
        /// The subject.
        subject: String,
        /// Which of its namespaces.
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum LimitsCommand {
    /// Set a namespace's limits (absent ones go back to the system's default).
    Set {
        /// The namespace.
        namespace: String,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print a namespace's limits.
    Get {
        /// The namespace.
        namespace: String,
    },
}

impl AdminCommand {
    fn request(self) -> AdminRequest {
        match self {
            AdminCommand::User(UserCommand::Create {
                subject,
                namespace,
                limits,
            }) => AdminRequest::CreateUser {
                subject,
                namespace,
                limits: limits.into(),
            },
            AdminCommand::User(UserCommand::Get { subject }) => AdminRequest::GetUser { subject },
            AdminCommand::User(UserCommand::Delete { subject, namespace }) => {
                AdminRequest::DeleteUser { subject, namespace }
            }
            AdminCommand::User(UserCommand::List { namespace }) => {
                AdminRequest::ListNamespace { namespace }
            }
            AdminCommand::User(UserCommand::Whois { key }) => AdminRequest::Whois { uuid: key },
            AdminCommand::Key(KeyCommand::Regenerate { subject, namespace }) => {
                AdminRequest::RegenerateKey { subject, namespace }
            }
            AdminCommand::Limits(LimitsCommand::Set { namespace, limits }) => {
                AdminRequest::SetLimits {
                    namespace,
                    limits: limits.into(),
                }
            }
            AdminCommand::Limits(LimitsCommand::Get { namespace }) => {
                AdminRequest::GetLimits { namespace }
            }
        }
    }
}

/// Runs an admin command and prints its answer.
pub async fn run(args: AdminArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    let request = args.command.request();
    let whois = matches!(request, AdminRequest::Whois { .. });
    let answer = match &args.store.couchdb {
        Some(url) => {
            let mut config = CouchConfig {
                url: url.clone(),
                ..CouchConfig::default()
            };
            if let Some(u) = env("WHISK_COUCHDB__USERNAME") {
                config.username = u;
            }
            if let Some(p) = env("WHISK_COUCHDB__PASSWORD") {
                config.password = p;
            }
            if let Some(p) = env("WHISK_COUCHDB__DB_PREFIX").filter(|p| !p.is_empty()) {
                config.db_prefix = p;
            }
            let store = CouchStore::connect(config)
                .await
                .map_err(|e| Failure::general(format!("Cannot use CouchDB at {url}: {e}")))?;
            local(&store, request).await?
        }
        None => {
            let path = store_path(args.store.data_dir, env);
            match EmbeddedStore::open(&path) {
                Ok(store) => local(&store, request).await?,
                Err(e) if is_locked(&e) => {
                    let dir = path.parent().unwrap_or(Path::new("."));
                    through_socket(&dir.join(SOCKET_FILE), &request).await?
                }
                Err(e) => return Err(store_failure(&path, e).into()),
            }
        }
    };
    if whois {
        let field = |k: &str| answer[k].as_str().unwrap_or_default().to_string();
        println!(
            "subject: {}\nnamespace: {}",
            field("subject"),
            field("namespace")
        );
    } else {
        print!("{}", render(&answer));
    }
    Ok(())
}

/// Runs `request` on a store this process opened.
async fn local(store: &dyn whisk_store::Store, request: AdminRequest) -> anyhow::Result<Value> {
    let answer = execute(store, request)
        .await
        .map_err(|e| Failure::general(e.message))?;
    Ok(answer.body)
}

/// Sends `request` to the running standalone's admin socket.
async fn through_socket(socket: &Path, request: &AdminRequest) -> anyhow::Result<Value> {
    let unreachable = |e: &dyn std::fmt::Display| {
        Failure::general(format!(
            "The store is held by a running server, whose admin socket {} does not answer: {e}",
            socket.display()
        ))
    };
    let call = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let body = serde_json::to_vec(request)?;
        let req = hyper::Request::post("/admin")
            .header("host", "admin")
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body)))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let ok = resp.status().is_success();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| unreachable(&e))?;
        if ok {
            Ok(value)
        } else {
            let message = value["error"].as_str().unwrap_or("failed").to_string();
            Err(Failure::general(message).into())
        }
    };
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .map_err(|_| unreachable(&"no answer within 30 s"))?
}

/// The text `whisk admin` prints for an answer.
fn render(answer: &Value) -> String {
    match answer {
        // A user (create, whois, key regenerate): its key.
        Value::Object(o) if o.contains_key("key") => {
            format!("{}\n", o["key"].as_str().unwrap_or_default())
        }
        Value::Object(o) if o.contains_key("deleted") => "Subject deleted\n".to_string(),
        Value::Object(o) if o.contains_key("limits") => {
            let limits = o["limits"].as_object().cloned().unwrap_or_default();
            if limits.is_empty() {
                "No limits set: the system's defaults apply\n".to_string()
            } else {
                limits.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
            }
        }
        // Users of a namespace (subject) or namespaces of a user.
        Value::Array(users) => users
            .iter()
            .map(|u| {
                let key = u["key"].as_str().unwrap_or_default();
                let subject = u["subject"].as_str().unwrap_or_default();
                let namespace = u["namespace"].as_str().unwrap_or_default();
                format!("{key}\t{subject}\t{namespace}\n")
            })
            .collect(),
        other => format!("{other}\n"),
    }
}

/// `<data-dir>/whisk.redb`.
pub fn store_path(data_dir: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let dir = data_dir
        .or_else(|| {
            env("WHISK_DATA_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| {
            let home = env("HOME")
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| ".".into());
            PathBuf::from(home).join(".whisk")
        });
    dir.join("whisk.redb")
}

fn is_locked(e: &StoreError) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("already open") || m.contains("lock")
}

fn store_failure(path: &Path, e: StoreError) -> Failure {
    Failure::general(format!("Cannot use the store {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn store_path_defaults() {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            store_path(None, &env),
            PathBuf::from("/home/u/.whisk/whisk.redb")
        );
        let env = |k: &str| (k == "WHISK_DATA_DIR").then(|| "/d".to_string());
        assert_eq!(store_path(None, &env), PathBuf::from("/d/whisk.redb"));
        assert_eq!(
            store_path(Some("/x".into()), &env),
            PathBuf::from("/x/whisk.redb")
        );
    }

    #[test]
    fn answers_as_text() {
        assert_eq!(render(&json!({"key": "u:k", "subject": "s"})), "u:k\n");
        assert_eq!(
            render(&json!([{"key": "u:k", "subject": "s", "namespace": "n"}])),
            "u:k\ts\tn\n"
        );
        assert_eq!(
            render(&json!({"namespace": "n", "limits": {"invocationsPerMinute": 3}})),
            "invocationsPerMinute = 3\n"
        );
        assert_eq!(render(&json!({"deleted": 1})), "Subject deleted\n");
    }

    #[tokio::test]
    async fn locked_store_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whisk.redb");
        let _held = EmbeddedStore::open(&path).unwrap();
        let err = EmbeddedStore::open(&path).unwrap_err();
        assert!(is_locked(&err), "{err}");
    }
}
