//! A small client of the platform's REST API as the guest: a JSON request to a path below a
//! root (`/api/v1/namespaces` or a namespace in it), answered with its status and JSON body.
//! The scenario modules add what they measure (fires, records) in their own `impl Rest`.

use anyhow::Context;
use serde_json::Value;

/// The platform's REST root, with the guest's key.
pub(crate) struct Rest {
    http: reqwest::Client,
    base: String,
    user: String,
    key: String,
}

impl Rest {
    /// A client of the paths below `base` (`http://HOST/api/v1/namespaces...`) as the guest.
    pub(crate) fn guest(base: String) -> anyhow::Result<Self> {
        let (u, k) = whisk_core::identity::GUEST_KEY
            .split_once(':')
            .context("key")?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base,
            user: u.into(),
            key: k.into(),
        })
    }

    /// `method base/path` with the JSON `body`: the status and the JSON answer (null if none).
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let r = self
            .http
            .request(method, format!("{}/{path}", self.base))
            .basic_auth(&self.user, Some(&self.key))
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        let bytes = r.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// PUT `body` at `path`, which must answer 200.
    pub(crate) async fn put(&self, path: &str, body: Value) -> anyhow::Result<()> {
        let (s, v) = self.send(reqwest::Method::PUT, path, body).await?;
        anyhow::ensure!(s == 200, "PUT {path}: {s} {v}");
        Ok(())
    }
}
