//! What the provider tests share: a stand-in of the controller's trigger fire route that
//! records each fire (and answers with a status the test sets), a store with the guest
//! identity and a trigger, and registration through the feed protocol's lifecycle.
#![allow(dead_code)]

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_core::{now_ms, Identity};
use whisk_feeds::fire::FireSettings;
use whisk_feeds::lifecycle;
use whisk_feeds::{Feed, Provider, ProviderConfig, Registration};
use whisk_store::{EmbeddedStore, EntityKind, Store};

/// One fire the stand-in received.
#[derive(Debug, Clone)]
pub struct Fire {
    pub path: String,
    pub body: Value,
    pub at: i64,
    pub auth: String,
}

/// What the stand-in shares with its route: the fires, and the status it answers.
type Shared = (Arc<Mutex<Vec<Fire>>>, Arc<AtomicU16>);

/// The stand-in of `POST /api/v1/namespaces/{ns}/triggers/{name}`.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub fires: Arc<Mutex<Vec<Fire>>>,
    pub status: Arc<AtomicU16>,
}

impl Api {
    pub async fn start() -> Api {
        let fires = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(202));
        let state = (fires.clone(), status.clone());
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{ns}/triggers/{name}",
                post(
                    |State((fires, status)): State<Shared>,
                     Path((ns, name)): Path<(String, String)>,
                     headers: HeaderMap,
                     Json(body): Json<Value>| async move {
                        let code = status.load(Ordering::Relaxed);
                        let auth = headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        if code < 300 {
                            fires.lock().push(Fire {
                                path: format!("/{ns}/{name}"),
                                body,
                                at: now_ms(),
                                auth,
                            });
                        }
                        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED);
                        (code, Json(json!({"activationId": "0123456789abcdef0123456789abcdef", "error": "refused by the test"})))
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Api { url, fires, status }
    }

    pub fn fires_of(&self, path: &str) -> Vec<Fire> {
        self.fires
            .lock()
            .iter()
            .filter(|f| f.path == path)
            .cloned()
            .collect()
    }
}

/// A store with the guest identity and triggers `names` of guest.
pub async fn store_with(names: &[&str]) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().unwrap());
    seed(store, names).await
}

/// A CouchDB (pouchdb-server) store seeded as [`store_with`]; the server lives as long as
/// the returned handle.
pub async fn couch_with(names: &[&str]) -> (whisk_test_support::services::Couch, Arc<dyn Store>) {
    use whisk_test_support::services::Couch;
    let couch = Couch::start();
    let config = whisk_store::CouchConfig {
        url: couch.url(),
        username: Couch::USER.into(),
        password: Couch::PASSWORD.into(),
        ..whisk_store::CouchConfig::default()
    };
    let store: Arc<dyn Store> = Arc::new(whisk_store::CouchStore::connect(config).await.unwrap());
    (couch, seed(store, names).await)
}

async fn seed(store: Arc<dyn Store>, names: &[&str]) -> Arc<dyn Store> {
    store.put_identity(&Identity::guest()).await.unwrap();
    for n in names {
        let doc = json!({"namespace": "guest", "name": n, "version": "0.0.1", "updated": now_ms()});
        store
            .put_entity(EntityKind::Trigger, &format!("guest/{n}"), &doc, None)
            .await
            .unwrap();
    }
    store
}

/// Runs lifecycle `event` of `feed` for guest's trigger `name` with `params`.
pub async fn lifecycle(
    store: &Arc<dyn Store>,
    feed: Feed,
    event: &str,
    name: &str,
    params: Value,
) -> Result<Value, whisk_feeds::FeedError> {
    let guest = Identity::guest();
    let mut p: Map<String, Value> = params.as_object().cloned().unwrap_or_default();
    p.insert("lifecycleEvent".into(), json!(event));
    p.insert("triggerName".into(), json!(format!("/guest/{name}")));
    p.insert("authKey".into(), json!(guest.api_key()));
    lifecycle::run(store, &guest, feed, &p)
        .await
        .map(|d| d.result)
}

/// Registers guest's trigger `name` with `feed` (CREATE with `params`), which must succeed.
pub async fn create(store: &Arc<dyn Store>, feed: Feed, name: &str, params: Value) {
    lifecycle(store, feed, "CREATE", name, params)
        .await
        .unwrap_or_else(|e| panic!("CREATE of {name}: {e}"));
}

/// Registers guest's trigger `name` with an every-second alarm.
pub async fn every_second(store: &Arc<dyn Store>, name: &str) {
    create(store, Feed::Alarm, name, json!({"cron": "* * * * * *"})).await
}

/// Waits (15 s at most) until registration `key` is inactive; answers it.
pub async fn disabled(store: &Arc<dyn Store>, key: &str) -> Registration {
    whisk_test_support::eventually("disabled", Duration::from_secs(15), || {
        let (store, key) = (store.clone(), key.to_string());
        async move {
            let d = registration(&store, &key).await;
            (!d.status.active).then_some(d)
        }
    })
    .await
}

/// A provider of the test: short leases, quick resyncs and retries.
pub fn config(id: &str, api: &Api) -> ProviderConfig {
    ProviderConfig {
        id: id.to_string(),
        api_url: api.url.clone(),
        lease_ttl: Duration::from_millis(1500),
        resync: Duration::from_millis(200),
        fire: FireSettings {
            tries: 2,
            backoff: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
        },
        ..ProviderConfig::default()
    }
}

pub async fn provider(
    id: &str,
    api: &Api,
    store: &Arc<dyn Store>,
) -> (Provider, CancellationToken) {
    let stop = CancellationToken::new();
    let p = Provider::start(config(id, api), store.clone(), None, stop.clone())
        .await
        .unwrap();
    (p, stop)
}

/// Stops `p` and waits for it (its leases released).
pub async fn stop(p: Provider, token: CancellationToken) {
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), p.join())
        .await
        .expect("the provider stopped");
}

/// The registration document of `key`.
pub async fn registration(store: &Arc<dyn Store>, key: &str) -> Registration {
    whisk_feeds::registration::read(store.as_ref(), key)
        .await
        .unwrap()
        .unwrap()
        .doc
}
