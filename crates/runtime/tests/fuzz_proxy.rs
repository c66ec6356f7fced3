//! Property tests of the action proxy's `/init` and `/run` bodies.
//!
//! - The parsers ([`protocol::parse_init`], [`protocol::parse_run`]) take arbitrary bytes and
//!   arbitrary JSON without panicking: a body is parsed or refused as a bad request, and a
//!   parsed run request's launcher line is one JSON line carrying the same value and env.
//! - The real `whisk-proxy` binary (Python and Node.js launchers), over HTTP: arbitrary `/run` bodies
//!   before `/init` get 403; arbitrary `/init` bodies that are refused get 400 and leave the
//!   proxy able to initialize; after a real `/init`, arbitrary `/run` bodies get a JSON object
//!   (200) or the protocol's `{"error": "..."}` with 400 or 502 — never a 500, never a dropped
//!   connection, and the proxy still runs the next activation. Arbitrary `/init` bodies that
//!   parse (any `main`, `env`, `binary`, base64 or zip garbage) each on a fresh proxy: 200, or
//!   `{"error"}` with 400 or 502.
//!
//! `WHISK_FUZZ_CASES` multiplies the case counts.

mod support;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use support::Running;
use whisk_runtime::protocol::{parse_init, parse_run};
use whisk_runtime::ProxyError;
use whisk_test_support::fuzz::{self, Xorshift};

const KEYS: &[&str] = &[
    "value",
    "code",
    "main",
    "binary",
    "env",
    "name",
    "namespace",
    "action_name",
    "activation_id",
    "deadline",
    "api_key",
    "transaction_id",
    "__OW_X",
    "PATH",
    "a=b",
    "",
];

/// An `/init` or `/run` body from `rng`: shaped like the protocol's, with any part replaced.
fn body(rng: &mut Xorshift) -> Vec<u8> {
    match rng.below(6) {
        0 => rng.bytes(48),
        1 => serde_json::to_vec(&rng.json(3, KEYS)).unwrap(),
        _ => {
            let mut value = Map::new();
            for key in ["code", "main", "binary", "env", "name"] {
                if rng.one_in(2) {
                    let v = match (key, rng.below(3)) {
                        ("code", 0) => json!(rng.text(30)),
                        ("main", 0) => json!(rng.pick(&["main", "", "nope", "__init__", "os"])),
                        ("binary", 0) => json!(rng.one_in(2)),
                        ("env", 0) => {
                            let mut env = Map::new();
                            for _ in 0..rng.below(3) {
                                env.insert(rng.text(4), rng.json(1, KEYS));
                            }
                            Value::Object(env)
                        }
                        _ => rng.json(2, KEYS),
                    };
                    value.insert(key.into(), v);
                }
            }
            let mut outer = Map::new();
            outer.insert(
                "value".into(),
                if rng.one_in(5) {
                    rng.json(2, KEYS)
                } else {
                    Value::Object(value)
                },
            );
            for _ in 0..rng.below(4) {
                outer.insert(rng.pick(KEYS).to_string(), rng.json(1, KEYS));
            }
            serde_json::to_vec(&outer).unwrap()
        }
    }
}

/// Equal JSON, floats within a relative 1e-12.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn check_parsers(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_init(bytes) {
        Ok(init) => prop_assert!(!init.code.is_empty() && !init.main.is_empty()),
        Err(e) => prop_assert!(matches!(e, ProxyError::BadRequest(_)), "{e:?}"),
    }
    match parse_run(bytes) {
        Ok(run) => {
            let line = run.to_line();
            prop_assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
            let back: Value = serde_json::from_slice(&line).unwrap();
            // serde_json's default float parsing may land one unit off in the last place.
            prop_assert!(
                same(&back["value"], &run.value),
                "{} != {}",
                back["value"],
                run.value
            );
            prop_assert_eq!(back["env"].as_object(), Some(&run.env));
            prop_assert!(run.env.keys().all(|k| k.starts_with("__OW_")));
            prop_assert!(run.env.values().all(Value::is_string));
        }
        Err(e) => prop_assert!(matches!(e, ProxyError::BadRequest(_)), "{e:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz::cases(20_000))]

    #[test]
    fn bodies_parse_or_are_bad_requests(seed in any::<u64>()) {
        check_parsers(&body(&mut Xorshift::new(seed)))?;
    }
}

proptest! {
    #![proptest_config(fuzz::cases(2_000))]

    #[test]
    fn json_bodies_parse_or_are_bad_requests(value in fuzz::json_value(KEYS)) {
        check_parsers(&serde_json::to_vec(&value).unwrap())?;
        check_parsers(&serde_json::to_vec(&json!({"value": value})).unwrap())?;
    }
}

/// POSTs `body` to `path` of `proxy`; the status and JSON answer (never a dropped connection).
async fn post(proxy: &Running, path: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", proxy.base))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{path} {:?}: no answer: {e}",
                String::from_utf8_lossy(&body)
            )
        });
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a whole answer");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{path} {:?}: {status} not JSON ({e}): {text}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, value)
}

/// The protocol's error body: `{"error": "<text>"}`.
fn is_error(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| o.len() == 1 && o["error"].is_string())
}

const ECHO: &str = "def main(args):\n    return args\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bodies_over_http() {
    bodies_over_http("python", ECHO, 800).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_bodies_over_http_nodejs() {
    bodies_over_http("nodejs", "function main(args) { return args; }", 300).await;
}

/// Arbitrary `/run` and `/init` bodies before `/init`, then arbitrary `/run` bodies after an
/// `/init` of the echo function `code`: `n` of each.
async fn bodies_over_http(family: &str, code: &str, n: u32) {
    let proxy = Running::start(family).await;
    let mut seeds = Xorshift::new(fuzz::seed());
    let n = fuzz::cases(n).cases;
    // Before /init: refused runs, refused inits (which leave it uninitialized).
    for _ in 0..n {
        let seed = seeds.next_u64();
        let mut rng = Xorshift::new(seed);
        let b = body(&mut rng);
        let (status, v) = post(&proxy, "/run", b).await;
        assert!(
            status == 403 && is_error(&v),
            "seed {seed}: run before init: {status} {v}"
        );
        let b = body(&mut rng);
        if parse_init(&b).is_err() {
            let (status, v) = post(&proxy, "/init", b.clone()).await;
            assert!(
                status == 400 && is_error(&v),
                "seed {seed}: init {:?}: {status} {v}",
                String::from_utf8_lossy(&b)
            );
        }
    }
    let init = json!({"value": {"code": code, "main": "main"}})
        .to_string()
        .into_bytes();
    assert_eq!(
        post(&proxy, "/init", init).await,
        (200, json!({"ok": true}))
    );
    // After /init: any run body is answered within the protocol, and the proxy keeps running.
    for _ in 0..n {
        let seed = seeds.next_u64();
        let b = body(&mut Xorshift::new(seed));
        let (status, v) = post(&proxy, "/run", b.clone()).await;
        let ok = match status {
            200 => v.is_object(),
            400 | 502 => is_error(&v),
            _ => false,
        };
        assert!(
            ok,
            "seed {seed}: run {:?}: {status} {v}",
            String::from_utf8_lossy(&b)
        );
        if status == 502 {
            let (status, v) = post(&proxy, "/run", br#"{"value": {"x": 1}}"#.to_vec()).await;
            assert_eq!(
                (status, v),
                (200, json!({"x": 1})),
                "seed {seed}: the proxy stopped running after {:?}",
                String::from_utf8_lossy(&b)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_inits_on_fresh_proxies() {
    let mut seeds = Xorshift::new(fuzz::seed());
    let mut tried = 0;
    while tried < fuzz::cases(40).cases {
        let seed = seeds.next_u64();
        let b = body(&mut Xorshift::new(seed));
        let Ok(_) = parse_init(&b) else { continue };
        tried += 1;
        let proxy = Running::start("python").await;
        let (status, v) = post(&proxy, "/init", b.clone()).await;
        let ok = match status {
            200 => v == json!({"ok": true}),
            400 | 502 => is_error(&v),
            _ => false,
        };
        assert!(
            ok,
            "seed {seed}: init {:?}: {status} {v}",
            String::from_utf8_lossy(&b)
        );
    }
}

/// Found by `arbitrary_bodies_over_http`: a run whose env value holds a NUL killed the Python
/// launcher (`os.environ.update` raised), and every later run of the container answered 502.
#[tokio::test]
async fn a_nul_in_a_run_variable_does_not_kill_the_launcher() {
    let proxy = Running::start("python").await;
    let init = json!({"value": {"code": ECHO}}).to_string().into_bytes();
    assert_eq!(post(&proxy, "/init", init).await.0, 200);
    let run = json!({"value": {"a": 1}, "x": "a\u{0}b", "a=b": "c"})
        .to_string()
        .into_bytes();
    assert_eq!(post(&proxy, "/run", run).await, (200, json!({"a": 1})));
    let run = json!({"value": {"b": 2}}).to_string().into_bytes();
    assert_eq!(post(&proxy, "/run", run).await, (200, json!({"b": 2})));
}

/// The same at `/init`: an env name or value no variable can hold is the action's init error.
#[tokio::test]
async fn an_impossible_init_variable_is_an_init_error() {
    for env in [json!({"A=B": 1}), json!({"A": "x\u{0}y"}), json!({"": 1})] {
        let proxy = Running::start("python").await;
        let init = json!({"value": {"code": ECHO, "env": env}})
            .to_string()
            .into_bytes();
        let (status, v) = post(&proxy, "/init", init).await;
        assert_eq!(status, 502, "{env}: {v}");
        let message = v["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("Invalid environment variable"),
            "{env}: {v}"
        );
    }
}
