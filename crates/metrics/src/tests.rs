//! The exposition of recorded events and scrape-time sources.

use super::*;
use std::sync::Arc;

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn activations_are_counted_by_action_and_status() {
    let ev = |status, init_ms| ActivationEvent {
        initiator: "tests-ns",
        path: "tests-ns/pkg/hello",
        kind: "python:3",
        memory_mb: 256,
        status,
        wait_ms: 3,
        init_ms,
        duration_ms: 12,
    };
    activation(&ev(0, Some(40)));
    activation(&ev(0, None));
    activation(&ev(1, None));
    // The same action at another memory limit: new label sets, the old ones stay.
    activation(&ActivationEvent {
        memory_mb: 512,
        ..ev(3, None)
    });
    let text = encode(&[]);
    let labels = r#"{namespace="tests-ns",initiator="tests-ns",action="pkg/hello""#;
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"openwhisk_action_activations_total{labels},kind="python:3",memory="256"}}"#
            )
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"openwhisk_action_activations_total{labels},kind="python:3",memory="512"}}"#
            )
        ),
        Some(1.0)
    );
    for (status, n) in [
        ("success", 2.0),
        ("application_error", 1.0),
        ("action_developer_error", 0.0),
        ("whisk_internal_error", 1.0),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!(r#"openwhisk_action_status_total{labels},status="{status}"}}"#)
            ),
            Some(n),
            "{status}"
        );
    }
    assert_eq!(
        sample(
            &text,
            &format!("openwhisk_action_cold_starts_total{labels}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("openwhisk_action_init_time_seconds_count{labels}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("openwhisk_action_wait_time_seconds_count{labels}}}")
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("openwhisk_action_duration_seconds_sum{labels}}}")
        ),
        Some(0.048)
    );
    assert_eq!(
        sample(&text, &format!("openwhisk_action_memory{labels}}}")),
        Some(512.0)
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn throttles_gateway_and_kafka_are_counted() {
    throttled("tests-throttled", Throttle::Timed);
    throttled("tests-throttled", Throttle::Timed);
    throttled("tests-throttled", Throttle::Concurrent);
    gateway_request(299, Duration::from_millis(2));
    gateway_refused("tests");
    kafka_lag("tests-topic", 7);
    let text = encode(&[]);
    assert_eq!(
        sample(
            &text,
            r#"openwhisk_action_limit_timed_total{namespace="tests-throttled"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"openwhisk_action_limit_concurrent_total{namespace="tests-throttled"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"whisk_gateway_requests_total{code="299"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"whisk_gateway_refused_total{reason="tests"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"openwhisk_kafka_consumer_lag{topic="tests-topic"}"#
        ),
        Some(7.0)
    );
}

#[test]
fn sources_are_read_at_each_scrape() {
    let n = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let seen = n.clone();
    let source: Arc<dyn Source> = Arc::new(move |g: &mut Gauges| {
        let v = seen.load(std::sync::atomic::Ordering::Relaxed);
        g.gauge("tests_gauge", "A test gauge", &[("state", "up")], v as f64);
        g.gauge("tests_gauge", "A test gauge", &[("state", "down")], 0.0);
        g.counter("tests_events", "Test events", &[], v);
    });
    let text = encode(std::slice::from_ref(&source));
    assert_eq!(sample(&text, r#"tests_gauge{state="up"}"#), Some(1.0));
    assert_eq!(sample(&text, "tests_events_total"), Some(1.0));
    n.store(5, std::sync::atomic::Ordering::Relaxed);
    let text = encode(&[source]);
    assert_eq!(sample(&text, r#"tests_gauge{state="up"}"#), Some(5.0));
    assert_eq!(sample(&text, r#"tests_gauge{state="down"}"#), Some(0.0));
    assert_eq!(text.matches("# TYPE tests_gauge gauge").count(), 1);
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[test]
fn every_listed_name_is_exposed() {
    // The event families appear once registered (those with labels once used).
    activation(&ActivationEvent {
        initiator: "tests-names",
        path: "tests-names/a",
        kind: "nodejs:20",
        memory_mb: 128,
        status: 0,
        wait_ms: 0,
        init_ms: Some(1),
        duration_ms: 1,
    });
    let text = encode(&[]);
    for (name, kind) in NAMES {
        let family = name.strip_suffix("_total").unwrap_or(name);
        let scraped = name.starts_with("openwhisk_loadbalancer_")
            && *name != "openwhisk_loadbalancer_activations_total"
            || name.starts_with("openwhisk_containerpool_")
            || name.starts_with("openwhisk_invoker_")
            || *name == "whisk_peer_groups"
            || *name == "whisk_peer_watchers";
        if scraped
            || [
                "openwhisk_kafka_consumer_lag",
                "whisk_gateway_requests_total",
                "whisk_gateway_refused_total",
                "openwhisk_action_limit_concurrent_total",
                "openwhisk_action_limit_timed_total",
            ]
            .contains(name)
        {
            continue;
        }
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "{name}: {text}"
        );
    }
}

#[test]
fn the_classic_text_format_names_counters_by_their_samples() {
    placed(0);
    let text = encode_text(&[]);
    assert!(
        text.contains("# TYPE openwhisk_loadbalancer_activations_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# HELP openwhisk_loadbalancer_activations_total "),
        "{text}"
    );
    assert!(
        text.contains("# TYPE openwhisk_action_wait_time_seconds histogram\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
}

/// What recording an activation costs (printed; the invoker calls it once per activation).
#[test]
fn recording_an_activation_is_cheap() {
    let ev = ActivationEvent {
        initiator: "tests-cost",
        path: "tests-cost/pkg/action",
        kind: "python:3",
        memory_mb: 256,
        status: 0,
        wait_ms: 1,
        init_ms: None,
        duration_ms: 2,
    };
    activation(&ev);
    let n = 200_000;
    let t0 = std::time::Instant::now();
    for _ in 0..n {
        activation(std::hint::black_box(&ev));
    }
    let per = t0.elapsed() / n;
    println!("recording one activation: {per:?}");
    assert!(per < Duration::from_micros(20), "{per:?}");
}
