//! Identity administration, as OpenWhisk's `wskadmin user|limits`: create, get, delete and list
//! users, regenerate a key, set and get a namespace's limits — all straight on the [`Store`],
//! never through the public API. `whisk admin` runs [`execute`] on the store it opens (the
//! embedded file, or CouchDB); when a running `whisk standalone` holds the embedded file, the
//! same request goes to a unix socket in its data folder that only the folder's owner can
//! reach ([`bind_private`], mode 0600), served by `crate::api::admin` through
//! `crate::services::Identities`, which also forgets the cached keys a request changed.
//!
//! Also the keys every platform starts with ([`ensure_identities`]): OpenWhisk's well-known
//! `guest` and `whisk.system` keys only where the operator asked for them (standalone on a
//! loopback address); everywhere else fresh random keys, written to files only the operator
//! can read.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use whisk_core::{EntityName, ErrorKind, Identity, UserLimits, WhiskError};
use whisk_store::{Store, StoreError};

/// The namespace of the platform's own actions (OpenWhisk's).
pub const SYSTEM_NAMESPACE: &str = "whisk.system";
/// The namespace of standalone's default user.
pub const GUEST_NAMESPACE: &str = "guest";
/// The socket a running standalone answers admin requests on, under its data folder (the
/// folder `admin/` is its owner's alone).
pub const SOCKET_FILE: &str = "admin/admin.sock";

/// One administrative operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// A new key for `subject` in `namespace` (default: the subject's name); the existing one
    /// when the subject already has that namespace.
    CreateUser {
        /// User name.
        subject: String,
        /// Namespace (default: `subject`).
        namespace: Option<String>,
        /// Limits of the namespace (default: the system's).
        #[serde(default)]
        limits: UserLimits,
    },
    /// The keys of `subject`, one per namespace.
    GetUser {
        /// User name.
        subject: String,
    },
    /// Removes `subject` (only in `namespace` when given).
    DeleteUser {
        /// User name.
        subject: String,
        /// Only this namespace.
        namespace: Option<String>,
    },
    /// The keys of a namespace.
    ListNamespace {
        /// Namespace.
        namespace: String,
    },
    /// Who owns the key whose uuid is `uuid`.
    Whois {
        /// A key's uuid part (or a whole `uuid:key`).
        uuid: String,
    },
    /// A fresh key for `subject` (in `namespace` when the subject has several); the old key
    /// stops working.
    RegenerateKey {
        /// User name.
        subject: String,
        /// Which of its namespaces.
        namespace: Option<String>,
    },
    /// Sets a namespace's limits (on every key of the namespace).
    SetLimits {
        /// Namespace.
        namespace: String,
        /// The limits; absent fields mean the system's default.
        limits: UserLimits,
    },
    /// A namespace's limits.
    GetLimits {
        /// Namespace.
        namespace: String,
    },
}

/// What an operation answers, and which key uuids it changed (their cached identities must go).
#[derive(Debug)]
pub struct AdminAnswer {
    /// The answer, as JSON.
    pub body: Value,
    /// Uuids whose identity changed or went.
    pub changed: Vec<String>,
}

fn name(what: &str, value: &str) -> Result<String, WhiskError> {
    EntityName::new(value)
        .map(|n| n.to_string())
        .map_err(|e| WhiskError::bad_request(format!("The {what} '{value}' is not valid: {e}")))
}

fn not_found(message: String) -> WhiskError {
    WhiskError::new(ErrorKind::NotFound, message)
}

fn user_json(i: &Identity) -> Value {
    json!({
        "subject": i.subject,
        "namespace": i.namespace,
        "key": i.api_key(),
        "limits": i.limits,
    })
}

/// The identities of `subject` (in `namespace` when given).
async fn of_subject(
    store: &dyn Store,
    subject: &str,
    namespace: Option<&str>,
) -> Result<Vec<Identity>, WhiskError> {
    let mut ids: Vec<Identity> = store
        .list_identities()
        .await?
        .into_iter()
        .filter(|i| i.subject == subject && namespace.is_none_or(|n| i.namespace == n))
        .collect();
    ids.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    Ok(ids)
}

/// Runs `request` against `store`.
pub async fn execute(store: &dyn Store, request: AdminRequest) -> Result<AdminAnswer, WhiskError> {
    let answer = |body, changed| Ok(AdminAnswer { body, changed });
    match request {
        AdminRequest::CreateUser {
            subject,
            namespace,
            limits,
        } => {
            let subject = name("subject", &subject)?;
            let namespace = name("namespace", namespace.as_deref().unwrap_or(&subject))?;
            if let Some(existing) = of_subject(store, &subject, Some(&namespace))
                .await?
                .into_iter()
                .next()
            {
                return answer(user_json(&existing), vec![]);
            }
            let mut identity = Identity::generate(&subject, &namespace);
            identity.limits = limits;
            store.put_identity(&identity).await?;
            store.flush().await?;
            answer(user_json(&identity), vec![])
        }
        AdminRequest::GetUser { subject } => {
            let ids = of_subject(store, &subject, None).await?;
            if ids.is_empty() {
                return Err(not_found(format!(
                    "The subject '{subject}' does not exist."
                )));
            }
            answer(Value::Array(ids.iter().map(user_json).collect()), vec![])
        }
        AdminRequest::DeleteUser { subject, namespace } => {
            let ids = of_subject(store, &subject, namespace.as_deref()).await?;
            if ids.is_empty() {
                return Err(not_found(format!(
                    "The subject '{subject}' does not exist."
                )));
            }
            let mut changed = vec![];
            for i in &ids {
                match store.delete_identity(&i.uuid).await {
                    Ok(()) | Err(StoreError::NotFound) => changed.push(i.uuid.clone()),
                    Err(e) => return Err(e.into()),
                }
            }
            store.flush().await?;
            answer(
                json!({"subject": subject, "deleted": changed.len()}),
                changed,
            )
        }
        AdminRequest::ListNamespace { namespace } => {
            let namespace = name("namespace", &namespace)?;
            let mut ids = store.identities_of_namespace(&namespace).await?;
            ids.sort_by(|a, b| a.subject.cmp(&b.subject));
            answer(Value::Array(ids.iter().map(user_json).collect()), vec![])
        }
        AdminRequest::Whois { uuid } => {
            let uuid = uuid.split(':').next().unwrap_or_default();
            match store.get_identity(uuid).await? {
                Some(i) => answer(user_json(&i), vec![]),
                None => Err(not_found(format!("No key has the uuid '{uuid}'."))),
            }
        }
        AdminRequest::RegenerateKey { subject, namespace } => {
            let ids = of_subject(store, &subject, namespace.as_deref()).await?;
            let old = match ids.as_slice() {
                [] => {
                    return Err(not_found(format!(
                        "The subject '{subject}' does not exist."
                    )))
                }
                [one] => one,
                _ => {
                    return Err(WhiskError::bad_request(format!(
                        "The subject '{subject}' has several namespaces; name one with --namespace."
                    )))
                }
            };
            let mut fresh = Identity::generate(&old.subject, &old.namespace);
            fresh.limits = old.limits;
            store.put_identity(&fresh).await?;
            match store.delete_identity(&old.uuid).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            store.flush().await?;
            answer(user_json(&fresh), vec![old.uuid.clone()])
        }
        AdminRequest::SetLimits { namespace, limits } => {
            let namespace = name("namespace", &namespace)?;
            let ids = store.identities_of_namespace(&namespace).await?;
            if ids.is_empty() {
                return Err(not_found(format!(
                    "The namespace '{namespace}' does not exist."
                )));
            }
            let mut changed = vec![];
            for mut i in ids {
                i.limits = limits;
                store.put_identity(&i).await?;
                changed.push(i.uuid);
            }
            store.flush().await?;
            answer(json!({"namespace": namespace, "limits": limits}), changed)
        }
        AdminRequest::GetLimits { namespace } => {
            let namespace = name("namespace", &namespace)?;
            match store.identities_of_namespace(&namespace).await?.first() {
                Some(i) => answer(json!({"namespace": namespace, "limits": i.limits}), vec![]),
                None => Err(not_found(format!(
                    "The namespace '{namespace}' does not exist."
                ))),
            }
        }
    }
}

/// A unix listener at `path` that only this user can connect to: its folder is made 0700
/// before the socket exists, and the socket 0600.
pub fn bind_private(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Creates `dir` if needed and leaves it to its owner alone (0700).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Which keys a platform starts with.
#[derive(Debug, Clone)]
pub enum Keys {
    /// OpenWhisk's well-known `guest` and `whisk.system` keys (standalone on loopback only).
    WellKnown,
    /// Random keys, made once; their `uuid:key` written to `<dir>/<namespace>.key` (mode 0600,
    /// the folder 0700) when this process made them.
    Generated {
        /// Folder of the key files.
        dir: PathBuf,
    },
}

/// Makes sure `guest` and `whisk.system` have a key, as `keys` says; with generated keys the
/// well-known ones are removed if an earlier standalone run left them. Returns the key files
/// written now.
pub async fn ensure_identities(store: &dyn Store, keys: &Keys) -> Result<Vec<PathBuf>, WhiskError> {
    let well_known = [Identity::guest(), Identity::system()];
    let mut written = vec![];
    match keys {
        Keys::WellKnown => {
            for identity in well_known {
                if store.get_identity(&identity.uuid).await?.is_none() {
                    store.put_identity(&identity).await?;
                }
            }
        }
        Keys::Generated { dir } => {
            for identity in &well_known {
                match store.delete_identity(&identity.uuid).await {
                    Ok(()) => tracing::warn!(
                        namespace = %identity.namespace,
                        "removed OpenWhisk's well-known key from a store that is now served beyond loopback"
                    ),
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            for namespace in [GUEST_NAMESPACE, SYSTEM_NAMESPACE] {
                if !store.identities_of_namespace(namespace).await?.is_empty() {
                    continue;
                }
                let identity = Identity::generate(namespace, namespace);
                let file = dir.join(format!("{namespace}.key"));
                write_private(&file, &identity.api_key()).map_err(|e| {
                    WhiskError::new(
                        ErrorKind::Internal,
                        format!("cannot write the key file {}: {e}", file.display()),
                    )
                })?;
                store.put_identity(&identity).await?;
                written.push(file);
            }
        }
    }
    store.flush().await?;
    Ok(written)
}

/// Writes `text` to `file` readable by its owner alone (its folder too).
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        private_dir(dir)?;
    }
    let tmp = file.with_extension("key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{text}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisk_store::EmbeddedStore;

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("whisk.redb")).unwrap();
        (dir, store)
    }

    async fn run(store: &dyn Store, r: Value) -> Result<Value, WhiskError> {
        execute(store, serde_json::from_value(r).unwrap())
            .await
            .map(|a| a.body)
    }

    #[tokio::test]
    async fn users_keys_and_limits() {
        let (_d, s) = store();
        let alice = run(&s, json!({"op": "create_user", "subject": "alice"}))
            .await
            .unwrap();
        assert_eq!(alice["namespace"], "alice");
        let key = alice["key"].as_str().unwrap().to_string();
        // Creating again answers the same key.
        let again = run(&s, json!({"op": "create_user", "subject": "alice"}))
            .await
            .unwrap();
        assert_eq!(again["key"], key.as_str());
        let uuid = key.split(':').next().unwrap();
        let who = run(&s, json!({"op": "whois", "uuid": key})).await.unwrap();
        assert_eq!(who["subject"], "alice");

        let set = json!({"op": "set_limits", "namespace": "alice", "limits": {"invocationsPerMinute": 5}});
        run(&s, set).await.unwrap();
        let got = run(&s, json!({"op": "get_limits", "namespace": "alice"}))
            .await
            .unwrap();
        assert_eq!(got["limits"]["invocationsPerMinute"], 5);

        let fresh = execute(
            &s,
            AdminRequest::RegenerateKey {
                subject: "alice".into(),
                namespace: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(fresh.changed, [uuid.to_string()]);
        assert_ne!(fresh.body["key"], key.as_str());
        assert_eq!(fresh.body["limits"]["invocationsPerMinute"], 5);
        assert!(
            s.get_identity(uuid).await.unwrap().is_none(),
            "the old key is gone"
        );

        let deleted = run(&s, json!({"op": "delete_user", "subject": "alice"}))
            .await
            .unwrap();
        assert_eq!(deleted["deleted"], 1);
        let err = run(&s, json!({"op": "get_user", "subject": "alice"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn bad_names_are_refused() {
        let (_d, s) = store();
        for ns in ["../etc", "a/b", "", " x", "guest\n"] {
            let err = run(
                &s,
                json!({"op": "create_user", "subject": "bob", "namespace": ns}),
            )
            .await
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRequest, "{ns:?}: {err}");
        }
        assert!(s.list_identities().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn generated_keys_replace_the_well_known_ones() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, s) = store();
        ensure_identities(&s, &Keys::WellKnown).await.unwrap();
        assert!(s
            .get_identity(&Identity::guest().uuid)
            .await
            .unwrap()
            .is_some());

        let keys = dir.path().join("keys");
        let written = ensure_identities(&s, &Keys::Generated { dir: keys.clone() })
            .await
            .unwrap();
        assert_eq!(written.len(), 2);
        for id in [Identity::guest(), Identity::system()] {
            assert!(
                s.get_identity(&id.uuid).await.unwrap().is_none(),
                "{} gone",
                id.namespace
            );
        }
        let text = std::fs::read_to_string(keys.join("guest.key")).unwrap();
        let uuid = text.trim().split(':').next().unwrap();
        assert_eq!(
            s.get_identity(uuid).await.unwrap().unwrap().namespace,
            "guest"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys.join("guest.key")), 0o600);
        assert_eq!(mode(&keys), 0o700);
        // A second start keeps the keys and writes nothing.
        let again = ensure_identities(&s, &Keys::Generated { dir: keys.clone() })
            .await
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(
            std::fs::read_to_string(keys.join("guest.key")).unwrap(),
            text
        );
    }
}
