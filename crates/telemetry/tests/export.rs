//! Export end to end in one process: [`whisk_telemetry::init`] with the standard variables
//! pointing at an OTLP/HTTP JSON receiver; spans continuing a caller's `traceparent` arrive
//! with its trace id, the right parents, the attributes, the configured header and the
//! default service name, flushed by `shutdown`.

use std::collections::HashMap;
use std::time::Duration;
use tracing::Instrument;
use whisk_telemetry::propagation::{from_map, set_parent, TRACEPARENT};
use whisk_test_support::otlp::OtlpReceiver;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_an_otlp_json_receiver_in_the_callers_trace() {
    let receiver = OtlpReceiver::start().await;
    for (k, v) in receiver.env() {
        // SAFETY: set before any other thread of this test reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    // A long batch delay: only the shutdown's flush can deliver within the test.
    unsafe { std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "60000") };
    let mut telemetry =
        whisk_telemetry::init(whisk_telemetry::Options::service("info", "whisk-test"));
    assert!(whisk_telemetry::exporting());
    assert_eq!(
        telemetry.settings().map(|s| s.protocol),
        Some(whisk_telemetry::otlp::OtlpProtocol::HttpJson)
    );

    let mut carrier = HashMap::new();
    carrier.insert(TRACEPARENT.to_string(), format!("00-{TRACE}-{CALLER}-01"));
    let parent = from_map(&carrier);
    let outer = tracing::trace_span!(target: "whisk_test", "activation", whisk.activation.id = "a1", whisk.namespace = "guest", whisk.action = "guest/hello");
    set_parent(&outer, parent.as_ref());
    let inner_cx = async {
        async { whisk_telemetry::current_context().unwrap() }
            .instrument(tracing::trace_span!(target: "whisk_test", "/run"))
            .await
    }
    .instrument(outer)
    .await;
    assert_eq!(whisk_telemetry::trace_id(&inner_cx), TRACE);
    // A span of another crate's target is not exported.
    drop(tracing::trace_span!(target: "hyper", "not ours").entered());

    telemetry.shutdown();
    assert!(!whisk_telemetry::exporting());
    let spans = receiver
        .wait_for("two spans", Duration::from_secs(10), |s| s.len() >= 2)
        .await;
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let activation = spans.iter().find(|s| s.name == "activation").unwrap();
    let run = spans.iter().find(|s| s.name == "/run").unwrap();
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id == TRACE && s.service == "whisk-test"),
        "{spans:#?}"
    );
    assert_eq!(activation.parent_span_id, CALLER);
    assert_eq!(run.parent_span_id, activation.span_id);
    assert_eq!(activation.attr("whisk.activation.id"), Some("a1"));
    assert_eq!(activation.attr("whisk.namespace"), Some("guest"));
    assert_eq!(activation.attr("whisk.action"), Some("guest/hello"));
    assert_eq!(
        whisk_telemetry::traceparent(&inner_cx),
        format!("00-{TRACE}-{}-01", run.span_id)
    );
    assert!(receiver
        .header_values("x-otlp-test")
        .iter()
        .all(|v| v == "yes"));
    assert!(!receiver.header_values("x-otlp-test").is_empty());
}
