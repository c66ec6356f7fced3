//! Property tests of the REST API's edge: arbitrary requests to a controller (temporary
//! embedded store, in-process bus, the harness's fake invoker) must never panic it and never
//! get a 500; every error is OpenWhisk's `{"error", "code"}` body, and bad input is a 4xx.
//!
//! Requests mix valid and hostile parts: every method on every collection; names that are
//! valid, too long, unicode, with slashes, `..`, percent escapes (valid and not) and control
//! characters; query strings of the API's own parameters (`limit`, `skip`, `since`, `upto`,
//! `docs`, `name`, `count`, `blocking`, `result`, `overwrite`, `timeout`, `instances`, ...) with
//! numbers out of range, negative, huge, empty and text; entity bodies shaped like actions,
//! triggers, rules and packages with fields replaced by arbitrary JSON; arbitrary JSON; and
//! arbitrary bytes under a JSON content type. Most cases go through the router in process
//! (`tower::ServiceExt::oneshot`: a handler's panic fails the test); a smaller target sends the
//! same requests over a real listener and checks that every one gets an answer.
//!
//! `WHISK_FUZZ_CASES` multiplies the case counts.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::Engine;
use common::Harness;
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt;
use whisk_test_support::fuzz::{self, Xorshift};

/// Keys of entity bodies and of the JSON the generators nest.
const KEYS: &[&str] = &[
    "exec",
    "kind",
    "code",
    "image",
    "main",
    "binary",
    "components",
    "parameters",
    "annotations",
    "limits",
    "timeout",
    "memory",
    "logs",
    "concurrency",
    "publish",
    "version",
    "key",
    "value",
    "trigger",
    "action",
    "status",
    "binding",
    "namespace",
    "name",
    "feed",
    "web-export",
    "raw-http",
    "final",
    "instances",
    "provide-api-key",
    "require-whisk-auth",
    "lifecycleEvent",
    "triggerName",
    "authKey",
    "apidoc",
    "basePath",
];

/// Names of entities the cases create and then read, update, invoke and delete.
const NAMES: &[&str] = &[
    "a",
    "b",
    "p",
    "p/a",
    "p/b",
    "t",
    "r",
    "s",
    "q/x",
    "whisk.system/utils/echo",
];

const KINDS: &[&str] = &[
    "nodejs:20",
    "nodejs:default",
    "python:3",
    "python:default",
    "sequence",
    "blackbox",
    "native",
    "java:8",
    "",
    "go:1.21",
    "python:2",
];

/// `s` percent-encoded as a path segment or query part; characters in `raw` stay as they are.
fn encode(s: &str, raw: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~".contains(c) || raw.contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn name(rng: &mut Xorshift) -> String {
    let n = if rng.one_in(2) {
        rng.pick(NAMES).to_string()
    } else {
        rng.name()
    };
    // Slashes and `%` sometimes reach the path unescaped.
    encode(&n, if rng.one_in(3) { "/%@:" } else { "" })
}

/// A value as the API's scalar parameters meet them.
fn scalar(rng: &mut Xorshift) -> Value {
    match rng.below(8) {
        0 => json!(rng.pick(NAMES)),
        1 => json!(rng.pick(KINDS)),
        2 => json!(rng.pick(&["active", "inactive", "true", "false", "main", "nope"])),
        _ => rng.json(2, KEYS),
    }
}

/// `value`, or once in `junk` times arbitrary JSON.
fn or_junk(rng: &mut Xorshift, junk: u64, value: Value) -> Value {
    if rng.one_in(junk) {
        rng.json(2, KEYS)
    } else {
        value
    }
}

fn key_values(rng: &mut Xorshift, junk: u64) -> Value {
    let items = (0..rng.below(4))
        .map(|_| {
            let kv = json!({"key": rng.pick(KEYS), "value": scalar(rng)});
            or_junk(rng, junk, kv)
        })
        .collect();
    or_junk(rng, junk, Value::Array(items))
}

/// A body shaped like an entity of `collection`, some fields absent, once in `junk` times
/// one replaced by arbitrary JSON.
fn entity_body(rng: &mut Xorshift, collection: &str, junk: u64) -> Value {
    let mut body = serde_json::Map::new();
    fn field(
        rng: &mut Xorshift,
        junk: u64,
        body: &mut serde_json::Map<String, Value>,
        key: &str,
        value: Value,
    ) {
        if !rng.one_in(4) {
            let v = or_junk(rng, junk, value);
            body.insert(key.to_string(), v);
        }
    }
    match collection {
        "actions" => {
            let kind = if junk > 5 && !rng.one_in(5) {
                rng.pick(&["python:3", "nodejs:20", "sequence"])
            } else {
                rng.pick(KINDS)
            };
            let mut exec = json!({"kind": kind, "code": rng.text(20)});
            if rng.one_in(3) {
                exec["components"] = json!((0..rng.below(4))
                    .map(|_| format!("/_/{}", rng.pick(NAMES)))
                    .collect::<Vec<_>>());
            }
            if rng.one_in(4) {
                exec["image"] = json!(rng.text(6));
            }
            if rng.one_in(4) {
                exec["binary"] = json!(rng.one_in(2));
                exec["code"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(rng.bytes(30)));
            }
            if rng.one_in(4) {
                exec["main"] = json!(rng.text(5));
            }
            if junk > 5 {
                body.insert("exec".into(), exec);
            } else {
                field(rng, junk, &mut body, "exec", exec);
            }
            let mut limits = serde_json::Map::new();
            for (key, low, high) in [
                ("timeout", 100, 300_000),
                ("memory", 128, 512),
                ("logs", 0, 10),
                ("concurrency", 1, 1),
            ] {
                match rng.below(8) {
                    0 | 1 => {}
                    2 => {
                        limits.insert(key.into(), rng.number());
                    }
                    _ => {
                        limits.insert(key.into(), json!(low + rng.below(high - low + 1)));
                    }
                }
            }
            field(rng, junk, &mut body, "limits", Value::Object(limits));
        }
        "triggers" => {}
        "rules" => {
            let trigger = format!("/_/{}", rng.pick(NAMES));
            field(rng, junk, &mut body, "trigger", json!(trigger));
            let action = format!("/_/{}", rng.pick(NAMES));
            field(rng, junk, &mut body, "action", json!(action));
            let status = json!(rng.pick(&["active", "inactive", ""]));
            field(rng, junk, &mut body, "status", status);
        }
        _ => {
            let binding = json!({"namespace": rng.pick(&["_", "guest", "whisk.system", "x"]), "name": rng.pick(NAMES)});
            if rng.one_in(3) {
                field(rng, junk, &mut body, "binding", binding);
            }
        }
    }
    let params = key_values(rng, junk);
    field(rng, junk, &mut body, "parameters", params);
    let annotations = key_values(rng, junk);
    field(rng, junk, &mut body, "annotations", annotations);
    let publish = json!(rng.one_in(2));
    field(rng, junk, &mut body, "publish", publish);
    if rng.one_in(junk) {
        body.insert(rng.pick(KEYS).to_string(), rng.json(3, KEYS));
    }
    Value::Object(body)
}

fn query(rng: &mut Xorshift) -> String {
    const PARAMS: &[&str] = &[
        "limit",
        "skip",
        "since",
        "upto",
        "docs",
        "name",
        "count",
        "blocking",
        "result",
        "overwrite",
        "timeout",
        "instances",
        "force",
        "public",
        "full",
        "code",
    ];
    if rng.one_in(12) {
        return encode(&rng.text(16), "=&%+");
    }
    let mut pairs = Vec::new();
    for _ in 0..rng.below(4) {
        let key = if rng.one_in(8) {
            rng.text(4)
        } else {
            rng.pick(PARAMS).to_string()
        };
        let value = match rng.below(10) {
            0 => "true".to_string(),
            1 => "false".to_string(),
            2 => String::new(),
            3 => rng
                .pick(&[
                    "0",
                    "1",
                    "30",
                    "200",
                    "201",
                    "-1",
                    "9223372036854775807",
                    "18446744073709551616",
                    "1e3",
                    "0x10",
                    " 5",
                    "NaN",
                ])
                .to_string(),
            4 => (rng.next_u64() as i64).to_string(),
            5 => rng.below(300).to_string(),
            6 => rng.pick(NAMES).to_string(),
            _ => rng.text(8),
        };
        pairs.push(format!(
            "{}={}",
            encode(&key, ""),
            encode(&value, if rng.one_in(4) { "%+" } else { "" })
        ));
    }
    pairs.join("&")
}

/// One request of a fuzz case; `web` when it goes to a web action or an API route (whose
/// answers are the action's own, any status).
struct Case {
    request: Request<Body>,
    web: bool,
    describe: String,
}

fn case(rng: &mut Xorshift, auth: &str) -> Case {
    const COLLECTIONS: &[&str] = &[
        "actions",
        "triggers",
        "rules",
        "packages",
        "activations",
        "limits",
        "x",
    ];
    // Half the cases are plausible (an entity collection, a method it has, the caller's own
    // namespace, a body with few odd fields): they get past the first checks and create,
    // update, invoke, fire and delete entities; the other half is hostile everywhere.
    let sane = rng.one_in(2);
    let junk = if sane { 25 } else { 5 };
    let collection = if sane {
        rng.pick(&["actions", "actions", "triggers", "rules", "packages"])
    } else {
        rng.pick(COLLECTIONS)
    };
    let method = if sane {
        rng.pick(&[
            &Method::PUT,
            &Method::PUT,
            &Method::PUT,
            &Method::GET,
            &Method::POST,
            &Method::POST,
            &Method::DELETE,
        ])
    } else {
        rng.pick(&[
            &Method::GET,
            &Method::PUT,
            &Method::POST,
            &Method::DELETE,
            &Method::HEAD,
            &Method::PATCH,
        ])
    }
    .clone();
    let ns = if sane {
        rng.pick(&["_", "guest"]).to_string()
    } else if rng.one_in(3) {
        encode(&rng.name(), "")
    } else {
        rng.pick(&["_", "guest", "whisk.system", "other"])
            .to_string()
    };
    let mut web = false;
    let path = match rng.below(if sane { 24 } else { 12 }) {
        0 => format!("/api/v1/namespaces/{ns}/{collection}"),
        1 => {
            web = true;
            format!(
                "/api/v1/web/{ns}/default/{}.{}",
                name(rng),
                rng.pick(&["json", "http", "text", "html", "svg", "x"])
            )
        }
        2 => format!(
            "/api/v1/namespaces/{ns}/activations/{}{}",
            encode(&rng.text(12), ""),
            rng.pick(&["", "/logs", "/result", "/x"])
        ),
        3 if rng.one_in(4) => {
            web = true;
            format!("/api/{}/{}", encode(&rng.name(), ""), name(rng))
        }
        3 => rng
            .pick(&[
                "/",
                "/api/v1",
                "/api/v1/namespaces",
                "/ping",
                "/invokers",
                "/api/v1/api-docs",
                "/api/v1/namespaces/_/limits",
            ])
            .to_string(),
        _ if sane && !rng.one_in(5) => format!(
            "/api/v1/namespaces/{ns}/{collection}/{}",
            encode(rng.pick(NAMES), "/")
        ),
        _ => format!("/api/v1/namespaces/{ns}/{collection}/{}", name(rng)),
    };
    let q = match rng.below(if sane { 4 } else { 1 }) {
        1 => String::new(),
        2 => "overwrite=true".to_string(),
        3 => rng
            .pick(&[
                "blocking=true",
                "blocking=true&result=true",
                "overwrite=false",
                "limit=2&skip=1",
                "docs=true",
            ])
            .to_string(),
        _ => query(rng),
    };
    let uri = if q.is_empty() && rng.one_in(2) {
        path
    } else {
        format!("{path}?{q}")
    };
    let (content_type, body): (Option<&str>, Vec<u8>) = match rng.below(if sane { 16 } else { 8 }) {
        0 => (Some("application/json"), rng.bytes(64)),
        1 => (
            Some("application/json"),
            serde_json::to_vec(&rng.json(4, KEYS)).unwrap(),
        ),
        2 => (None, Vec::new()),
        3 => (
            Some(rng.pick(&[
                "text/plain",
                "application/json; charset=utf-8",
                "application/x-www-form-urlencoded",
                "x/y",
                "application/json;;",
            ])),
            serde_json::to_vec(&entity_body(rng, collection, junk)).unwrap(),
        ),
        4 | 5 if method == Method::POST => {
            // An invoke's or a fire's parameters, a rule's status.
            let mut params = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                params.insert(rng.pick(KEYS).to_string(), scalar(rng));
            }
            if rng.one_in(3) {
                params.insert(
                    "status".into(),
                    json!(rng.pick(&["active", "inactive", "x"])),
                );
            }
            (
                Some("application/json"),
                serde_json::to_vec(&params).unwrap(),
            )
        }
        _ => (
            Some("application/json"),
            serde_json::to_vec(&entity_body(rng, collection, junk)).unwrap(),
        ),
    };
    let describe = format!(
        "{method} {uri} ({content_type:?}) {}",
        String::from_utf8_lossy(&body)
    );
    let mut builder = Request::builder().method(method).uri(&uri);
    match rng.below(12) {
        0 => {}
        1 => builder = builder.header(header::AUTHORIZATION, format!("Basic {}", rng.text(10))),
        2 => builder = builder.header(header::AUTHORIZATION, "Basic Z3Vlc3Q6eA=="),
        _ => builder = builder.header(header::AUTHORIZATION, auth),
    }
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    match builder.body(Body::from(body)) {
        Ok(request) => Case {
            request,
            web,
            describe,
        },
        // A URI the HTTP layer itself refuses never reaches the router: ask for a plain one.
        Err(_) => Case {
            request: Request::get("/api/v1/namespaces/_/actions")
                .header(header::AUTHORIZATION, auth)
                .body(Body::empty())
                .unwrap(),
            web: false,
            describe: format!("(unparsable) {describe}"),
        },
    }
}

/// Checks an answer: no 500, 4xx/5xx with OpenWhisk's error body (the platform's own
/// answers), JSON wherever the API answers JSON.
fn check(
    describe: &str,
    web: bool,
    head: bool,
    status: StatusCode,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    if std::env::var_os("FUZZ_TRACE").is_some() {
        let answer: String = text.chars().take(100).collect();
        eprintln!(
            "STAT {} {} => {answer}",
            status.as_u16(),
            describe.chars().take(160).collect::<String>()
        );
    }
    if web {
        // A web action's answer is its own; the platform must still answer.
        return Ok(());
    }
    prop_assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "{describe}: 500 {text}"
    );
    // An invoke's application error is its activation record (502), not the platform's.
    let activation = status == StatusCode::BAD_GATEWAY && describe.starts_with("POST");
    if (status.is_client_error() || status.is_server_error()) && !head && !activation {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            TestCaseError::fail(format!("{describe}: {status} not JSON ({e}): {text}"))
        })?;
        prop_assert!(
            v["error"].is_string(),
            "{describe}: {status} without error: {text}"
        );
        prop_assert!(
            v["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{describe}: {status} without code: {text}"
        );
    }
    if status.is_server_error() {
        // Never for bad input: only an invoke's own failure (its record, 502), or an invoke
        // the invokers have no room for (503, e.g. a gang larger than the cluster).
        let overloaded = status == StatusCode::SERVICE_UNAVAILABLE && describe.starts_with("POST");
        prop_assert!(activation || overloaded, "{describe}: {status} {text}");
    }
    Ok(())
}

struct Api {
    runtime: tokio::runtime::Runtime,
    harness: Harness,
    auth: String,
}

impl Api {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let harness = runtime.block_on(Harness::start());
        let guest = common::guest();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", guest.uuid, guest.key))
        );
        Api {
            runtime,
            harness,
            auth,
        }
    }

    /// Sends `case` through the router in process.
    fn oneshot(&self, case: Case) -> Result<(), TestCaseError> {
        let head = case.request.method() == Method::HEAD;
        let router = self.harness.controller.router();
        let (status, body) = self.runtime.block_on(async {
            let resp = router.oneshot(case.request).await.expect("infallible");
            let status = resp.status();
            (
                status,
                resp.into_body().collect().await.map(|b| b.to_bytes()),
            )
        });
        let body =
            body.map_err(|e| TestCaseError::fail(format!("{}: body failed: {e}", case.describe)))?;
        check(&case.describe, case.web, head, status, &body)
    }

    /// Sends `case` over the harness's real listener.
    fn socket(&self, case: Case) -> Result<(), TestCaseError> {
        let (parts, body) = case.request.into_parts();
        let head = parts.method == Method::HEAD;
        let url = format!("{}{}", self.harness.url, parts.uri);
        let result = self.runtime.block_on(async {
            let body = body.collect().await.unwrap().to_bytes();
            let resp = self
                .harness
                .http
                .request(parts.method, &url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = resp.status();
            Ok::<_, reqwest::Error>((status, resp.bytes().await?))
        });
        let (status, body) = result
            .map_err(|e| TestCaseError::fail(format!("{}: no answer: {e}", case.describe)))?;
        check(&case.describe, case.web, head, status, &body)
    }
}

#[test]
fn arbitrary_requests_in_process() {
    let api = Api::start();
    proptest!(fuzz::cases(12_000), |(seed in any::<u64>())| {
        api.oneshot(case(&mut Xorshift::new(seed), &api.auth))?;
    });
}

#[test]
fn arbitrary_requests_over_a_socket() {
    let api = Api::start();
    proptest!(fuzz::cases(1_000), |(seed in any::<u64>())| {
        api.socket(case(&mut Xorshift::new(seed), &api.auth))?;
    });
}

#[test]
fn arbitrary_json_bodies_shrink() {
    // Structured JSON (proptest shrinks it to a small counterexample) as every entity's body.
    let api = Api::start();
    proptest!(fuzz::cases(1_500), |(body in fuzz::json_value(KEYS), which in 0usize..4, seed in any::<u64>())| {
        let collection = ["actions", "triggers", "rules", "packages"][which];
        let mut rng = Xorshift::new(seed);
        let uri = format!("/api/v1/namespaces/_/{collection}/{}?overwrite={}", name(&mut rng), rng.one_in(2));
        let request = Request::put(&uri)
            .header(header::AUTHORIZATION, &api.auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()));
        let Ok(request) = request else { return Ok(()) };
        api.oneshot(Case { request, web: false, describe: format!("PUT {uri} {body}") })?;
    });
}

/// Arbitrary completions and health pings on the controller's topics (bytes of any shape,
/// well-formed messages with arbitrary ids, records and numbers; pings of other invokers never
/// say healthy): the controller keeps serving, and a blocking invoke still completes through
/// the same completion consumer.
#[test]
fn arbitrary_bus_messages_to_the_controller() {
    use bytes::Bytes;
    use whisk_bus::Bus;
    use whisk_proto::{CompletionMessage, Message, PingMessage};
    let api = Api::start();
    proptest!(fuzz::cases(3_000), |(seed in any::<u64>())| {
        let mut rng = Xorshift::new(seed);
        let (topic, payload) = match rng.below(4) {
            0 => ("completed0", fuzz::protobuf(&mut rng, 2)),
            1 => {
                let bytes = fuzz::protobuf(&mut rng, 1);
                // Not a well-formed healthy ping of another invoker (see below).
                if PingMessage::decode(bytes.as_slice()).is_ok_and(|p| p.status == 1 && p.invoker_id != 0) {
                    return Ok(());
                }
                ("health", bytes)
            }
            2 => {
                let record = if rng.one_in(2) { rng.bytes(40) } else { serde_json::to_vec(&rng.json(3, KEYS)).unwrap() };
                let m = CompletionMessage {
                    transaction_id: rng.text(8),
                    activation_id: if rng.one_in(2) { format!("{:032x}", rng.next_u64()) } else { rng.text(10) },
                    invoker_id: if rng.one_in(2) { 0 } else { rng.next_u64() as u32 },
                    activation: record,
                    system_error: rng.one_in(2),
                    memory_mb: rng.next_u64() >> rng.below(64),
                    live_logs: None,
                };
                ("completed0", m.encode_to_vec())
            }
            _ => {
                let m = PingMessage {
                    // Invoker 0 is the harness's: its pings say it is healthy.
                    invoker_id: 1 + (rng.next_u64() as u32 >> rng.below(32)).min(u32::MAX - 1),
                    user_memory_mb: rng.next_u64() >> rng.below(64),
                    free_memory_mb: rng.next_u64() >> rng.below(64),
                    // Any status but healthy (1): an invoker that says it is healthy gets
                    // activations, and one that then never answers fails them (as it should).
                    status: match rng.next_u64() as i32 >> rng.below(32) {
                        1 => 2,
                        s => s,
                    },
                    containers: rng.next_u64() as u32,
                    sent_at_ms: rng.next_u64() as i64,
                };
                ("health", m.encode_to_vec())
            }
        };
        api.runtime.block_on(api.harness.bus.publish(topic, Bytes::from(payload))).unwrap();
    });
    // Give the consumers time to take everything, then check the controller still works.
    let harness = &api.harness;
    api.runtime.block_on(async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let guest = common::guest();
        harness.create_action(&guest, "alive", json!([])).await;
        let (status, v) = harness
            .call(
                reqwest::Method::POST,
                "/api/v1/namespaces/_/actions/alive?blocking=true&result=true",
                Some(&guest),
                Some(json!({"x": 1})),
            )
            .await;
        assert_eq!((status, v), (200, json!({"x": 1})));
        let (status, v) = harness
            .call(reqwest::Method::GET, "/invokers", None, None)
            .await;
        assert_eq!(status, 200, "{v}");
    });
}
