//! The `whisk` binary against a fake OpenWhisk API (axum on 127.0.0.1:0, recording every
//! request): the exact requests it sends and the exact lines it prints.
//!
//! Why one file of this length: one fake API and one table of expected requests and lines serve
//! every client command; the cases are short and independent.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use whisk_core::identity::GUEST_KEY;

mod support;
use support::{stderr, stdout, whisk_private};

/// One request the fake server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: String,
    auth: String,
    body: Value,
}

type Responder = Arc<dyn Fn(&Recorded) -> (u16, Value) + Send + Sync>;

#[derive(Clone)]
struct FakeState {
    log: Arc<Mutex<Vec<Recorded>>>,
    respond: Responder,
}

struct Fake {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl Fake {
    fn start(respond: impl Fn(&Recorded) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            log: log.clone(),
            respond: Arc::new(respond),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let app = Router::new().fallback(handle).with_state(state);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("fake server address");
        Self { addr, log }
    }

    fn apihost(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let reqs = self.requests();
        assert_eq!(reqs.len(), 1, "expected one request, got {reqs:#?}");
        reqs[0].clone()
    }
}

async fn handle(
    State(s): State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let rec = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        auth: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body: if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        },
    };
    let (status, answer) = (s.respond)(&rec);
    s.log.lock().unwrap().push(rec);
    (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response()
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Runs `whisk` with a private wskprops file and none of the `WHISK_*` variables.
fn whisk(config: &Path, args: &[&str]) -> Output {
    whisk_private(config, config.parent().unwrap())
        .args(args)
        .output()
        .expect("run whisk")
}

struct Env {
    dir: whisk_test_support::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: whisk_test_support::temp_dir(),
        }
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("wskprops")
    }
    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }
}

const ID: &str = "c7bb1339cb4f40e3a6ccead6c99f804e";

#[test]
fn action_create_sends_wsk_request() {
    let fake = Fake::start(|_| (200, json!({"name": "fib"})));
    let env = Env::new();
    let code = env.file("fib.py", "def main(args):\n    return {}\n");
    let host = fake.apihost();
    let out = whisk(
        &env.config(),
        &[
            "action",
            "create",
            "fib",
            &code,
            "--apihost",
            &host,
            "-p",
            "number",
            "39",
            "-p",
            "instanceID",
            "myname0",
            "-p",
            "x",
            "\"0\"",
            "-t",
            "300000",
            "-m",
            "512",
            "-a",
            "description",
            "fib",
        ],
    );
    assert_eq!(
        stdout(&out),
        "ok: created action fib\n",
        "stderr: {}",
        stderr(&out)
    );
    assert!(out.status.success());
    let req = fake.only_request();
    assert_eq!(req.method, "PUT");
    assert_eq!(req.path, "/api/v1/namespaces/_/actions/fib");
    assert_eq!(req.query, "overwrite=false");
    assert_eq!(req.auth, basic(GUEST_KEY));
    assert_eq!(
        req.body,
        json!({
            "exec": {"kind": "python:default", "code": "def main(args):\n    return {}\n"},
            "parameters": [{"key": "number", "value": 39}, {"key": "instanceID", "value": "myname0"},
                           {"key": "x", "value": "0"}],
            "annotations": [{"key": "description", "value": "fib"}],
            "limits": {"timeout": 300000, "memory": 512}
        })
    );
}

#[test]
fn action_update_docker_in_package_with_space() {
    let fake = Fake::start(|_| (200, json!({})));
    let env = Env::new();
    let code = env.file("f.py", "print(1)");
    let host = fake.apihost();
    let out = whisk(
        &env.config(),
        &[
            "-i",
            "action",
            "update",
            "--docker",
            "yangzhou1997/python3action:mpi",
            "pkg/my act",
            &code,
            "--apihost",
            &host,
            "-u",
            "u1:k1",
        ],
    );
    assert_eq!(
        stdout(&out),
        "ok: updated action pkg/my act\n",
        "stderr: {}",
        stderr(&out)
    );
    let req = fake.only_request();
    assert_eq!(req.path, "/api/v1/namespaces/_/actions/pkg/my%20act");
    assert_eq!(req.query, "overwrite=true");
    assert_eq!(req.auth, basic("u1:k1"));
    assert_eq!(
        req.body,
        json!({"exec": {"kind": "blackbox", "image": "yangzhou1997/python3action:mpi", "code": "print(1)"}})
    );
}

#[test]
fn action_create_without_artifact_is_a_usage_error() {
    let fake = Fake::start(|_| (200, json!({})));
    let env = Env::new();
    let out = whisk(
        &env.config(),
        &["action", "create", "fib", "--apihost", &fake.apihost()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: An action name and code artifact are required.\n"
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn invoke_non_blocking_prints_the_seed_parsable_line() {
    let fake = Fake::start(|_| (202, json!({"activationId": ID})));
    let env = Env::new();
    let out = whisk(
        &env.config(),
        &[
            "action",
            "invoke",
            "/whisk.system/fib",
            "-p",
            "instanceID",
            "0",
            "-p",
            "name",
            "myname0",
            "--apihost",
            &fake.apihost(),
        ],
    );
    let text = stdout(&out);
    assert_eq!(
        text,
        format!("ok: invoked /whisk.system/fib with id {ID}\n")
    );
    assert_eq!(text.trim_end().split(' ').nth(5), Some(ID));
    let req = fake.only_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/v1/namespaces/whisk.system/actions/fib");
    assert_eq!(req.query, "blocking=false&result=false");
    assert_eq!(req.body, json!({"instanceID": 0, "name": "myname0"}));

    let out = whisk(
        &env.config(),
        &["action", "invoke", "fib", "--apihost", &fake.apihost()],
    );
    assert_eq!(stdout(&out), format!("ok: invoked /_/fib with id {ID}\n"));
    assert_eq!(fake.requests()[1].body, json!({}));
}

#[test]
fn invoke_blocking_result_and_failures() {
    let record = json!({"activationId": ID, "response": {"status": "application error", "success": false,
                        "result": {"error": "boom"}}});
    let rec = record.clone();
    let fake = Fake::start(move |r| match r.path.rsplit('/').next().unwrap() {
        "ok" => (200, json!({"fibonacci": 832040})),
        "full" => (
            200,
            json!({"activationId": ID, "response": {"result": {"x": 1}}}),
        ),
        "slow" => (202, json!({"activationId": ID})),
        "fails" => (502, rec.clone()),
        _ => (
            404,
            json!({"error": "The requested resource does not exist.", "code": "t1"}),
        ),
    });
    let env = Env::new();
    let host = fake.apihost();

    let out = whisk(
        &env.config(),
        &["action", "invoke", "ok", "-r", "--apihost", &host],
    );
    assert_eq!(stdout(&out), "{\n    \"fibonacci\": 832040\n}\n");
    assert_eq!(fake.requests()[0].query, "blocking=true&result=true");

    let out = whisk(
        &env.config(),
        &["action", "invoke", "full", "-b", "--apihost", &host],
    );
    let text = stdout(&out);
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, format!("ok: invoked /_/full with id {ID}"));
    assert_eq!(
        serde_json::from_str::<Value>(rest).unwrap()["response"]["result"],
        json!({"x": 1})
    );
    assert_eq!(fake.requests()[1].query, "blocking=true&result=false");

    let out = whisk(
        &env.config(),
        &["action", "invoke", "slow", "-b", "--apihost", &host],
    );
    assert_eq!(out.status.code(), Some(202));
    assert_eq!(
        stderr(&out),
        format!("ok: invoked /_/slow, but the request has not yet finished, with id {ID}\n")
    );

    let out = whisk(
        &env.config(),
        &["action", "invoke", "fails", "-b", "--apihost", &host],
    );
    assert_eq!(out.status.code(), Some(246));
    let err = stderr(&out);
    let (first, rest) = err.split_once('\n').unwrap();
    assert_eq!(first, format!("ok: invoked /_/fails with id {ID}"));
    assert_eq!(serde_json::from_str::<Value>(rest).unwrap(), record);

    let out = whisk(
        &env.config(),
        &["action", "invoke", "nope", "--apihost", &host],
    );
    assert_eq!(out.status.code(), Some(148));
    assert_eq!(
        stderr(&out),
        "error: Unable to invoke action 'nope': The requested resource does not exist. (code t1)\n"
    );
}

#[test]
fn invoke_instances_prints_every_id() {
    let fake = Fake::start(|_| (202, json!({"activationIds": ["a1", "a2"]})));
    let env = Env::new();
    let out = whisk(
        &env.config(),
        &[
            "action",
            "invoke",
            "mpi",
            "--instances",
            "2",
            "--apihost",
            &fake.apihost(),
        ],
    );
    assert_eq!(
        stdout(&out),
        "ok: invoked /_/mpi with id a1\nok: invoked /_/mpi with id a2\n"
    );
    assert_eq!(
        fake.only_request().query,
        "blocking=false&result=false&instances=2"
    );
}

#[test]
fn activation_get_prints_ok_line_then_json() {
    let record: Value = serde_json::from_str(&format!(
        r#"{{"namespace": "guest", "name": "fib", "activationId": "{ID}", "start": 1, "end": 3, "duration": 2,
            "response": {{"status": "success", "success": true, "result": {{"fibonacci": 1}}}},
            "logs": ["2019-05-10T12:00:00.1Z stdout: hi"],
            "annotations": [{{"key": "path", "value": "guest/fib"}}, {{"key": "waitTime", "value": 66}},
                            {{"key": "kind", "value": "blackbox"}}, {{"key": "timeout", "value": false}},
                            {{"key": "limits", "value": {{"memory": 256}}}}, {{"key": "initTime", "value": 50}}]}}"#
    ))
    .unwrap();
    let rec = record.clone();
    let fake = Fake::start(move |r| {
        if r.path.ends_with("/logs") {
            (200, json!({"logs": rec["logs"]}))
        } else if r.path.ends_with("/result") {
            (200, rec["response"].clone())
        } else {
            (200, rec.clone())
        }
    });
    let env = Env::new();
    let host = fake.apihost();
    let out = whisk(
        &env.config(),
        &["activation", "get", ID, "--apihost", &host],
    );
    let text = stdout(&out);
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, format!("ok: got activation {ID}"));
    let parsed: Value = serde_json::from_str(rest).unwrap();
    assert_eq!(parsed, record);
    assert_eq!(parsed["annotations"][1]["value"], json!(66));
    assert_eq!(parsed["annotations"][5]["value"], json!(50));
    let req = fake.only_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        (
            "GET",
            format!("/api/v1/namespaces/_/activations/{ID}").as_str()
        )
    );

    let out = whisk(
        &env.config(),
        &["activation", "logs", ID, "--strip", "--apihost", &host],
    );
    assert_eq!(stdout(&out), "hi\n");
    let out = whisk(
        &env.config(),
        &["activation", "result", ID, "--apihost", &host],
    );
    assert_eq!(stdout(&out), "{\n    \"fibonacci\": 1\n}\n");
}

#[test]
fn lists_print_wsk_tables() {
    let fake = Fake::start(|r| match r.path.as_str() {
        "/api/v1/namespaces" => (200, json!(["guest"])),
        p if p.ends_with("/actions") => (
            200,
            json!([{"namespace": "guest", "name": "fib", "publish": false,
                    "annotations": [{"key": "exec", "value": "python:3"}]}]),
        ),
        _ => (200, json!([{"activationId": ID, "name": "fib"}])),
    });
    let env = Env::new();
    let host = fake.apihost();
    let out = whisk(&env.config(), &["action", "list", "--apihost", &host]);
    assert_eq!(
        stdout(&out),
        format!("actions\n{:<70} private python:3\n", "/guest/fib")
    );
    let out = whisk(
        &env.config(),
        &[
            "activation",
            "list",
            "fib",
            "--limit",
            "5",
            "--apihost",
            &host,
        ],
    );
    assert_eq!(stdout(&out), format!("activations\n{ID} {:<20}\n", "fib"));
    let out = whisk(&env.config(), &["namespace", "list", "--apihost", &host]);
    assert_eq!(stdout(&out), "namespaces\nguest\n");
    let reqs = fake.requests();
    assert_eq!(reqs[0].query, "limit=30&skip=0");
    assert_eq!(reqs[1].query, "limit=5&name=fib&skip=0");
}

#[test]
fn property_set_get_and_use() {
    let fake = Fake::start(|_| (202, json!({"activationId": ID})));
    let env = Env::new();
    let host = fake.apihost();
    let out = whisk(
        &env.config(),
        &[
            "property",
            "set",
            "--apihost",
            &host,
            "--auth",
            "u2:k2",
            "--namespace",
            "ns1",
        ],
    );
    assert_eq!(
        stdout(&out),
        format!(
            "ok: whisk auth set. Run 'whisk property get --auth' to see the new value.\n\
             ok: whisk API host set to {host}\nok: whisk namespace set to ns1\n"
        )
    );
    let file = std::fs::read_to_string(env.config()).unwrap();
    assert_eq!(file, format!("AUTH=u2:k2\nAPIHOST={host}\nNAMESPACE=ns1\n"));

    let out = whisk(&env.config(), &["property", "get", "--apihost"]);
    assert_eq!(stdout(&out), format!("whisk API host\t\t{host}\n"));
    let out = whisk(&env.config(), &["property", "get", "--auth"]);
    assert_eq!(stdout(&out), "whisk auth\t\tu2:k2\n");
    let out = whisk(&env.config(), &["property", "get"]);
    assert!(stdout(&out).starts_with(&format!("whisk auth\t\tu2:k2\nwhisk API host\t\t{host}\nwhisk API version\tv1\nwhisk namespace\t\tns1\n")));

    let out = whisk(&env.config(), &["action", "invoke", "fib"]);
    assert_eq!(
        stdout(&out),
        format!("ok: invoked /ns1/fib with id {ID}\n"),
        "stderr: {}",
        stderr(&out)
    );
    let req = fake.only_request();
    assert_eq!(req.path, "/api/v1/namespaces/ns1/actions/fib");
    assert_eq!(req.auth, basic("u2:k2"));

    let out = whisk(&env.config(), &["property", "unset", "--namespace"]);
    assert_eq!(stdout(&out), "ok: whisk namespace unset.\n");
    let fresh = Env::new();
    let out = whisk(&fresh.config(), &["property", "get", "--apihost", "--auth"]);
    assert_eq!(
        stdout(&out),
        format!("whisk auth\t\t{GUEST_KEY}\nwhisk API host\t\thttp://127.0.0.1:3233\n")
    );
}

#[test]
fn unreachable_host_suggests_standalone() {
    let port = whisk_test_support::free_port();
    let env = Env::new();
    let host = format!("http://127.0.0.1:{port}");
    let out = whisk(&env.config(), &["action", "list", "--apihost", &host]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: Unable to connect to the whisk API host"),
        "{err}"
    );
    assert!(
        err.contains(&host) && err.contains("whisk standalone"),
        "{err}"
    );
}

/// `whisk admin` as `wskadmin`: users, keys and limits straight in the store file.
#[test]
fn admin_users_keys_and_limits_in_the_store() {
    let env = Env::new();
    let data = env.dir.path().join("data");
    let data_s = data.to_string_lossy().into_owned();
    let admin = |args: &[&str]| {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--data-dir", &data_s]);
        whisk(&env.config(), &all)
    };
    let out = admin(&["user", "create", "alice", "--invocations-per-minute", "999"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let key = stdout(&out).trim_end().to_string();
    let (uuid, secret) = key.split_once(':').expect("uuid:key");
    assert_eq!((uuid.len(), secret.len()), (36, 64));
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = admin(&["user", "list", "alice"]);
    assert_eq!(stdout(&out), format!("{key}\talice\talice\n"));
    let out = admin(&["user", "whois", &key]);
    assert_eq!(stdout(&out), "subject: alice\nnamespace: alice\n");
    let out = admin(&["limits", "get", "alice"]);
    assert_eq!(stdout(&out), "invocationsPerMinute = 999\n");
    let out = admin(&["limits", "set", "alice", "--concurrent-invocations", "5"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let out = admin(&["limits", "get", "alice"]);
    assert_eq!(stdout(&out), "concurrentInvocations = 5\n");

    let out = admin(&["key", "regenerate", "alice"]);
    let fresh = stdout(&out).trim_end().to_string();
    assert!(
        out.status.success() && fresh != key,
        "{fresh}: {}",
        stderr(&out)
    );
    let out = admin(&["user", "get", "alice"]);
    assert_eq!(stdout(&out), format!("{fresh}\talice\talice\n"));

    // Bad names and unknown users: a clear error, exit 1, nothing stored.
    let out = admin(&["user", "create", "bob", "--namespace", "../x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("namespace '../x' is not valid"),
        "{}",
        stderr(&out)
    );
    let out = admin(&["user", "get", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    let out = admin(&["user", "delete", "alice"]);
    assert_eq!(stdout(&out), "Subject deleted\n");
    let out = admin(&["user", "list", "alice"]);
    assert_eq!(stdout(&out), "");

    // A process holds the file but serves no admin socket: a clear error.
    let held = whisk_store::EmbeddedStore::open(&data.join("whisk.redb")).expect("open store");
    let out = admin(&["user", "create", "carol"]);
    drop(held);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("admin socket"), "{}", stderr(&out));
}
