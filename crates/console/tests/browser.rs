//! The web console in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol (chromiumoxide), against a `whisk standalone` started by the test (the process
//! runtime; HTTPS through the gateway with `--tls`). It loads `/console`, logs in with the
//! guest key, invokes an action that prints slowly and sees its log lines while it runs (the
//! live-logs stream), sees a gang of 4 peers appear in the peer-groups view and vanish when
//! they end, sees the cluster on the controller's own address and not through the gateway,
//! and checks that hostile log lines stay text. Screenshots go to
//! `target/<profile>/console-test/` (their paths are printed).

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures::StreamExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use whisk_test_support::{bins, free_port, missing, temp_dir, Proc};

const GUEST_KEY: &str =
    "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Prints six lines half a second apart (one hostile), then answers.
const TALKER: &str = r#"
import time
def main(args):
    for i in range(6):
        print("line %d of the talker" % i, flush=True)
        if i == 2:
            print("<img src=x id=injected onerror=alert(1)> & </pre><script>bad()</script>", flush=True)
        time.sleep(0.5)
    return {"lines": 6}
"#;

/// Says hello.
const HELLO: &str = "def main(args):\n    print('hello')\n    return {'hello': True}\n";
/// The W3C trace context a caller of `hello` sends (its trace id lands in the record).
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A peer that stays alive a few seconds.
const PEER: &str = r#"
import time
def main(args):
    time.sleep(5)
    return {"instance": args.get("instanceID")}
"#;

struct Platform {
    _proc: Proc,
    api: String,
    https: String,
    ca: PathBuf,
}

async fn start_platform(data: &Path, out: &Path) -> Platform {
    let whisk = bins::target_binary("whisk-cli", "whisk");
    let (port, tls) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(whisk);
    cmd.args(["standalone", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls", &format!("127.0.0.1:{tls}")])
        .arg("--data-dir")
        .arg(data)
        .env(
            "WHISK_CONSOLE__TRACE_URL",
            "http://127.0.0.1:16686/trace/{traceId}",
        )
        .env("RUST_LOG", "info");
    let mut proc = Proc::spawn("whisk-standalone", &mut cmd, &out.join("standalone.log"));
    proc.wait_for_http(&format!("{api}/api/v1"), Duration::from_secs(90))
        .await;
    Platform {
        _proc: proc,
        api,
        https: format!("https://127.0.0.1:{tls}"),
        ca: data.join("certs/ca.crt"),
    }
}

async fn put_action(http: &reqwest::Client, api: &str, name: &str, code: &str) {
    let (user, pass) = GUEST_KEY.split_once(':').unwrap();
    let resp = http
        .put(format!(
            "{api}/api/v1/namespaces/_/actions/{name}?overwrite=true"
        ))
        .basic_auth(user, Some(pass))
        .json(&json!({
            "exec": {"kind": "python:3", "code": code},
            "limits": {"memory": 128, "timeout": 30000},
        }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{name}: {}", resp.status());
}

/// Evaluates `expr` until it is truthy (then returns its value); fails after `within`.
async fn wait_js(page: &Page, what: &str, expr: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let last = match page.evaluate(expr).await {
            Ok(v) => {
                let last = v.into_value::<Value>().unwrap_or(Value::Null);
                let truthy = match &last {
                    Value::Null => false,
                    Value::Bool(b) => *b,
                    Value::String(s) => !s.is_empty(),
                    Value::Number(n) => n.as_f64() != Some(0.0),
                    _ => true,
                };
                if truthy {
                    return last;
                }
                last
            }
            Err(e) => Value::String(format!("evaluation failed: {e}")),
        };
        if Instant::now() > deadline {
            let at = page
                .evaluate("location.href + ' | ' + document.title + ' | ' + (document.body ? document.body.innerText.slice(0, 300) : '')")
                .await
                .map(|v| v.into_value::<Value>().unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            panic!("{what}: not within {within:?} (last value {last}; page: {at})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn js(page: &Page, expr: &str) -> Value {
    page.evaluate(expr)
        .await
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .into_value::<Value>()
        .unwrap_or(Value::Null)
}

async fn shot(page: &Page, out: &Path, name: &str) {
    let path = out.join(format!("{name}.png"));
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &path)
        .await
        .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    println!("screenshot: {}", path.display());
}

async fn login(page: &Page) {
    wait_js(
        page,
        "the login form",
        "!!document.getElementById('key')",
        secs(30),
    )
    .await;
    page.find_element("#key")
        .await
        .unwrap()
        .click()
        .await
        .unwrap()
        .type_str(GUEST_KEY)
        .await
        .unwrap();
    page.find_element("#login-form button[type=submit]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(
        page,
        "logged in",
        "!document.getElementById('tabs').hidden",
        secs(10),
    )
    .await;
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Clicks `selector`, trying again for a while when the page has just replaced the element
/// (lists are re-rendered as they load).
async fn click(page: &Page, selector: &str) {
    let deadline = Instant::now() + secs(5);
    loop {
        let error = match page.find_element(selector).await {
            Ok(e) => match e.click().await {
                Ok(_) => return,
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(Instant::now() < deadline, "clicking {selector}: {error}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        missing(
            "chromium",
            "apt-get install chromium (scripts/test.sh installs it)",
        );
    }
    let out = bins::target_dir().join("console-test");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let data = temp_dir();
    let platform = start_platform(data.path(), &out).await;
    let http = reqwest::Client::new();
    put_action(&http, &platform.api, "talker", TALKER).await;
    put_action(&http, &platform.api, "peer", PEER).await;
    put_action(&http, &platform.api, "hello", HELLO).await;

    // The page's answer: a strict CSP, and no key anywhere.
    let resp = http
        .get(format!("{}/console", platform.api))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"));

    let profile = temp_dir();
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .no_sandbox()
        .user_data_dir(profile.path())
        .window_size(1400, 1000)
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config)
        .await
        .unwrap_or_else(|e| panic!("launching {CHROMIUM}: {e}"));
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser
        .new_page(format!("{}/console", platform.api))
        .await
        .unwrap();
    login(&page).await;
    let url = js(&page, "location.href").await;
    assert!(
        !url.to_string().contains("123zO3x"),
        "no key in the URL: {url}"
    );
    wait_js(
        &page,
        "the action list",
        "!!document.querySelector('[data-action=\"talker\"]')",
        secs(10),
    )
    .await;
    shot(&page, &out, "1-actions").await;

    // Invoke the talker from its form and see its lines while it runs.
    click(&page, "[data-action=\"talker\"]").await;
    wait_js(
        &page,
        "the action's code",
        "document.getElementById('action-code').textContent.includes('line %d of the talker')",
        secs(10),
    )
    .await;
    click(&page, "#invoke-button").await;
    let live = wait_js(
        &page,
        "a live log line",
        "(() => { const t = document.getElementById('activation-logs').textContent; \
           return t.includes('line 0 of the talker') \
             ? {text: t, state: document.getElementById('log-state').textContent} : null; })()",
        secs(30),
    )
    .await;
    shot(&page, &out, "2-live-logs").await;
    assert!(
        !live["text"]
            .as_str()
            .unwrap()
            .contains("line 5 of the talker"),
        "the first line was shown before the activation ended: {live}"
    );
    assert_eq!(live["state"], "live", "{live}");
    wait_js(
        &page,
        "the end of the activation and its result",
        "document.getElementById('log-state').textContent === 'ended' && \
         document.getElementById('activation-result').textContent.includes('\"lines\": 6')",
        secs(30),
    )
    .await;
    let logs = js(
        &page,
        "document.getElementById('activation-logs').textContent",
    )
    .await;
    let logs = logs.as_str().unwrap();
    for i in 0..6 {
        assert!(logs.contains(&format!("line {i} of the talker")), "{logs}");
    }
    // The hostile line is text: no element was made from it, no script ran.
    assert!(
        logs.contains("<img src=x id=injected onerror=alert(1)>"),
        "{logs}"
    );
    assert_eq!(
        js(
            &page,
            "document.querySelectorAll('#injected, pre script').length"
        )
        .await,
        json!(0)
    );
    let meta = js(
        &page,
        "document.getElementById('activation-meta').textContent",
    )
    .await;
    assert!(meta.as_str().unwrap().contains("success"), "{meta}");
    shot(&page, &out, "3-activation").await;

    // An activation whose caller sent a traceparent: its record links to the trace UI.
    let (user, pass) = GUEST_KEY.split_once(':').unwrap();
    let traced: Value = http
        .post(format!(
            "{}/api/v1/namespaces/_/actions/hello?blocking=true",
            platform.api
        ))
        .basic_auth(user, Some(pass))
        .header("traceparent", TRACEPARENT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = traced["activationId"].as_str().unwrap().to_string();
    let row = format!("[data-activation=\"{id}\"]");
    wait_js(
        &page,
        "the traced activation in the list",
        &format!("!!document.querySelector('{row}')"),
        secs(10),
    )
    .await;
    click(&page, &row).await;
    let href = wait_js(
        &page,
        "the trace link",
        "(() => { const a = document.getElementById('trace-link'); return a ? a.href : null; })()",
        secs(10),
    )
    .await;
    assert_eq!(
        href,
        "http://127.0.0.1:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"
    );
    shot(&page, &out, "3b-trace-link").await;

    // A gang of 4 peers: their group appears with 4 instances, then vanishes.
    click(&page, "[data-tab=\"actions\"]").await;
    wait_js(
        &page,
        "the action list again",
        "!!document.querySelector('[data-action=\"peer\"]')",
        secs(10),
    )
    .await;
    click(&page, "[data-action=\"peer\"]").await;
    wait_js(
        &page,
        "the peer action",
        "document.getElementById('action-name').textContent === 'peer'",
        secs(10),
    )
    .await;
    js(
        &page,
        "document.getElementById('invoke-instances').value = '4'; true",
    )
    .await;
    let started = Instant::now();
    click(&page, "#invoke-button").await;
    let group = wait_js(
        &page,
        "a peer group of 4",
        "(() => { const g = document.querySelector('.group[data-size=\"4\"]'); \
           return g ? g.dataset.group : null; })()",
        secs(30),
    )
    .await;
    println!(
        "peer group {group} of 4 shown {:?} after the invoke",
        started.elapsed()
    );
    let rows = js(
        &page,
        "document.querySelectorAll('.group[data-size=\"4\"] tr').length",
    )
    .await;
    assert_eq!(rows, json!(5), "a header and four instances");
    shot(&page, &out, "4-peer-group").await;
    // Meanwhile the four run: the activations list shows them as running.
    click(&page, "[data-tab=\"activations\"]").await;
    wait_js(
        &page,
        "four running activations",
        "document.querySelectorAll('#activation-table tr.running').length >= 4",
        secs(10),
    )
    .await;
    shot(&page, &out, "4b-running").await;
    click(&page, "[data-tab=\"groups\"]").await;
    wait_js(
        &page,
        "the peer group gone",
        "document.querySelectorAll('.group').length === 0",
        secs(30),
    )
    .await;
    println!("peer group gone {:?} after the invoke", started.elapsed());
    shot(&page, &out, "5-peer-group-gone").await;

    // The cluster on the controller's own address (the operator's).
    click(&page, "[data-tab=\"cluster\"]").await;
    wait_js(
        &page,
        "the invokers",
        "document.querySelectorAll('#invoker-table tbody tr').length >= 1 && \
         document.querySelectorAll('#chart-containers svg').length === 1 && \
         document.querySelectorAll('#chart-placed svg, #chart-inflight svg').length === 2",
        secs(10),
    )
    .await;
    shot(&page, &out, "6-cluster").await;

    // Through the gateway (HTTPS, the public edge): the console and the namespace's data
    // pass, the cluster does not.
    // A blank page first: its target is set up (certificate errors ignored: the gateway's
    // certificate is the test platform's own CA's) before it navigates.
    let edge = browser.new_page("about:blank").await.unwrap();
    edge.goto(format!("{}/console", platform.https))
        .await
        .unwrap();
    login(&edge).await;
    click(&edge, "[data-tab=\"cluster\"]").await;
    wait_js(
        &edge,
        "the operator-only note",
        "document.getElementById('cluster-note').textContent.includes('for operators') && \
         document.getElementById('cluster-body').hidden",
        secs(10),
    )
    .await;
    shot(&edge, &out, "7-gateway-cluster-hidden").await;
    click(&edge, "[data-tab=\"groups\"]").await;
    wait_js(
        &edge,
        "the live groups stream through the gateway",
        "document.getElementById('groups-state').textContent === 'live'",
        secs(10),
    )
    .await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&platform.ca).unwrap()).unwrap();
    let tls = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    for path in ["/invokers/details", "/invokers", "/metrics"] {
        let r = tls
            .get(format!("{}{path}", platform.https))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} through the gateway");
    }

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
}
