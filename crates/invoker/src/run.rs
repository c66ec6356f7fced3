//! One activation, from the controller's message to the activation record: read the action
//! the message names through the [`Actions`] cache (a deleted or unreadable action ends here in
//! a whisk error record that says why), pick a container, `/init` it if cold, `/run`, classify
//! the answer as OpenWhisk does, collect the logs, return the container to the pool (or
//! destroy it after a container error or a timeout).
//!
//! Traced: the span `activation` continues the controller's context from the message
//! (`trace_context`), beside a `queue wait` span from the controller's stamp to the start;
//! inside it `container acquire`, `/init`, `directory register`, `/run`, `log collection`
//! (and the service's `record write`). The action gets the `/run` span's context as
//! `__OW_TRACE_ID` / `__OW_TRACEPARENT` (`TRACEPARENT` too, through the proxy); the record
//! keeps the trace id in its `traceId` annotation.

use crate::actions::Actions;
use crate::container::{Container, ContainerError};
use crate::peers::Peers;
use crate::pool::{ContainerPool, Request, WarmKey};
use crate::proxy::{CallError, ProxyClient, ProxyResponse};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use whisk_core::entity::KeyValue;
use whisk_core::limits::PAYLOAD_MAX_BYTES;
use whisk_core::{kinds, now_ms, Action, Activation, ActivationId, ActivationResponse, StatusCode};
use whisk_proto::ActivationMessage;
use whisk_telemetry::Context as TraceContext;

/// The error of an activation the kernel killed for memory (OpenWhisk's words).
pub const MEMORY_EXHAUSTED: &str = "The action exhausted its memory and was aborted.";

/// How long a crashed launcher's container is given to report an out-of-memory kill.
const OOM_GRACE: Duration = Duration::from_millis(300);

/// The proxy's answer when the action's process died during `/run`.
const EXITED: &str = "The action did not produce a valid response and exited unexpectedly.";

/// True when the activation ended because the action's process died (not a timeout, not the
/// action's own error).
fn launcher_died(response: &ActivationResponse) -> bool {
    response.status_code == StatusCode::DeveloperError
        && response
            .result
            .as_ref()
            .and_then(|r| r.get("error"))
            .and_then(|e| e.as_str())
            .is_some_and(|e| e == EXITED)
}

/// Whether the kernel killed the container's action for memory. When the action's process
/// died, the kernel's word (Docker's `oom` event, the cgroup's count) may trail the proxy's
/// answer by a few milliseconds: it is awaited up to [`OOM_GRACE`] before calling it a crash.
async fn killed_for_memory(container: &dyn Container, died: bool) -> bool {
    let deadline = tokio::time::Instant::now() + OOM_GRACE;
    loop {
        if container.oom_killed().await {
            return true;
        }
        if !died || tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the invoker needs to run activations.
pub struct Runner {
    /// The pool.
    pub pool: Arc<ContainerPool>,
    /// HTTP client of the proxies.
    pub client: ProxyClient,
    /// `__OW_API_HOST` for actions.
    pub api_host: String,
    /// Peer maps and directory registrations.
    pub peers: Arc<Peers>,
    /// The actions messages name, read from the store once per revision.
    pub actions: Arc<Actions>,
    /// Running activations whose log lines can be followed live.
    pub live: Arc<crate::live::LiveTaps>,
}

/// The outcome of one activation.
pub struct Outcome {
    /// The record to store and report.
    pub activation: Activation,
    /// The platform, not the action, failed.
    pub system_error: bool,
    /// Memory the activation held, MB.
    pub memory_mb: u64,
    /// The activation's span (disabled when not exporting): the record write goes under it.
    pub span: tracing::Span,
}

/// The span of the activation `msg` describes, continuing the controller's context `parent`.
fn activation_span(msg: &ActivationMessage, parent: Option<&TraceContext>) -> tracing::Span {
    let span = tracing::trace_span!(
        "activation",
        otel.kind = "consumer",
        whisk.activation.id = %msg.activation_id,
        whisk.namespace = %msg.namespace,
        whisk.action = %msg.action_path,
        whisk.container.cold = tracing::field::Empty,
    );
    whisk_telemetry::propagation::set_parent(&span, parent);
    span
}

/// The `queue wait` span: from the controller's stamp to now.
fn queue_wait(msg: &ActivationMessage, parent: &TraceContext) {
    let now = std::time::SystemTime::now();
    let accepted = std::time::UNIX_EPOCH + Duration::from_millis(msg.accepted_at_ms.max(0) as u64);
    whisk_telemetry::propagation::record_span(
        "queue wait",
        parent,
        accepted.min(now),
        now,
        vec![
            whisk_telemetry::KeyValue::new("whisk.activation.id", msg.activation_id.clone()),
            whisk_telemetry::KeyValue::new("whisk.namespace", msg.namespace.clone()),
            whisk_telemetry::KeyValue::new("whisk.action", msg.action_path.clone()),
        ],
    );
}

/// The context the action continues: the current span's when exporting, else the caller's.
fn action_context(parent: Option<&TraceContext>) -> Option<TraceContext> {
    whisk_telemetry::current_context().or_else(|| parent.cloned())
}

impl Runner {
    /// Runs the activation described by `msg` (see the module documentation for its spans).
    pub async fn run(&self, msg: &ActivationMessage) -> Outcome {
        let parent = whisk_telemetry::propagation::from_map(&msg.trace_context);
        if whisk_telemetry::exporting() {
            if let Some(p) = &parent {
                queue_wait(msg, p);
            }
        }
        let span = activation_span(msg, parent.as_ref());
        let mut outcome = self
            .run_in(msg, parent.as_ref())
            .instrument(span.clone())
            .await;
        if let Some(cx) = span.in_scope(|| action_context(parent.as_ref())) {
            outcome.activation.annotations.push(KeyValue {
                key: "traceId".into(),
                value: json!(whisk_telemetry::trace_id(&cx)),
            });
        }
        outcome.span = span;
        outcome
    }

    async fn run_in(&self, msg: &ActivationMessage, parent: Option<&TraceContext>) -> Outcome {
        let id =
            ActivationId::parse(&msg.activation_id).unwrap_or_else(|_| ActivationId::generate());
        let (action, revision) = match self
            .actions
            .get(&msg.action_path, &msg.action_revision)
            .await
        {
            Ok(f) => (f.action, f.revision),
            Err(e) => {
                tracing::warn!(activation = %id, error = %e, "the activation's action could not be read");
                let mut stub = stub_action(msg);
                if msg.memory_mb > 0 {
                    stub.limits.memory = msg.memory_mb;
                }
                let system = e.is_system();
                let response = ActivationResponse::whisk_error(e.to_string());
                return self.failed(msg, id, &stub, response, system);
            }
        };
        let params: Map<String, Value> = match serde_json::from_slice(&msg.content) {
            Ok(Value::Object(m)) => m,
            Ok(_) if msg.content.is_empty() => Map::new(),
            _ => {
                return self.failed(
                    msg,
                    id,
                    &action,
                    ActivationResponse::whisk_error(
                        "The activation message carries malformed parameters.",
                    ),
                    true,
                );
            }
        };
        let instance = match whisk_core::peers::instance(&params, &msg.action_path) {
            Ok(i) => i,
            Err(e) => {
                let response = ActivationResponse::application_error(json!({ "error": e.message }));
                return self.failed(msg, id, &action, response, false);
            }
        };
        let family = match action.exec.kind.as_str() {
            kinds::BLACKBOX => action
                .exec
                .image
                .as_deref()
                .and_then(kinds::family_of_image)
                .unwrap_or("blackbox"),
            k => kinds::family(k).unwrap_or("unknown"),
        };
        let req = Request {
            key: WarmKey {
                namespace: msg.namespace.clone(),
                action: msg.action_path.clone(),
                // The store revision, not the semantic version: an action deleted and
                // created again (version 0.0.1 again) never reuses a container of its old code.
                version: revision,
            },
            family: family.to_string(),
            image: action.exec.image.clone(),
            memory_mb: action.limits.memory,
            // Several activations in one container only for kinds whose runtime takes them.
            concurrency: if kinds::concurrent(&action.exec.kind, action.exec.image.as_deref()) {
                action.limits.concurrency.max(1) as usize
            } else {
                1
            },
        };
        let timeout = Duration::from_millis(action.limits.timeout);
        // Followable from here (a follower learns it runs here while its container is made).
        self.live.start(id.as_str(), &msg.namespace);
        let mut attempt = 0;
        let (lease, container, addr, started, init_time, mut timed_out, response) = loop {
            attempt += 1;
            let lease = match self
                .pool
                .acquire(&req, vec![("__OW_API_HOST".into(), self.api_host.clone())])
                .instrument(tracing::trace_span!("container acquire"))
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    let response = match e {
                        ContainerError::Start(m) => ActivationResponse::developer_error(format!(
                            "Failed to start a container for the action: {m}"
                        )),
                        other => ActivationResponse::whisk_error(format!(
                            "Failed to start a container for the action: {other}"
                        )),
                    };
                    let system = response.status_code == StatusCode::WhiskError;
                    return self.failed(msg, id, &action, response, system);
                }
            };
            let container = lease.entry.container.clone();
            let addr = container.addr();
            let started = now_ms();
            let mut init_time = None;
            let mut timed_out = false;
            let mut response = None;
            if lease.needs_init {
                let body = init_body(&action, msg, &self.api_host);
                let t0 = std::time::Instant::now();
                tracing::Span::current().record("whisk.container.cold", true);
                let r = self
                    .client
                    .call(addr, &lease.entry.secret, "/init", body, timeout, 64 * 1024)
                    .instrument(tracing::trace_span!("/init", otel.kind = "client"))
                    .await;
                init_time = Some(t0.elapsed().as_millis() as i64);
                match r {
                    Ok(ProxyResponse { status: 200, .. }) => {}
                    Ok(resp) => {
                        response = Some(ActivationResponse::developer_error(
                            error_text(&resp.body)
                                .unwrap_or_else(|| "The action failed to initialize.".into()),
                        ))
                    }
                    Err(CallError::Timeout) => {
                        timed_out = true;
                        response = Some(ActivationResponse::developer_error(format!("The action exceeded its time limits of {} milliseconds during initialization.", action.limits.timeout)));
                    }
                    Err(CallError::Connection(e)) if attempt == 1 => {
                        // A container that dies before its first request is the platform's
                        // problem, not the action's: replace it once.
                        tracing::warn!(error = %e, "a new container refused /init; replacing it");
                        self.pool.initialized(&lease, false);
                        self.pool.finish(lease, req.key.clone(), false);
                        continue;
                    }
                    Err(CallError::Connection(_)) => {
                        response = Some(ActivationResponse::developer_error(
                            "The action did not initialize and exited unexpectedly.",
                        ))
                    }
                }
            }
            if lease.needs_init {
                self.pool.initialized(&lease, response.is_none());
            }
            break (
                lease, container, addr, started, init_time, timed_out, response,
            );
        };
        let log_limit = (action.limits.logs as usize) * 1024 * 1024;
        // Its lines are followable until its record is stored (`LiveTaps::end`); a shared
        // container's lines are told apart only at the end.
        if !lease.is_shared() {
            self.live.attach(id.as_str(), container.as_ref(), log_limit);
        }
        let response = match response {
            Some(r) => r,
            None => {
                if let Some(i) = &instance {
                    let folder = &lease.entry.peers_dir;
                    async {
                        self.peers.attach(&msg.namespace, &i.group, folder).await;
                        self.peers
                            .register(&msg.namespace, &i.group, &i.id, container.ip(), id.as_str())
                            .await;
                    }
                    .instrument(tracing::trace_span!("directory register", whisk.peer.group = %i.group, whisk.peer.instance = %i.id))
                    .await;
                }
                let run_span = tracing::trace_span!("/run", otel.kind = "client");
                let trace = run_span.in_scope(|| action_context(parent));
                let body = run_body(&action, msg, params, &id, instance.as_ref(), trace.as_ref());
                let answer = self
                    .client
                    .call(
                        addr,
                        &lease.entry.secret,
                        "/run",
                        body,
                        timeout,
                        PAYLOAD_MAX_BYTES,
                    )
                    .instrument(run_span)
                    .await;
                if let Some(i) = &instance {
                    async {
                        self.peers
                            .deregister(&msg.namespace, &i.group, &i.id, id.as_str())
                            .await;
                        self.peers
                            .detach(&msg.namespace, &i.group, &lease.entry.peers_dir)
                            .await;
                    }
                    .instrument(tracing::trace_span!("directory deregister", whisk.peer.group = %i.group, whisk.peer.instance = %i.id))
                    .await;
                }
                match answer {
                    Ok(resp) => classify(resp),
                    Err(CallError::Timeout) => {
                        timed_out = true;
                        ActivationResponse::developer_error(format!(
                            "The action exceeded its time limits of {} milliseconds.",
                            action.limits.timeout
                        ))
                    }
                    Err(CallError::Connection(_)) => ActivationResponse::developer_error(EXITED),
                }
            }
        };
        let end = now_ms();
        let reusable = !timed_out
            && matches!(
                response.status_code,
                StatusCode::Success | StatusCode::ApplicationError
            )
            && container.is_alive();
        // A shared container's sentinels come from every activation in it: waiting for this
        // one's could wait for another's end. Its logs are taken as they are (best effort).
        let log_wait = if reusable && !lease.is_shared() {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(100)
        };
        if timed_out {
            container.destroy().await;
        }
        let oom = response.status_code == StatusCode::DeveloperError
            && killed_for_memory(container.as_ref(), launcher_died(&response)).await;
        let response = if oom {
            // OpenWhisk's Messages.memoryExhausted.
            ActivationResponse::developer_error(MEMORY_EXHAUSTED)
        } else {
            response
        };
        // Concurrent activations share the container's output: each record takes the lines
        // read since the previous collection (see docs/model/extras.md).
        let logs = container
            .logs(log_limit, log_wait)
            .instrument(tracing::trace_span!("log collection"))
            .await;
        self.pool.finish(lease, req.key, reusable && !oom);
        let wait_time = (started - msg.accepted_at_ms).max(0);
        let activation = record(
            msg, id, &action, response, started, end, wait_time, timed_out, init_time, logs,
        );
        Outcome {
            activation,
            system_error: false,
            memory_mb: action.limits.memory,
            span: tracing::Span::none(),
        }
    }

    fn failed(
        &self,
        msg: &ActivationMessage,
        id: ActivationId,
        action: &Action,
        response: ActivationResponse,
        system_error: bool,
    ) -> Outcome {
        let now = now_ms();
        let wait_time = (now - msg.accepted_at_ms).max(0);
        let activation = record(
            msg,
            id,
            action,
            response,
            now,
            now,
            wait_time,
            false,
            None,
            vec![],
        );
        Outcome {
            activation,
            system_error,
            memory_mb: action.limits.memory,
            span: tracing::Span::none(),
        }
    }
}

/// Classifies a `/run` answer as OpenWhisk's invoker does.
pub fn classify(resp: ProxyResponse) -> ActivationResponse {
    if resp.truncated {
        return ActivationResponse::developer_error(format!(
            "The action produced a response that exceeded the allowed length: more than {PAYLOAD_MAX_BYTES} bytes."
        ));
    }
    match serde_json::from_slice::<Value>(&resp.body) {
        // As OpenWhisk: `{"error": ...}` is the action's own error only on a 200 answer;
        // any other status means the proxy or the runtime failed: a developer error.
        Ok(Value::Object(mut obj)) if resp.status == 200 => match obj.remove("error") {
            Some(err) => ActivationResponse::application_error(json!({ "error": err })),
            None => ActivationResponse::success(Value::Object(obj)),
        },
        Ok(Value::Object(mut obj)) => match obj.remove("error") {
            Some(Value::String(m)) => ActivationResponse::developer_error(m),
            Some(other) => ActivationResponse::developer_error(other.to_string()),
            None => ActivationResponse::developer_error(format!(
                "The action did not produce a valid response: {}",
                Value::Object(obj)
            )),
        },
        Ok(other) if resp.status == 200 && other.is_array() => ActivationResponse::success(other),
        _ => {
            let text: String = String::from_utf8_lossy(&resp.body)
                .chars()
                .take(200)
                .collect();
            ActivationResponse::developer_error(format!(
                "The action did not produce a valid JSON response: {text}"
            ))
        }
    }
}

fn error_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match v.get("error")? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn fq_action_name(msg: &ActivationMessage) -> String {
    format!("/{}", msg.action_path)
}

fn init_body(action: &Action, msg: &ActivationMessage, api_host: &str) -> Vec<u8> {
    let code = action.exec.code.clone().unwrap_or_default();
    // Decided from the code, as OpenWhisk does when it reads an action: documents stored
    // before the controller inferred it may say `false` for a zip.
    let binary = whisk_core::entity::is_binary_code(&code);
    let body = json!({"value": {
        "name": action.name,
        "main": action.exec.main.clone().unwrap_or_else(|| "main".into()),
        "code": code,
        "binary": binary,
        "env": {
            "__OW_API_HOST": api_host,
            "__OW_NAMESPACE": msg.namespace,
            "__OW_ACTION_NAME": fq_action_name(msg),
            "__OW_ACTION_VERSION": action.version,
        },
    }});
    serde_json::to_vec(&body).unwrap_or_default()
}

fn run_body(
    action: &Action,
    msg: &ActivationMessage,
    params: Map<String, Value>,
    id: &ActivationId,
    instance: Option<&whisk_core::peers::Instance>,
    trace: Option<&TraceContext>,
) -> Vec<u8> {
    let deadline = now_ms() + action.limits.timeout as i64;
    let mut body = json!({
        "value": Value::Object(params),
        "namespace": msg.namespace,
        "action_name": fq_action_name(msg),
        "action_version": action.version,
        "activation_id": id.as_str(),
        "transaction_id": msg.transaction_id,
        "deadline": deadline.to_string(),
    });
    let provide_key = whisk_core::entity::lookup(&action.annotations, "provide-api-key")
        .map(|v| v.as_bool() == Some(true))
        .unwrap_or(true);
    if provide_key {
        body["api_key"] = Value::String(msg.api_key.clone());
    }
    // Every key but `value` reaches the function as `__OW_<KEY>`.
    if let Some(i) = instance {
        body["instance_id"] = Value::String(i.id.clone());
        body["peer_group"] = Value::String(i.group.clone());
    }
    if msg.gang_size > 0 {
        body["gang_size"] = Value::String(msg.gang_size.to_string());
    }
    // `__OW_TRACE_ID` and `__OW_TRACEPARENT`: a span the action makes continues the trace.
    if let Some(cx) = trace {
        body["trace_id"] = Value::String(whisk_telemetry::trace_id(cx));
        body["traceparent"] = Value::String(whisk_telemetry::traceparent(cx));
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn record(
    msg: &ActivationMessage,
    id: ActivationId,
    action: &Action,
    response: ActivationResponse,
    start: i64,
    end: i64,
    wait_time: i64,
    timed_out: bool,
    init_time: Option<i64>,
    logs: Vec<String>,
) -> Activation {
    let mut annotations = vec![
        KeyValue {
            key: "path".into(),
            value: json!(msg.action_path),
        },
        KeyValue {
            key: "waitTime".into(),
            value: json!(wait_time),
        },
        KeyValue {
            key: "kind".into(),
            value: json!(action.exec.kind),
        },
        KeyValue {
            key: "timeout".into(),
            value: json!(timed_out),
        },
        KeyValue {
            key: "limits".into(),
            value: json!(action.limits),
        },
    ];
    if let Some(t) = init_time {
        annotations.push(KeyValue {
            key: "initTime".into(),
            value: json!(t),
        });
    }
    if !msg.binding.is_empty() {
        annotations.push(KeyValue {
            key: "binding".into(),
            value: json!(msg.binding),
        });
    }
    // A step of a sequence or composition (a gang's members carry their gang as cause too).
    if !msg.cause.is_empty() && msg.gang_size == 0 {
        annotations.push(KeyValue {
            key: "causedBy".into(),
            value: json!("sequence"),
        });
    }
    whisk_metrics::activation(&whisk_metrics::ActivationEvent {
        initiator: &msg.namespace,
        path: &msg.action_path,
        kind: &action.exec.kind,
        memory_mb: action.limits.memory,
        status: response.status_code.into(),
        wait_ms: wait_time,
        init_ms: init_time,
        duration_ms: end - start,
    });
    Activation {
        namespace: msg.namespace.clone(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: id,
        start,
        end,
        duration: end - start,
        response,
        logs,
        annotations,
        publish: false,
        cause: (!msg.cause.is_empty()).then(|| msg.cause.clone()),
    }
}

fn stub_action(msg: &ActivationMessage) -> Action {
    let name = msg
        .action_path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    Action {
        namespace: msg.namespace.clone(),
        name,
        version: msg.action_version.clone(),
        publish: false,
        exec: whisk_core::Exec {
            kind: "unknown".into(),
            code: None,
            image: None,
            main: None,
            binary: false,
            components: None,
        },
        parameters: vec![],
        annotations: vec![],
        limits: Default::default(),
        updated: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn init_says_binary_for_base64_code_whatever_the_document_says() {
        let mut action = stub_action(&ActivationMessage::default());
        action.exec.code = Some("UEsDBAoAAAAAAA==".into());
        action.exec.binary = false;
        let body: Value =
            serde_json::from_slice(&init_body(&action, &ActivationMessage::default(), "h"))
                .unwrap();
        assert_eq!(body["value"]["binary"], true);
        action.exec.code = Some("def main(a): return a".into());
        action.exec.binary = true;
        let body: Value =
            serde_json::from_slice(&init_body(&action, &ActivationMessage::default(), "h"))
                .unwrap();
        assert_eq!(body["value"]["binary"], false);
    }

    fn resp(status: u16, body: &str) -> ProxyResponse {
        ProxyResponse {
            status,
            body: Bytes::from(body.to_string()),
            truncated: false,
        }
    }

    #[test]
    fn classifies_like_openwhisk() {
        assert_eq!(
            classify(resp(200, r#"{"a":1}"#)).status_code,
            StatusCode::Success
        );
        let app = classify(resp(200, r#"{"error":"boom"}"#));
        assert_eq!(app.status_code, StatusCode::ApplicationError);
        assert_eq!(app.result, Some(json!({"error": "boom"})));
        assert_eq!(
            classify(resp(502, r#"{"error":"x"}"#)).status_code,
            StatusCode::DeveloperError
        );
        assert_eq!(
            classify(resp(502, r#"{"a":1}"#)).status_code,
            StatusCode::DeveloperError
        );
        assert_eq!(
            classify(resp(200, "not json")).status_code,
            StatusCode::DeveloperError
        );
        assert_eq!(
            classify(resp(200, "42")).status_code,
            StatusCode::DeveloperError
        );
        let mut big = resp(200, "{}");
        big.truncated = true;
        assert_eq!(classify(big).status_code, StatusCode::DeveloperError);
    }
}
