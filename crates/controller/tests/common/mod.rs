//! Test harness: a controller over a temporary embedded store and the in-process bus, served on
//! 127.0.0.1:0, with a fake invoker 0 that answers activations according to their `mode`
//! parameter: `"fail"` → application error, `"crash"` → developer error, `"whisk"` → whisk
//! error, `"hang"` → never answers; anything else → success with the parameters as result
//! (after `sleep_ms` milliseconds when the parameters have it).

#![allow(dead_code)]

use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whisk_bus::{Bus, InProcessBus};
use whisk_controller::{Controller, ControllerConfig};
use whisk_core::entity::KeyValue;
use whisk_core::{now_ms, Action, Activation, ActivationResponse, Identity, UserLimits};
use whisk_proto::{ActivationMessage, CompletionMessage, InvokerStatus, Message, PingMessage};
use whisk_store::{EmbeddedStore, EntityKind, Store};

pub struct Harness {
    pub url: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub bus: Arc<InProcessBus>,
    pub controller: Controller,
    pub shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn guest() -> Identity {
    Identity::guest()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(ControllerConfig::default(), true).await
    }

    pub async fn start_with(config: ControllerConfig, with_invoker: bool) -> Self {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::temporary().expect("temporary store"));
        store.put_identity(&Identity::guest()).await.unwrap();
        store.put_identity(&Identity::system()).await.unwrap();
        let bus = Arc::new(InProcessBus::new());
        let shutdown = CancellationToken::new();
        if with_invoker {
            spawn_fake_invoker(bus.clone(), store.clone(), shutdown.clone()).await;
        }
        let controller = Controller::start(config, store.clone(), bus.clone(), shutdown.clone())
            .await
            .expect("controller starts");
        if with_invoker {
            assert!(
                controller
                    .wait_for_invokers(1, Duration::from_secs(10))
                    .await
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(whisk_controller::serve(
            listener,
            controller.router(),
            shutdown.clone(),
        ));
        Harness {
            url,
            http: reqwest::Client::new(),
            store,
            bus,
            controller,
            shutdown,
        }
    }

    /// A user of namespace `ns` with the given limits, in the store.
    pub async fn limited(&self, ns: &str, per_minute: u32, concurrent: u32) -> Identity {
        let mut id = Identity::generate(ns, ns);
        id.limits = UserLimits {
            invocations_per_minute: Some(per_minute),
            concurrent_invocations: Some(concurrent),
            fires_per_minute: None,
        };
        self.store.put_identity(&id).await.unwrap();
        id
    }

    /// A request to `path` (relative to the server root) as `who`.
    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<&Identity>,
    ) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{}", self.url, path));
        match who {
            Some(id) => r.basic_auth(&id.uuid, Some(&id.key)),
            None => r,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<&Identity>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, path, who);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// [`Harness::call`], which must answer `status` with OpenWhisk's error body; its message.
    pub async fn error(
        &self,
        method: reqwest::Method,
        path: &str,
        who: Option<&Identity>,
        body: Option<Value>,
        status: u16,
    ) -> String {
        let request = format!("{method} {path}");
        let (s, v) = self.call(method, path, who, body).await;
        assert_eq!(s, status, "{request}: {v}");
        error_message(&v)
    }

    /// Creates an empty package `name` in `who`'s namespace.
    pub async fn create_package(&self, who: &Identity, name: &str) {
        let path = format!("/api/v1/namespaces/_/packages/{name}");
        let (s, v) = self
            .call(reqwest::Method::PUT, &path, Some(who), Some(json!({})))
            .await;
        assert_eq!(s, 200, "{v}");
    }

    /// Creates a python action `name` in `who`'s namespace.
    pub async fn create_action(&self, who: &Identity, name: &str, params: Value) -> Value {
        let (s, v) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/namespaces/_/actions/{name}"),
                Some(who),
                Some(json!({"exec": {"kind": "python:3", "code": "def main(a): return a"}, "parameters": params})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

/// The `x-openwhisk-activation-id` header of an answer.
pub fn activation_id_header(resp: &reqwest::Response) -> String {
    resp.headers()["x-openwhisk-activation-id"]
        .to_str()
        .expect("an ASCII activation id")
        .to_string()
}

/// Asserts an OpenWhisk error body and returns its message.
pub fn error_message(v: &Value) -> String {
    assert!(
        v["code"].as_str().is_some_and(|c| !c.is_empty()),
        "no code in {v}"
    );
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
        .to_string()
}

async fn ping(bus: &InProcessBus) {
    let p = PingMessage {
        invoker_id: 0,
        user_memory_mb: 2048,
        free_memory_mb: 2048,
        status: InvokerStatus::Healthy as i32,
        containers: 0,
        sent_at_ms: now_ms(),
    };
    bus.publish(whisk_proto::HEALTH_TOPIC, Bytes::from(p.encode_to_vec()))
        .await
        .unwrap();
}

async fn spawn_fake_invoker(
    bus: Arc<InProcessBus>,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) {
    let mut consumer = bus
        .subscribe(&whisk_proto::invoker_topic(0), "invoker0")
        .await
        .unwrap();
    ping(&bus).await;
    let b = bus.clone();
    let s = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = s.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(200)) => ping(&b).await,
            }
        }
    });
    tokio::spawn(async move {
        loop {
            let d = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = consumer.recv() => match d { Ok(d) => d, Err(_) => break },
            };
            let msg = ActivationMessage::decode(d.payload.as_ref())
                .expect("controller sends valid messages");
            let (bus, store) = (bus.clone(), store.clone());
            tokio::spawn(async move { answer(bus.as_ref(), store.as_ref(), msg).await });
        }
    });
}

async fn answer(bus: &InProcessBus, store: &dyn Store, msg: ActivationMessage) {
    // The message names the action; the document is read from the store, as an invoker does.
    let stored = whisk_store::get_typed::<Action, _>(store, EntityKind::Action, &msg.action_path)
        .await
        .unwrap()
        .expect("the action of an activation message exists");
    assert_eq!(stored.rev, msg.action_revision, "{}", msg.action_path);
    assert!(
        msg.action.is_empty(),
        "the message carries no action document"
    );
    let action = stored.doc;
    let content: Value = serde_json::from_slice(&msg.content).expect("content JSON");
    assert_eq!(msg.reply_to, "completed0");
    if let Some(ms) = content["sleep_ms"].as_u64() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = match content["mode"].as_str() {
        Some("hang") => return,
        Some("fail") => ActivationResponse::application_error(json!({"error": "it failed"})),
        Some("crash") => {
            ActivationResponse::developer_error("The action did not return a dictionary.")
        }
        Some("whisk") => ActivationResponse::whisk_error("no container"),
        _ => ActivationResponse::success(content.clone()),
    };
    let now = now_ms();
    let activation = Activation {
        namespace: msg.namespace.clone(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: whisk_core::ActivationId::parse(&msg.activation_id).unwrap(),
        start: now,
        end: now + 1,
        duration: 1,
        response,
        logs: vec![format!(
            "2024-01-01T00:00:00.000000000Z stdout: hello {}",
            msg.action_path
        )],
        annotations: vec![KeyValue {
            key: "path".into(),
            value: json!(msg.action_path),
        }],
        publish: false,
        cause: (!msg.cause.is_empty()).then(|| msg.cause.clone()),
    };
    store.put_activation(&activation).await.unwrap();
    let completion = CompletionMessage {
        transaction_id: msg.transaction_id,
        activation_id: msg.activation_id,
        invoker_id: 0,
        activation: serde_json::to_vec(&activation).unwrap(),
        system_error: false,
        memory_mb: action.limits.memory,
        live_logs: None,
    };
    bus.publish(&msg.reply_to, Bytes::from(completion.encode_to_vec()))
        .await
        .unwrap();
}
