//! Test harness: runs the real `whisk-proxy` binary on a free loopback port
//! and captures its stdout and stderr (where the function's logs go).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// A running proxy; SIGTERM on drop.
pub struct Running {
    child: Child,
    pub base: String,
    client: reqwest::Client,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn capture(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    text
}

impl Running {
    /// Starts a proxy of `family` and waits until `/health` answers.
    pub async fn start(family: &str) -> Running {
        Self::start_with_env(family, &[]).await
    }

    /// [`Running::start`] with extra environment variables for the proxy.
    pub async fn start_with_env(family: &str, env: &[(&str, &str)]) -> Running {
        let listen = whisk_test_support::free_addr().to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_whisk-proxy"))
            .args(["--listen", &listen, "--family", family])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn whisk-proxy");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let running = Running {
            child,
            base: format!("http://{listen}"),
            client: reqwest::Client::new(),
            stdout,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let health = running
                .client
                .get(format!("{}/health", running.base))
                .send()
                .await;
            if matches!(&health, Ok(r) if r.status() == 200) {
                return running;
            }
            assert!(Instant::now() < deadline, "proxy did not become healthy");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// POSTs raw text to `path`; returns status and JSON body.
    pub async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// `/init` with source code and `main`.
    pub async fn init(&self, code: &str) -> (u16, Value) {
        self.post(
            "/init",
            json!({"value": {"name": "t", "main": "main", "code": code}}),
        )
        .await
    }

    /// `/run` with these params and an activation id.
    pub async fn run(&self, value: Value) -> (u16, Value) {
        let body = json!({
            "value": value, "namespace": "guest", "action_name": "/guest/t",
            "activation_id": "act-1", "transaction_id": "tid", "deadline": "0",
        });
        self.post("/run", body).await
    }

    fn wait_for(stream: &Mutex<String>, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = stream.lock().unwrap().clone();
            if text.matches(SENTINEL).count() >= count {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} sentinels in {text:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stdout once it holds `count` sentinels.
    pub fn stdout_with(&self, count: usize) -> String {
        Self::wait_for(&self.stdout, count)
    }

    /// Stderr once it holds `count` sentinels.
    pub fn stderr_with(&self, count: usize) -> String {
        Self::wait_for(&self.stderr, count)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        whisk_test_support::signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A base64 zip of `files` (name, contents).
pub fn zip_base64(files: &[(&str, &str)]) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in files {
            zip.start_file(*name, options).unwrap();
            zip.write_all(contents.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
}
