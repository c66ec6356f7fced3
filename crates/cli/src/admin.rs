//! `whisk admin user create|list`: manage subjects and keys (what `wskadmin` does upstream).
//!
//! The identities live in the embedded store of `whisk standalone`
//! (`<data-dir>/whisk.redb`; data dir `--data-dir`, else `$WHISK_DATA_DIR`, else
//! `$HOME/.whisk`). When a running server holds that file's lock, `user create` asks the
//! server instead: `PUT {apihost}/admin/identities/{subject}` with the whisk.system key.
//! `--remote` always asks the server (needed when it runs elsewhere).

use crate::client::Client;
use crate::error::{ApiError, Failure};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use whisk_core::identity::SYSTEM_KEY;
use whisk_core::{Identity, UserLimits};
use whisk_store::{EmbeddedStore, Store, StoreError};

/// Where the embedded store is.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Data folder of `whisk standalone` (default: $WHISK_DATA_DIR, else ~/.whisk).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Ask the running server (admin route) instead of opening the store file.
    #[arg(long)]
    pub remote: bool,
}

/// `whisk admin ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
}

/// `whisk admin user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user and print its key (`uuid:key`).
    Create {
        /// The subject (user name).
        subject: String,
        /// The user's namespace (default: the subject).
        #[arg(long)]
        namespace: Option<String>,
        /// Invocations allowed per minute in the namespace.
        #[arg(long, value_name = "N")]
        invocations_per_minute: Option<u32>,
        /// Activations allowed in flight at once in the namespace.
        #[arg(long, value_name = "N")]
        concurrent_invocations: Option<u32>,
        /// Trigger fires allowed per minute in the namespace.
        #[arg(long, value_name = "N")]
        fires_per_minute: Option<u32>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the keys of a namespace (`uuid:key<TAB>subject`).
    List {
        /// The namespace.
        namespace: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs an admin command.
pub async fn run(
    client: &Client,
    cmd: AdminCommand,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    let AdminCommand::User(cmd) = cmd;
    match cmd {
        UserCommand::Create {
            subject,
            namespace,
            invocations_per_minute,
            concurrent_invocations,
            fires_per_minute,
            store,
        } => {
            let namespace = namespace.unwrap_or_else(|| subject.clone());
            let limits = UserLimits {
                invocations_per_minute,
                concurrent_invocations,
                fires_per_minute,
            };
            let key = if store.remote {
                create_remote(client, &subject, &namespace, &limits).await?
            } else {
                let path = store_path(store.data_dir, env);
                match EmbeddedStore::open(&path) {
                    Ok(db) => {
                        let mut identity = Identity::generate(&subject, &namespace);
                        identity.limits = limits;
                        db.put_identity(&identity)
                            .await
                            .map_err(|e| store_failure(&path, e))?;
                        db.flush().await.map_err(|e| store_failure(&path, e))?;
                        eprintln!("(stored in {})", path.display());
                        identity.api_key()
                    }
                    Err(e) if is_locked(&e) => {
                        tracing::debug!(error = %e, "store locked by a running server; using its admin route");
                        // The server holding this store wrote its address beside it.
                        let beside = path.parent().map(|d| d.join(APIHOST_FILE));
                        let served = beside.and_then(|f| std::fs::read_to_string(f).ok());
                        match served {
                            Some(host) => {
                                let there = client.with_apihost(host.trim())?;
                                create_remote(&there, &subject, &namespace, &limits).await?
                            }
                            None => create_remote(client, &subject, &namespace, &limits).await?,
                        }
                    }
                    Err(e) => return Err(store_failure(&path, e).into()),
                }
            };
            println!("{key}");
            Ok(())
        }
        UserCommand::List { namespace, store } => {
            if store.remote {
                return Err(Failure::general(
                    "`admin user list` reads the store file; --remote is not supported",
                )
                .into());
            }
            let path = store_path(store.data_dir, env);
            let db = EmbeddedStore::open(&path).map_err(|e| {
                if is_locked(&e) {
                    Failure::general(format!(
                        "{} is in use by a running server; stop it to list users",
                        path.display()
                    ))
                } else {
                    store_failure(&path, e)
                }
            })?;
            let ids = db
                .identities_of_namespace(&namespace)
                .await
                .map_err(|e| store_failure(&path, e))?;
            for id in ids {
                println!("{}\t{}", id.api_key(), id.subject);
            }
            Ok(())
        }
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

fn store_failure(path: &std::path::Path, e: StoreError) -> Failure {
    Failure::general(format!("Cannot use the store {}: {e}", path.display()))
}

/// File in the data dir where a running `whisk standalone` writes its API address.
pub const APIHOST_FILE: &str = "apihost";

/// `PUT {apihost}/admin/identities/{subject}` as whisk.system; returns `uuid:key`.
async fn create_remote(
    client: &Client,
    subject: &str,
    namespace: &str,
    limits: &UserLimits,
) -> anyhow::Result<String> {
    let url = client.root_url(&["admin", "identities", subject])?;
    let body = json!({"namespace": namespace, "limits": limits});
    let resp = client
        .send_as(SYSTEM_KEY, Method::PUT, url, &[], Some(&body))
        .await
        .map_err(|e| match e {
            ApiError::Network(_) => e.failure(""),
            _ => e.failure(&format!("Unable to create user '{subject}'")),
        })?;
    key_of(&resp.body).ok_or_else(|| {
        Failure::general(format!("The server's answer has no key: {}", resp.body)).into()
    })
}

/// The `uuid:key` of an identity answer (`key` may be `uuid:key`, or `uuid` + `key`).
fn key_of(body: &Value) -> Option<String> {
    let key = body.get("key")?.as_str()?;
    if key.contains(':') {
        return Some(key.to_string());
    }
    body.get("uuid")
        .and_then(Value::as_str)
        .map(|u| format!("{u}:{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn keys_of_answers() {
        assert_eq!(key_of(&json!({"key": "u:k"})).as_deref(), Some("u:k"));
        assert_eq!(
            key_of(&json!({"uuid": "u", "key": "k"})).as_deref(),
            Some("u:k")
        );
        assert_eq!(key_of(&json!({"subject": "s"})), None);
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
