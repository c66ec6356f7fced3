//! The REST client: builds `{apihost}/api/v1/namespaces/{ns}/{collection}/{segments}` URLs
//! (every segment percent-encoded), sends JSON with HTTP Basic auth, and turns answers into
//! [`Response`]s or [`ApiError`]s (OpenWhisk's `{error, code}` bodies, or unreachable hosts).

use crate::config::Settings;
use crate::error::ApiError;
use base64::Engine;
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::Duration;

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status (200, 202, ...).
    pub status: u16,
    /// The JSON body (`Null` when empty, a string when not JSON).
    pub body: Value,
    /// The `x-openwhisk-activation-id` header, when present.
    pub activation_id: Option<String>,
}

/// A client of one API host with one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

impl Client {
    /// The same client pointed at another API host.
    pub fn with_apihost(&self, apihost: &str) -> anyhow::Result<Self> {
        let mut settings = self.settings.clone();
        settings.apihost = apihost.trim_end_matches('/').to_string();
        Self::new(settings)
    }

    /// Builds the HTTP client (TLS checks off with `insecure`, extra CA with `cacert`).
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("whisk-cli/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(settings.insecure);
        if let Some(path) = &settings.cacert {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                anyhow::anyhow!("{} holds no usable PEM certificate: {e}", path.display())
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, settings })
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `{base}/namespaces/{ns}/{collection}/{segments...}`; an empty collection means
    /// `{base}/namespaces`.
    pub fn url(
        &self,
        namespace: &str,
        collection: &str,
        segments: &[&str],
    ) -> Result<Url, ApiError> {
        let mut url = self.base(&self.settings.base_url())?;
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                ApiError::Network(format!("invalid API host '{}'", self.settings.apihost))
            })?;
            path.pop_if_empty().push("namespaces");
            if !collection.is_empty() {
                path.push(namespace).push(collection).extend(segments);
            }
        }
        Ok(url)
    }

    /// `{apihost}/{segments...}` (routes outside `/api/v1`, such as `/admin/...`).
    pub fn root_url(&self, segments: &[&str]) -> Result<Url, ApiError> {
        let mut url = self.base(&self.settings.apihost)?;
        url.path_segments_mut()
            .map_err(|_| {
                ApiError::Network(format!("invalid API host '{}'", self.settings.apihost))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn base(&self, s: &str) -> Result<Url, ApiError> {
        Url::parse(s).map_err(|e| {
            ApiError::Network(format!("invalid API host '{}': {e}", self.settings.apihost))
        })
    }

    /// A request authenticated with the configured key, whose answer the caller reads as it
    /// arrives (live logs).
    pub fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let token = base64::engine::general_purpose::STANDARD.encode(&self.settings.auth);
        self.http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {token}"))
    }

    /// Sends a request authenticated with the configured key.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        self.send_as(&self.settings.auth, method, url, query, body)
            .await
    }

    /// Sends a request authenticated with `auth` (`uuid:key`); non-2xx answers are errors.
    pub async fn send_as(
        &self,
        auth: &str,
        method: Method,
        mut url: Url,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response, ApiError> {
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let token = base64::engine::general_purpose::STANDARD.encode(auth);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {token}"));
        if let Some(b) = body {
            req = req.json(b);
        }
        let shown = body.map(|b| b.to_string()).unwrap_or_default();
        tracing::debug!(%method, %url, body = %shown, "request");
        let resp = req.send().await.map_err(|e| self.network_error(&url, &e))?;
        let status = resp.status().as_u16();
        let activation_id = resp
            .headers()
            .get("x-openwhisk-activation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp
            .text()
            .await
            .map_err(|e| self.network_error(&url, &e))?;
        tracing::debug!(status, body = %text, "response");
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            Ok(Response {
                status,
                body,
                activation_id,
            })
        } else {
            Err(http_error(status, body))
        }
    }

    fn network_error(&self, url: &Url, e: &reqwest::Error) -> ApiError {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        if e.is_connect() {
            ApiError::Network(format!(
                "Unable to connect to the whisk API host '{}' ({detail}). Is a server running there? \
                 Start one with `whisk standalone`, or point the client elsewhere with \
                 `whisk property set --apihost HOST` or `--apihost HOST`.",
                self.settings.apihost
            ))
        } else {
            ApiError::Network(format!("Request to {url} failed: {detail}"))
        }
    }
}

/// Builds the error of a non-2xx answer from its body.
pub fn http_error(status: u16, body: Value) -> ApiError {
    let (message, code) = match &body {
        Value::Object(o) if o.contains_key("error") => {
            let message = match &o["error"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let code = match o.get("code") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            (message, code)
        }
        Value::String(s) if !s.trim().is_empty() && s.len() < 500 => {
            (format!("The server answered {status}: {}", s.trim()), None)
        }
        _ => (format!("The server answered {status}"), None),
    };
    ApiError::Http {
        status,
        message,
        code,
        body: Some(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GlobalArgs, Props};
    use serde_json::json;

    fn client(apihost: &str) -> Client {
        let flags = GlobalArgs {
            apihost: Some(apihost.into()),
            ..Default::default()
        };
        Client::new(Settings::resolve(&flags, &Props::default(), &|_| None)).unwrap()
    }

    #[test]
    fn urls_encode_segments() {
        let c = client("http://127.0.0.1:3233/");
        let u = c.url("_", "actions", &["pkg", "my act"]).unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:3233/api/v1/namespaces/_/actions/pkg/my%20act"
        );
        let u = c.url("_", "", &[]).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:3233/api/v1/namespaces");
        let u = c.root_url(&["admin", "identities", "a b"]).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:3233/admin/identities/a%20b");
        let u = client("example.com")
            .url("guest", "activations", &["abc"])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://example.com/api/v1/namespaces/guest/activations/abc"
        );
    }

    #[test]
    fn error_bodies() {
        let e = http_error(
            404,
            json!({"error": "The requested resource does not exist.", "code": "t1"}),
        );
        assert_eq!(
            e.to_string(),
            "The requested resource does not exist. (code t1)"
        );
        assert_eq!(e.exit_code(), 148);
        let e = http_error(500, json!("boom"));
        assert_eq!(e.to_string(), "The server answered 500: boom");
        let e = http_error(503, Value::Null);
        assert_eq!(e.to_string(), "The server answered 503");
    }

    #[tokio::test]
    async fn connection_refused_names_the_host() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = client(&format!("http://{addr}"));
        let url = c.url("_", "", &[]).unwrap();
        let err = c.send(Method::GET, url, &[], None).await.unwrap_err();
        assert_eq!(err.exit_code(), 3);
        let msg = err.to_string();
        assert!(msg.contains(&format!("http://{addr}")), "{msg}");
        assert!(msg.contains("whisk standalone"), "{msg}");
    }
}
