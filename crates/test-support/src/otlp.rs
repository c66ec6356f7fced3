//! An OTLP/HTTP receiver for tests: `POST /v1/traces` with JSON bodies (`http/json`), the
//! spans kept with their service's name, ids and attributes, and the request headers kept
//! (to check `OTEL_EXPORTER_OTLP_HEADERS`). Binary protobuf bodies are refused (415): a
//! test configures `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One span as exported.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// `service.name` of its resource.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, empty for a root.
    pub parent_span_id: String,
    /// Attributes, values as strings (ints, bools and doubles as their JSON text).
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Seen {
    spans: Vec<ReceivedSpan>,
    headers: Vec<HeaderMap>,
}

/// See the module documentation; stops when dropped.
pub struct OtlpReceiver {
    /// `http://127.0.0.1:<port>`: the value of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn value_text(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return v.to_string();
    };
    match obj.iter().next() {
        Some((_, Value::String(s))) => s.clone(),
        Some((_, other)) => other.to_string(),
        None => String::new(),
    }
}

fn attributes(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv["key"].as_str()?.to_string(), value_text(&kv["value"]))))
        .collect()
}

/// The spans of an OTLP/JSON `ExportTraceServiceRequest`.
pub fn parse_export(body: &Value) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&rs["resource"]["attributes"]);
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: text("name"),
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    attributes: attributes(&s["attributes"]),
                });
            }
        }
    }
    out
}

async fn traces(
    State(seen): State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut seen = seen.lock().unwrap();
    seen.spans.extend(parse_export(&v));
    seen.headers.push(headers);
    StatusCode::OK
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub async fn start() -> OtlpReceiver {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .route("/v1/traces", post(traces))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OtlpReceiver {
            endpoint,
            seen,
            task,
        }
    }

    /// The environment a process exporting to this receiver gets (JSON over HTTP, a short
    /// batch delay, a header the receiver can check).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-otlp-test=yes"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.seen.lock().unwrap().spans.clone()
    }

    /// The value of header `name` in every export request so far.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.headers
            .iter()
            .filter_map(|h| h.get(name)?.to_str().ok().map(str::to_string))
            .collect()
    }

    /// Waits up to `within` until `done` holds for the spans received; panics with them
    /// (and `what`) otherwise.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            if tokio::time::Instant::now() >= deadline {
                let list: Vec<String> = spans
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {:?} trace={} span={} parent={} {:?}",
                            s.service,
                            s.name,
                            s.trace_id,
                            s.span_id,
                            s.parent_span_id,
                            s.attributes
                        )
                    })
                    .collect();
                panic!(
                    "{what}: not within {within:?}; spans received:\n{}",
                    list.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
