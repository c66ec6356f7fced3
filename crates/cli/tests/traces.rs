//! One trace per activation across processes: Kafka, CouchDB and Redis from
//! `scripts/services.sh`, then `whisk directory`, `whisk controller`, `whisk invoker` and
//! `whisk gateway` as separate processes, each exporting its spans over OTLP/HTTP JSON (the
//! standard `OTEL_EXPORTER_OTLP_*` variables) to a receiver inside the test. A blocking invoke
//! through the gateway with the client's `traceparent` yields spans of gateway, controller and
//! invoker in the client's trace, each under the right parent; the action sees the `/run`
//! span as `__OW_TRACE_ID` / `TRACEPARENT`; the record keeps the trace id. A gang of four
//! is one trace with a controller and an invoker span per instance.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::*;
use whisk_test_support::otlp::{OtlpReceiver, ReceivedSpan};
use whisk_test_support::services::Services;

const ECHO_TRACE: &str = r#"
import os
def main(args):
    return {
        "trace_id": os.environ.get("__OW_TRACE_ID", ""),
        "traceparent": os.environ.get("TRACEPARENT", ""),
        "ow_traceparent": os.environ.get("__OW_TRACEPARENT", ""),
    }
"#;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

/// The one span of `spans` that `pick` selects; panics (listing them) unless exactly one.
fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "{what}: {found:#?}\nall: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_across_gateway_controller_and_invoker() {
    let tmp = whisk_test_support::temp_dir();
    let dir = tmp.path();
    let receiver = OtlpReceiver::start().await;
    let services = Services::up(&dir.join("services"));
    let (kafka, couch, redis) = (services.kafka(), services.couchdb(), services.redis());
    let dir_port = free_port();
    let api_port = free_port();
    let gw_port = free_port();
    let mut env = receiver.env();
    env.extend(
        [
            ("WHISK_INVOKER__USER_MEMORY_MB", "2048"),
            ("WHISK_COUCHDB__DB_PREFIX", "whisk_traces_"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let directory = format!("127.0.0.1:{dir_port}");
    let _directory = spawn_whisk(
        dir,
        "directory",
        &Roles::directory(&directory, &redis),
        &env,
    );
    let roles = Roles {
        kafka: kafka.clone(),
        couch: couch.clone(),
    };
    let _controller = spawn_whisk(
        dir,
        "controller",
        &roles.controller(&format!("127.0.0.1:{api_port}"), &dir.join("controller")),
        &env,
    );
    let _invoker = spawn_whisk(
        dir,
        "invoker0",
        &roles.invoker(0, Some(&directory), &dir.join("i0")),
        &env,
    );
    let backend = format!("http://127.0.0.1:{api_port}");
    let _gateway = spawn_whisk(
        dir,
        "gateway",
        &Roles::gateway(&format!("127.0.0.1:{gw_port}"), &backend),
        &env,
    );
    wait_invokers(&backend, 1).await;
    let key = couch_user_key(&couch, "guest", &env);
    let base = format!("http://127.0.0.1:{gw_port}");
    wait_for_port_async(gw_port).await;
    let api = Api::new(&base, &key);
    api.put_python("echo", ECHO_TRACE, 256).await;

    // One blocking invoke through the gateway, in the client's trace.
    let r = api
        .req(reqwest::Method::POST, "actions/echo?blocking=true")
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let record: Value = r.json().await.unwrap();
    let id = record["activationId"].as_str().unwrap().to_string();
    let result = &record["response"]["result"];
    let annotations = record["annotations"].as_array().unwrap();
    assert!(
        annotations
            .iter()
            .any(|a| a["key"] == "traceId" && a["value"] == TRACE),
        "{record}"
    );
    assert_eq!(result["trace_id"], TRACE, "{record}");

    let in_trace = |s: &ReceivedSpan| s.trace_id == TRACE;
    let spans = receiver
        .wait_for("the invoke's spans", Duration::from_secs(30), |spans| {
            spans
                .iter()
                .any(|s| in_trace(s) && s.name == "record write")
                && spans
                    .iter()
                    .any(|s| in_trace(s) && s.service == "whisk-gateway")
        })
        .await;
    let spans: Vec<ReceivedSpan> = spans.into_iter().filter(in_trace).collect();
    let by = |service: &'static str, name: &'static str| {
        move |s: &ReceivedSpan| s.service == service && s.name == name
    };
    let gateway = one(&spans, "gateway request", |s| s.service == "whisk-gateway");
    assert_eq!(gateway.parent_span_id, CLIENT_SPAN);
    let request = one(&spans, "controller request", |s| {
        s.service == "whisk-controller" && s.name.starts_with("POST ")
    });
    assert_eq!(request.parent_span_id, gateway.span_id);
    let invoke = one(&spans, "invoke", by("whisk-controller", "invoke"));
    assert_eq!(invoke.parent_span_id, request.span_id);
    assert_eq!(invoke.attr("whisk.activation.id"), Some(id.as_str()));
    assert_eq!(invoke.attr("whisk.namespace"), Some("guest"));
    assert_eq!(invoke.attr("whisk.action"), Some("guest/echo"));
    for child in ["placement", "publish"] {
        let c = one(&spans, child, by("whisk-controller", child));
        assert_eq!(c.parent_span_id, invoke.span_id, "{child}");
    }
    let publish = one(&spans, "publish", by("whisk-controller", "publish"));
    let activation = one(&spans, "activation", by("whisk-invoker", "activation"));
    assert_eq!(activation.parent_span_id, publish.span_id);
    assert_eq!(activation.attr("whisk.activation.id"), Some(id.as_str()));
    assert_eq!(activation.attr("whisk.namespace"), Some("guest"));
    assert_eq!(activation.attr("whisk.action"), Some("guest/echo"));
    let queue = one(&spans, "queue wait", by("whisk-invoker", "queue wait"));
    assert_eq!(queue.parent_span_id, publish.span_id);
    for child in [
        "container acquire",
        "/init",
        "/run",
        "log collection",
        "record write",
    ] {
        let c = one(&spans, child, by("whisk-invoker", child));
        assert_eq!(c.parent_span_id, activation.span_id, "{child}");
    }
    let run = one(&spans, "/run", by("whisk-invoker", "/run"));
    let expected = format!("00-{TRACE}-{}-01", run.span_id);
    assert_eq!(result["traceparent"], expected.as_str(), "{record}");
    assert_eq!(result["ow_traceparent"], expected.as_str(), "{record}");
    assert!(receiver
        .header_values("x-otlp-test")
        .iter()
        .all(|v| v == "yes"));

    // A gang of four (no client trace): one trace, a controller and an invoker span per
    // instance.
    let (status, body) = api
        .invoke("echo", "blocking=true&instances=4", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["activationId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 4, "{body}");
    let traces: Vec<String> = body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["response"]["result"]["trace_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let gang_trace = traces[0].clone();
    assert!(traces.iter().all(|t| *t == gang_trace), "{traces:?}");
    assert_ne!(gang_trace, TRACE);
    let spans = receiver
        .wait_for("the gang's spans", Duration::from_secs(30), |spans| {
            spans
                .iter()
                .filter(|s| s.trace_id == gang_trace && s.name == "record write")
                .count()
                == 4
        })
        .await;
    let gang: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == gang_trace).collect();
    let invoked: Vec<&str> = gang
        .iter()
        .filter(|s| s.service == "whisk-controller" && s.name == "invoke")
        .filter_map(|s| s.attr("whisk.activation.id"))
        .collect();
    let ran: Vec<&str> = gang
        .iter()
        .filter(|s| s.service == "whisk-invoker" && s.name == "activation")
        .filter_map(|s| s.attr("whisk.activation.id"))
        .collect();
    for id in &ids {
        assert!(
            invoked.contains(&id.as_str()),
            "{id} not invoked in {gang:#?}"
        );
        assert!(ran.contains(&id.as_str()), "{id} not run in {gang:#?}");
    }
    assert_eq!(invoked.len(), 4);
    assert_eq!(ran.len(), 4);
    let root = one(&spans, "the gang's request", |s| {
        s.trace_id == gang_trace && s.parent_span_id.is_empty()
    });
    assert_eq!(root.service, "whisk-gateway");
}

async fn wait_for_port_async(port: u16) {
    eventually(
        "the gateway's port",
        Duration::from_secs(30),
        || async move { whisk_test_support::listening(port).then_some(()) },
    )
    .await;
}
