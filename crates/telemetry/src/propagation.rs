//! W3C trace context in and out of carriers — HTTP headers ([`from_headers`],
//! [`inject_headers`]), string maps such as the activation message's `trace_context`
//! ([`from_map`], [`inject_map`]) and header lists such as Kafka's ([`inject_pairs`]) — and
//! the context new work continues ([`current_context`]): the current span's when this process
//! exports, else the caller's context passed through unchanged ([`with_remote`]), so an
//! action still learns its caller's trace when no span is recorded here.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::future::Future;
use tokio::task::futures::TaskLocalFuture;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` header (and map key).
pub const TRACEPARENT: &str = "traceparent";
/// The W3C `tracestate` header (and map key).
pub const TRACESTATE: &str = "tracestate";

tokio::task_local! {
    static REMOTE: Context;
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderWriter<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct MapReader<'a>(&'a HashMap<String, String>);

impl Extractor for MapReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct MapWriter<'a>(&'a mut HashMap<String, String>);

impl Injector for MapWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if !value.is_empty() {
            self.0.insert(key.to_string(), value);
        }
    }
}

struct PairWriter<'a>(&'a mut Vec<(String, String)>);

impl Injector for PairWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.0.push((key.to_string(), value));
        }
    }
}

/// The W3C shape of a `traceparent`: `version-traceid-parentid-flags` with 2, 32, 16 and 2
/// lowercase hex digits (a later version may add fields after a `-`); version `ff` is invalid.
pub fn well_formed(traceparent: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = traceparent.trim().splitn(5, '-');
    let (Some(v), Some(t), Some(p), Some(f)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let rest = parts.next();
    [(v, 2), (t, 32), (p, 16), (f, 2)]
        .iter()
        .all(|(s, n)| s.len() == *n && hex(s))
        && v != "ff"
        && (v != "00" || rest.is_none())
}

fn valid(cx: Context) -> Option<Context> {
    cx.span().span_context().is_valid().then_some(cx)
}

/// The remote context of a request's `traceparent`/`tracestate` headers; `None` without a
/// valid `traceparent` (a malformed one is ignored, as the specification says).
pub fn from_headers(headers: &http::HeaderMap) -> Option<Context> {
    if !well_formed(headers.get(TRACEPARENT)?.to_str().ok()?) {
        return None;
    }
    valid(TraceContextPropagator::new().extract(&HeaderReader(headers)))
}

/// The remote context of a string map (the activation message's `trace_context`).
pub fn from_map(map: &HashMap<String, String>) -> Option<Context> {
    if !well_formed(map.get(TRACEPARENT)?) {
        return None;
    }
    valid(TraceContextPropagator::new().extract(&MapReader(map)))
}

/// The remote context of a list of pairs (message headers).
pub fn from_pairs(pairs: &[(String, String)]) -> Option<Context> {
    let map: HashMap<String, String> = pairs
        .iter()
        .filter(|(k, _)| k == TRACEPARENT || k == TRACESTATE)
        .cloned()
        .collect();
    from_map(&map)
}

/// Writes `cx` as `traceparent` (and `tracestate`) headers, replacing earlier ones.
pub fn inject_headers(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderWriter(headers));
}

/// Writes `cx` into a string map.
pub fn inject_map(cx: &Context, map: &mut HashMap<String, String>) {
    TraceContextPropagator::new().inject_context(cx, &mut MapWriter(map));
}

/// Writes `cx` into a list of pairs (message headers), replacing earlier ones.
pub fn inject_pairs(cx: &Context, pairs: &mut Vec<(String, String)>) {
    TraceContextPropagator::new().inject_context(cx, &mut PairWriter(pairs));
}

/// The context work started now continues: the current span's when this process exports
/// (and the span is recorded), else the remote context of the request being served
/// ([`with_remote`]), else `None`.
pub fn current_context() -> Option<Context> {
    if crate::exporting() {
        if let Some(cx) = valid(tracing::Span::current().context()) {
            return Some(cx);
        }
    }
    REMOTE.try_with(|c| valid(c.clone())).ok().flatten()
}

/// Runs `fut` with `cx` as the caller's context [`current_context`] falls back to.
pub fn with_remote<F: Future>(cx: Context, fut: F) -> TaskLocalFuture<Context, F> {
    REMOTE.scope(cx, fut)
}

/// `fut` for another task: in `span`, and with the remote context of this one (when not
/// exporting, so that the caller's context still passes through).
pub fn carried<F: Future>(
    span: tracing::Span,
    fut: F,
) -> tracing::instrument::Instrumented<TaskLocalFuture<Context, F>> {
    use tracing::Instrument;
    let remote = REMOTE.try_with(|c| c.clone()).unwrap_or_default();
    REMOTE.scope(remote, fut).instrument(span)
}

/// Makes `parent` (a remote context) the parent of `span` when exporting; otherwise nothing.
pub fn set_parent(span: &tracing::Span, parent: Option<&Context>) {
    if let Some(cx) = parent {
        if crate::exporting() && !span.is_disabled() {
            let _ = span.set_parent(cx.clone());
        }
    }
}

/// Records a finished span `name` from `start` to `end` under `parent` when this process
/// exports: a span whose times are known only afterwards (the queue wait of a message,
/// measured from the time the producer stamped on it).
pub fn record_span(
    name: &'static str,
    parent: &Context,
    start: std::time::SystemTime,
    end: std::time::SystemTime,
    attributes: Vec<opentelemetry::KeyValue>,
) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let Some(tracer) = crate::subscriber::tracer() else {
        return;
    };
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(tracer, parent);
    span.end_with_timestamp(end);
}

/// The span context of `cx`.
pub fn span_context(cx: &Context) -> SpanContext {
    cx.span().span_context().clone()
}

/// The trace id of `cx` (32 lowercase hex digits).
pub fn trace_id(cx: &Context) -> String {
    cx.span().span_context().trace_id().to_string()
}

/// `cx` as a `traceparent` value (`00-<trace id>-<span id>-<flags>`).
pub fn traceparent(cx: &Context) -> String {
    let sc = cx.span().span_context().clone();
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn headers_round_trip() {
        let mut h = http::HeaderMap::new();
        assert!(from_headers(&h).is_none());
        h.insert(TRACEPARENT, TP.parse().unwrap());
        h.insert(TRACESTATE, "k=v".parse().unwrap());
        let cx = from_headers(&h).unwrap();
        assert_eq!(trace_id(&cx), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(traceparent(&cx), TP);
        let mut out = http::HeaderMap::new();
        inject_headers(&cx, &mut out);
        assert_eq!(out[TRACEPARENT], TP);
        assert_eq!(out[TRACESTATE], "k=v");
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            let mut h = http::HeaderMap::new();
            h.insert(TRACEPARENT, bad.parse().unwrap());
            assert!(from_headers(&h).is_none(), "{bad}");
        }
    }

    #[test]
    fn maps_and_pairs_round_trip() {
        let mut m = HashMap::new();
        assert!(from_map(&m).is_none());
        m.insert(TRACEPARENT.to_string(), TP.to_string());
        let cx = from_map(&m).unwrap();
        let mut out = HashMap::new();
        inject_map(&cx, &mut out);
        assert_eq!(out[TRACEPARENT], TP);
        let mut pairs = vec![(TRACEPARENT.to_string(), "old".to_string())];
        inject_pairs(&cx, &mut pairs);
        assert_eq!(pairs, vec![(TRACEPARENT.to_string(), TP.to_string())]);
        assert_eq!(traceparent(&from_pairs(&pairs).unwrap()), TP);
    }

    #[tokio::test]
    async fn passes_the_callers_context_through_when_not_exporting() {
        assert!(current_context().is_none());
        let mut m = HashMap::new();
        m.insert(TRACEPARENT.to_string(), TP.to_string());
        let cx = from_map(&m).unwrap();
        let seen = with_remote(cx.clone(), async {
            current_context().map(|c| traceparent(&c))
        })
        .await;
        assert_eq!(seen.as_deref(), Some(TP));
        let spawned = with_remote(cx, async {
            tokio::spawn(carried(tracing::Span::none(), async {
                current_context().map(|c| traceparent(&c))
            }))
            .await
            .unwrap()
        })
        .await;
        assert_eq!(spawned.as_deref(), Some(TP));
    }
}
