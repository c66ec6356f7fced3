//! whisk-telemetry: the one place every role sets up `tracing` — the stderr log (fmt +
//! `EnvFilter`, `RUST_LOG` wins) and, when the standard `OTEL_EXPORTER_OTLP_*` variables ask
//! for it, OpenTelemetry export of the platform's spans over OTLP (gRPC, HTTP/protobuf or
//! HTTP/JSON) — and W3C trace context (`traceparent`/`tracestate`) in and out of HTTP headers
//! and string maps (the activation message's `trace_context`, Kafka headers).
//!
//! Layout:
//! - [`subscriber`]: [`init`] and the [`Telemetry`] guard (flushes spans on shutdown).
//! - [`otlp`]: the exporter settings read from the environment ([`otlp::OtlpSettings`]).
//! - [`propagation`]: extract/inject of trace context, the context new work continues.
//! - [`http`]: [`http::TraceLayer`], the server span of an HTTP service (tower layer).
//!
//! Cost when export is off: the platform's spans are at `TRACE` level and the OTLP layer
//! is the only one that takes them, so without it their call sites are disabled once and for
//! all (a static interest check); [`exporting`] is one relaxed atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

pub mod http;
pub mod otlp;
pub mod propagation;
pub mod subscriber;

pub use opentelemetry::{Context, KeyValue};
pub use propagation::{current_context, trace_id, traceparent, TRACEPARENT, TRACESTATE};
pub use subscriber::{init, Options, Telemetry, TelemetryError};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True when this process exports spans (an OTLP endpoint was configured at [`init`]).
#[inline]
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

fn set_exporting(on: bool) {
    EXPORTING.store(on, Ordering::Relaxed);
}
