//! HTTP client of the action proxy protocol: `POST /init` and `POST /run` against a
//! container's address, with a deadline and a cap on how much of an answer is read.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;

/// Why a call to the proxy produced no answer.
#[derive(Debug, Error)]
pub enum CallError {
    /// No answer within the deadline.
    #[error("timed out")]
    Timeout,
    /// The connection failed or broke (the container died).
    #[error("connection failed: {0}")]
    Connection(String),
}

/// A proxy's answer.
#[derive(Debug)]
pub struct ProxyResponse {
    /// HTTP status.
    pub status: u16,
    /// Body, at most the cap given to [`ProxyClient::call`] (plus one chunk).
    pub body: Bytes,
    /// True when the body was longer than the cap.
    pub truncated: bool,
}

/// A keep-alive HTTP client shared by all containers of an invoker.
#[derive(Clone)]
pub struct ProxyClient {
    http: reqwest::Client,
}

impl Default for ProxyClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyClient {
    /// A client without proxies, with Nagle off.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4)
            .build()
            .expect("static reqwest configuration");
        Self { http }
    }

    /// POSTs `body` (JSON) to `http://addr{path}` with the container's `secret` and reads at
    /// most `cap` bytes of the answer.
    pub async fn call(
        &self,
        addr: SocketAddr,
        secret: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
        cap: usize,
    ) -> Result<ProxyResponse, CallError> {
        let fut = async {
            let mut resp = self
                .http
                .post(format!("http://{addr}{path}"))
                .header("content-type", "application/json")
                .bearer_auth(secret)
                .body(body)
                .send()
                .await
                .map_err(|e| CallError::Connection(e.to_string()))?;
            let status = resp.status().as_u16();
            let mut buf = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| CallError::Connection(e.to_string()))?
            {
                buf.extend_from_slice(&chunk);
                if buf.len() > cap {
                    truncated = true;
                    break;
                }
            }
            Ok(ProxyResponse {
                status,
                body: Bytes::from(buf),
                truncated,
            })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| CallError::Timeout)?
    }
}
