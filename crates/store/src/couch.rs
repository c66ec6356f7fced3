//! [`CouchStore`]: the [`Store`] in CouchDB (or a CouchDB-compatible server such as
//! pouchdb-server), for the distributed services; built on the `couch_rs` client.
//!
//! Databases (created on connect if missing, with their design documents): `<prefix>whisks`
//! (entities), `<prefix>activations`, `<prefix>subjects` (identities), `<prefix>` being
//! `whisk_local_` by default as in OpenWhisk. Document ids, stored shapes and views are in
//! submodule `docs`; configuration keys in [`CouchConfig`].
//!
//! Revisions are CouchDB's `_rev`: a create of an existing document and an update or delete
//! with a stale revision answer [`StoreError::Conflict`], so concurrent updates never lose a
//! write. Activation records go through submodule `batch`: calls queued while earlier
//! `_bulk_docs` requests are in flight share the next one (group commit); each call returns
//! once its record is written, so it is readable at once.
//!
//! Faults: every call is bounded by `request_timeout_ms`; any failure to reach the server
//! answers [`StoreError::Unavailable`] and marks the server suspect, after which each call
//! first checks that the server accepts a TCP connection within `connect_timeout_ms`, so a
//! dead server costs callers little. Nothing is cached about the connection: when the server
//! is back, the next call works. If the databases vanished (e.g. an in-memory server was
//! restarted), a write or query recreates them and retries once.
//!
//! Why one file of this length: it is the Store trait's implementation, one method per trait
//! method; document shapes and the record batcher are in submodules.

mod batch;
mod config;
mod docs;
mod health;

pub use config::CouchConfig;
pub use health::CouchHealth;

use crate::{ActivationQuery, EntityKind, Revisioned, Store, StoreError};
use async_trait::async_trait;
use couch_rs::database::Database;
use couch_rs::error::CouchError;
use couch_rs::http::{Method, StatusCode};
use couch_rs::types::query::QueryParams;
use couch_rs::Client;
use docs::DESIGN;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use whisk_core::{Activation, ActivationId, Identity};

/// The store's databases, after the prefix: entities, activation records, identities.
const DATABASES: [&str; 3] = ["whisks", "activations", "subjects"];

/// How often a read-modify-write (delete without revision, identity replace, activation
/// re-put) retries when another writer got in between.
const RMW_ATTEMPTS: usize = 5;

/// Sends a request built on couch_rs's raw client (`Client::req`) and decodes the JSON
/// answer; an error status becomes a [`CouchError`] with that status and CouchDB's
/// `error: reason`. (A macro: couch_rs does not re-export reqwest's request type.)
///
/// Single-document reads and writes use this rather than `Database::get`/`save`: couch_rs
/// 0.13 form-encodes document ids in paths (a space becomes `+`, which CouchDB takes
/// literally), so ids with spaces would be written under one id and read under another.
macro_rules! answer {
    ($request:expr) => {
        async {
            let response = $request.send().await?;
            let code = response.status();
            let body: Value = response.json().await?;
            if code.is_success() {
                return Ok::<Value, CouchError>(body);
            }
            let text = |k: &str| {
                body.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            Err(CouchError::new(
                format!("{}: {}", text("error"), text("reason")),
                code,
            ))
        }
    };
}

/// A [`Store`] in CouchDB (see the module docs).
pub struct CouchStore {
    inner: Arc<Inner>,
    batcher: batch::Batcher,
}

impl std::fmt::Debug for CouchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CouchStore")
            .field("url", &self.inner.cfg.url.as_str())
            .field("whisks", &self.inner.whisks.name())
            .finish_non_exhaustive()
    }
}

/// What the store and its activation batcher share.
struct Inner {
    client: Client,
    whisks: Database,
    activations: Database,
    subjects: Database,
    cfg: config::Checked,
    /// Set after a failure to reach the server; cleared by a successful probe.
    suspect: AtomicBool,
}

/// Checks `config` and builds a client with its credentials and request timeout.
fn client(config: &CouchConfig) -> Result<(config::Checked, Client), StoreError> {
    let cfg = config.check()?;
    let user = (!config.username.is_empty()).then_some(config.username.as_str());
    let password = user.map(|_| config.password.as_str());
    let secs = cfg.request_timeout.as_millis().div_ceil(1000).max(1) as u64;
    let client = Client::new_with_timeout(cfg.url.as_str(), user, password, Some(secs))
        .map_err(|e| StoreError::Unavailable(format!("CouchDB client: {e}")))?;
    Ok((cfg, client))
}

impl CouchStore {
    /// Connects to the server of `config`, creating the databases and design documents that
    /// are missing. Fails with [`StoreError::Unavailable`] (naming the cause) when the
    /// configuration is bad or the server cannot be reached or refuses the credentials.
    pub async fn connect(config: CouchConfig) -> Result<Self, StoreError> {
        let (cfg, client) = client(&config)?;
        let db = |name: &str| Database::new(format!("{}{name}", config.db_prefix), client.clone());
        let [whisks, activations, subjects] = DATABASES;
        let inner = Arc::new(Inner {
            whisks: db(whisks),
            activations: db(activations),
            subjects: db(subjects),
            client,
            cfg,
            suspect: AtomicBool::new(false),
        });
        inner
            .call(async {
                check_login(&inner.client, &config.username).await?;
                inner.ensure_schema().await
            })
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(m) => StoreError::Unavailable(format!(
                    "cannot set up CouchDB at {}: {m}",
                    inner.cfg.url
                )),
                other => other,
            })?;
        let batcher = batch::Batcher::start(Arc::clone(&inner));
        Ok(Self { inner, batcher })
    }
}

impl CouchStore {
    /// Checks, without creating anything, that the server of `config` answers and accepts
    /// its credentials within `request_timeout_ms`; answers what it says it is (`CouchDB
    /// 3.3.3`, `pouchdb-server 4.2.0`). For health checks (`whisk status`).
    pub async fn ping(config: &CouchConfig) -> Result<String, StoreError> {
        let (cfg, client) = client(config)?;
        let ping = async {
            let welcome = answer!(client.req(Method::GET, "/", None))
                .await
                .map_err(store_error)?;
            check_login(&client, &config.username).await?;
            let version = welcome
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("?");
            Ok(if welcome.get("couchdb").is_some() {
                format!("CouchDB {version}")
            } else if welcome.get("express-pouchdb").is_some() {
                format!("pouchdb-server {version}")
            } else {
                format!("version {version}")
            })
        };
        match tokio::time::timeout(cfg.request_timeout, ping).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "CouchDB at {} did not answer within {:?}",
                cfg.url, cfg.request_timeout
            ))),
        }
    }
}

/// Fails unless the server accepts the credentials. (Checked before anything else:
/// pouchdb-server 4.2 crashes on a database create that follows a refused one.)
/// couch_rs has no call for this, so it goes through its raw request builder.
async fn check_login(client: &Client, username: &str) -> Result<(), StoreError> {
    let answer = client
        .req(Method::GET, "/_session", None)
        .send()
        .await
        .map_err(|e| StoreError::Unavailable(format!("CouchDB unreachable: {e}")))?;
    match answer.status().as_u16() {
        200 => Ok(()),
        401 | 403 => Err(StoreError::Unavailable(format!(
            "CouchDB refused the credentials of user {username:?}"
        ))),
        other => Err(StoreError::Unavailable(format!(
            "CouchDB answered {other} to GET /_session"
        ))),
    }
}

impl Inner {
    /// Runs one store call: checks a suspect server first, bounds the call by the request
    /// timeout, and marks the server suspect when the call could not reach it.
    async fn call<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if self.suspect.load(Ordering::Relaxed) {
            self.probe().await?;
        }
        let result = match tokio::time::timeout(self.cfg.request_timeout, op).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "CouchDB at {} did not answer within {:?}",
                self.cfg.url, self.cfg.request_timeout
            ))),
        };
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.suspect.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Answers `Unavailable` unless the server accepts a TCP connection in time.
    async fn probe(&self) -> Result<(), StoreError> {
        let (host, port) = &self.cfg.address;
        let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
        match tokio::time::timeout(self.cfg.connect_timeout, connect).await {
            Ok(Ok(_)) => {
                self.suspect.store(false, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(StoreError::Unavailable(format!(
                "CouchDB at {} is unreachable: {e}",
                self.cfg.url
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "CouchDB at {} did not accept a connection within {:?}",
                self.cfg.url, self.cfg.connect_timeout
            ))),
        }
    }

    /// Creates the databases and design documents that are missing.
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        let schema = [
            (&self.whisks, docs::entities_design()),
            (&self.activations, docs::activations_design()),
            (&self.subjects, docs::subjects_design()),
        ];
        for (db, design) in schema {
            match self.client.make_db(db.name()).await {
                Ok(_) => tracing::info!(db = db.name(), "created CouchDB database"),
                // 412: it exists.
                Err(e) if status(&e) == Some(412) => {}
                Err(e) => return Err(store_error(e)),
            }
            match db.create_view(DESIGN, design).await {
                Ok(_) => {}
                // 409: it exists (the version in its name says it is this one).
                Err(e) if status(&e) == Some(409) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }

    /// Runs `op`; when it fails with 404 (a database or design document is missing), recreates
    /// the schema and runs it once more.
    async fn with_schema<T, F, Fut>(&self, op: F) -> Result<T, CouchError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CouchError>>,
    {
        match op().await {
            Err(e) if status(&e) == Some(404) => {
                if let Err(schema) = self.ensure_schema().await {
                    tracing::warn!(error = %schema, "cannot recreate the CouchDB schema");
                    return Err(e);
                }
                op().await
            }
            other => other,
        }
    }

    /// Reads a document (`None` if absent).
    async fn get(&self, db: &Database, id: &str) -> Result<Option<Value>, StoreError> {
        let request = self
            .client
            .req(Method::GET, &docs::doc_path(db.name(), id), None);
        match answer!(request).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The current revision of a document (`None` if absent).
    async fn current_rev(&self, db: &Database, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(db, id)
            .await?
            .and_then(|d| d.get("_rev").and_then(Value::as_str).map(str::to_string)))
    }

    /// Writes `doc` (with `_id`, and `_rev` unless creating); answers the new revision.
    async fn save(&self, db: &Database, doc: &Value) -> Result<String, CouchError> {
        self.with_schema(|| self.put(db, doc)).await
    }

    /// One `PUT` of a document; answers the new revision.
    async fn put(&self, db: &Database, doc: &Value) -> Result<String, CouchError> {
        let id = doc.get("_id").and_then(Value::as_str).unwrap_or_default();
        let request = self
            .client
            .req(Method::PUT, &docs::doc_path(db.name(), id), None)
            .body(doc.to_string());
        let created = answer!(request).await?;
        created
            .get("rev")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                CouchError::new(
                    format!("write answered without a revision: {created}"),
                    StatusCode::BAD_GATEWAY,
                )
            })
    }

    /// Creates or replaces `doc` whatever its current revision (retrying when raced).
    async fn upsert(&self, db: &Database, mut doc: Value) -> Result<(), StoreError> {
        let id = doc
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for _ in 0..RMW_ATTEMPTS {
            match self.current_rev(db, &id).await? {
                Some(rev) => doc["_rev"] = json!(rev),
                None => {
                    if let Some(obj) = doc.as_object_mut() {
                        obj.remove("_rev");
                    }
                }
            }
            match self.save(db, &doc).await {
                Ok(_) => return Ok(()),
                Err(e) if status(&e) == Some(409) => continue,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Rows of a view query (with the 404 recovery of [`Inner::with_schema`]).
    /// Deletes document `id` of `db` at revision `rev` (or its current one).
    async fn delete_doc(
        &self,
        db: &Database,
        id: &str,
        rev: Option<&str>,
    ) -> Result<(), StoreError> {
        for _ in 0..RMW_ATTEMPTS {
            let current = match rev {
                Some(r) => r.to_string(),
                None => self
                    .current_rev(db, id)
                    .await?
                    .ok_or(StoreError::NotFound)?,
            };
            let tombstone = json!({"_id": id, "_rev": current, "_deleted": true});
            match self.put(db, &tombstone).await {
                Ok(_) => return Ok(()),
                // Stale or malformed revision, or no such document (CouchDB and
                // pouchdb-server answer these differently): look.
                Err(e) if matches!(status(&e), Some(400 | 404 | 409)) => {
                    if self.get(db, id).await?.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    if rev.is_some() {
                        return Err(StoreError::Conflict);
                    }
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn query(
        &self,
        db: &Database,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Vec<couch_rs::types::view::ViewItem<Value, Value, Value>>, StoreError> {
        let result = self
            .with_schema(|| db.query_raw(DESIGN, view, Some(params.clone())))
            .await;
        match result {
            Ok(rows) => Ok(rows.rows),
            Err(e) if status(&e) == Some(404) => Err(StoreError::Unavailable(format!(
                "view {}/{DESIGN}/{view} is missing: {e}",
                db.name()
            ))),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The documents of a listing query.
    async fn query_docs(
        &self,
        db: &Database,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<Vec<Value>, StoreError> {
        let rows = self.query(db, view, params).await?;
        rows.into_iter()
            .map(|row| {
                row.doc.ok_or_else(|| {
                    StoreError::Corrupt(format!("view {view} row without its document"))
                })
            })
            .collect()
    }

    /// The `_count` of a reduce query.
    async fn query_count(
        &self,
        db: &Database,
        view: &str,
        params: QueryParams<Value>,
    ) -> Result<usize, StoreError> {
        let rows = self.query(db, view, params).await?;
        Ok(rows.first().and_then(|row| row.value.as_u64()).unwrap_or(0) as usize)
    }
}

/// The HTTP status of a server answer; `None` for failures to reach the server (couch_rs
/// reports those, and undecodable answers, as 501).
fn status(e: &CouchError) -> Option<u16> {
    e.status().map(|s| s.as_u16()).filter(|s| *s != 501)
}

/// The [`StoreError`] of a `couch_rs` failure.
fn store_error(e: CouchError) -> StoreError {
    match (&e, status(&e)) {
        (_, Some(409)) => StoreError::Conflict,
        (_, Some(404)) => StoreError::NotFound,
        (_, Some(401 | 403)) => {
            StoreError::Unavailable(format!("CouchDB refused the credentials: {e}"))
        }
        (CouchError::InvalidJson(_), _) => StoreError::Corrupt(e.to_string()),
        (CouchError::OperationFailed(_), None) => {
            StoreError::Unavailable(format!("CouchDB unreachable: {e}"))
        }
        _ => StoreError::Unavailable(format!("CouchDB: {e}")),
    }
}

impl CouchStore {
    /// The identities the subjects view lists for `params` (a namespace key, or all).
    async fn identities(&self, params: QueryParams<Value>) -> Result<Vec<Identity>, StoreError> {
        let inner = &self.inner;
        let params = params.include_docs(true);
        inner
            .call(async {
                let docs = inner
                    .query_docs(&inner.subjects, docs::SUBJECTS_VIEW, params)
                    .await?;
                docs.into_iter().map(docs::identity_from_doc).collect()
            })
            .await
    }
}

#[async_trait]
impl Store for CouchStore {
    async fn get_entity(
        &self,
        kind: EntityKind,
        key: &str,
    ) -> Result<Option<Revisioned<Value>>, StoreError> {
        let inner = &self.inner;
        let id = docs::entity_id(kind, key);
        inner
            .call(async {
                match inner.get(&inner.whisks, &id).await? {
                    None => Ok(None),
                    Some(env) => {
                        let (rev, doc) = docs::entity_from_envelope(env)?;
                        Ok(Some(Revisioned { rev, doc }))
                    }
                }
            })
            .await
    }

    async fn put_entity(
        &self,
        kind: EntityKind,
        key: &str,
        doc: &Value,
        rev: Option<&str>,
    ) -> Result<String, StoreError> {
        let inner = &self.inner;
        let env = docs::entity_envelope(kind, key, doc, rev);
        inner
            .call(async {
                match inner.save(&inner.whisks, &env).await {
                    Ok(rev) => Ok(rev),
                    // A malformed revision cannot be the stored one.
                    Err(e) if rev.is_some() && matches!(status(&e), Some(400 | 404)) => {
                        Err(StoreError::Conflict)
                    }
                    Err(e) => Err(store_error(e)),
                }
            })
            .await
    }

    async fn delete_entity(
        &self,
        kind: EntityKind,
        key: &str,
        rev: Option<&str>,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let id = docs::entity_id(kind, key);
        inner.call(inner.delete_doc(&inner.whisks, &id, rev)).await
    }

    async fn list_entities(
        &self,
        kind: EntityKind,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let params = docs::entity_query(kind, namespace, Some((skip, limit)));
        inner
            .call(async {
                let envs = inner
                    .query_docs(&inner.whisks, docs::ENTITIES_VIEW, params)
                    .await?;
                envs.into_iter()
                    .map(|env| docs::entity_from_envelope(env).map(|(_, doc)| doc))
                    .collect()
            })
            .await
    }

    async fn count_entities(&self, kind: EntityKind, namespace: &str) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let params = docs::entity_query(kind, namespace, None);
        inner
            .call(inner.query_count(&inner.whisks, docs::ENTITIES_VIEW, params))
            .await
    }

    async fn put_activation(&self, activation: &Activation) -> Result<(), StoreError> {
        let doc = docs::activation_doc(activation)?;
        self.inner.call(self.batcher.submit(doc)).await
    }

    async fn get_activation(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let inner = &self.inner;
        let doc_id = docs::activation_id(namespace, id.as_str());
        inner
            .call(async {
                let Some(doc) = inner.get(&inner.activations, &doc_id).await? else {
                    return Ok(None);
                };
                let a = docs::activation_from_doc(doc)?;
                Ok((a.namespace == namespace && &a.activation_id == id).then_some(a))
            })
            .await
    }

    async fn list_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<Vec<Activation>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let Some((view, params)) =
            docs::activation_query(namespace, query, Some((query.skip, query.limit)))
        else {
            return Ok(Vec::new());
        };
        let inner = &self.inner;
        inner
            .call(async {
                let docs = inner.query_docs(&inner.activations, view, params).await?;
                docs.into_iter().map(docs::activation_from_doc).collect()
            })
            .await
    }

    async fn count_activations(
        &self,
        namespace: &str,
        query: &ActivationQuery,
    ) -> Result<usize, StoreError> {
        let Some((view, params)) = docs::activation_query(namespace, query, None) else {
            return Ok(0);
        };
        let inner = &self.inner;
        inner
            .call(inner.query_count(&inner.activations, view, params))
            .await
    }

    async fn get_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let inner = &self.inner;
        let id = docs::identity_id(uuid);
        inner
            .call(async {
                let doc = inner.get(&inner.subjects, &id).await?;
                doc.map(docs::identity_from_doc).transpose()
            })
            .await
    }

    async fn put_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        let inner = &self.inner;
        let doc = docs::identity_doc(identity, None)?;
        inner.call(inner.upsert(&inner.subjects, doc)).await
    }

    async fn identities_of_namespace(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        self.identities(QueryParams::default().key(json!(namespace)))
            .await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let id = docs::identity_id(uuid);
        inner
            .call(inner.delete_doc(&inner.subjects, &id, None))
            .await
    }

    async fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        self.identities(QueryParams::default()).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.call(self.batcher.flush()).await
    }
}
