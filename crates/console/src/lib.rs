//! The web console at `/console`: one server-rendered HTML page, one script and one style
//! sheet, embedded in the binary with `include_str!` (no JavaScript build toolchain). The
//! controller merges [`router`] into its API, so the console is served wherever the API is
//! (also through the gateway). The page talks to the ordinary REST API with the namespace key
//! the user logs in with (kept in the tab's `sessionStorage`, sent as Basic auth), follows
//! activation logs and peer groups over `text/event-stream` answers read with `fetch`, and
//! shows the cluster (`/invokers/details`) only where the controller's internal routes are
//! reachable (never through the gateway).
//!
//! Security: every answer carries a strict Content-Security-Policy (scripts and styles from
//! this origin's `/console/` files only, no inline script or style, API calls to this origin
//! only, no framing, no form submissions), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`. The only server-side value in the page, the trace UI
//! template ([`ConsoleConfig::trace_url`]), is HTML-escaped into an attribute; the script
//! writes every piece of data through `textContent`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::RwLock;
use serde::Deserialize;

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's settings (`[console]` in the settings file, `WHISK_CONSOLE__*`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ConsoleConfig {
    /// The trace UI's address of one trace, with `{traceId}` where the 32-hex trace id goes,
    /// e.g. Jaeger's `http://jaeger:16686/trace/{traceId}` or Grafana Tempo's explore URL.
    /// Empty (default): the console shows the trace id without a link. Only `http(s)://`
    /// templates containing `{traceId}` are used.
    pub trace_url: String,
}

impl ConsoleConfig {
    /// The trace URL template when it is usable (`http(s)://...{traceId}...`).
    pub fn usable_trace_url(&self) -> Option<&str> {
        let t = self.trace_url.trim();
        let lower = t.to_ascii_lowercase();
        let web = lower.starts_with("http://") || lower.starts_with("https://");
        (web && t.contains("{traceId}")).then_some(t)
    }
}

static CONFIG: RwLock<Option<ConsoleConfig>> = RwLock::new(None);

/// Sets the console's settings for this process (the composition root calls it once at start;
/// until then the defaults apply). A trace URL that is not `http(s)://...{traceId}...` is
/// ignored with a warning.
pub fn configure(config: ConsoleConfig) {
    if !config.trace_url.trim().is_empty() && config.usable_trace_url().is_none() {
        tracing::warn!(
            trace_url = %config.trace_url,
            "console.trace_url must be an http(s) URL containing {{traceId}}; ignored"
        );
    }
    *CONFIG.write() = Some(config);
}

/// The routes `/console`, `/console/`, `/console/app.js` and `/console/app.css`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/app.js", get(script))
        .route("/console/app.css", get(style))
}

/// The page with the process's settings.
pub fn render(config: &ConsoleConfig) -> String {
    INDEX.replace(
        "{{TRACE_URL}}",
        &escape_html(config.usable_trace_url().unwrap_or("")),
    )
}

/// `s` with `& < > " '` as HTML character references (safe in text and quoted attributes).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn page() -> Response {
    let config = CONFIG.read().clone().unwrap_or_default();
    answer(
        "text/html; charset=utf-8",
        "no-store",
        render(&config).into(),
    )
}

async fn script() -> Response {
    answer("text/javascript; charset=utf-8", "no-cache", SCRIPT.into())
}

async fn style() -> Response {
    answer("text/css; charset=utf-8", "no-cache", STYLE.into())
}

fn answer(content_type: &'static str, cache: &'static str, body: axum::body::Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let app: Router = router();
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn every_file_is_served_with_the_security_headers() {
        for (path, kind) in [
            ("/console", "text/html"),
            ("/console/", "text/html"),
            ("/console/app.js", "text/javascript"),
            ("/console/app.css", "text/css"),
        ] {
            let (status, h, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(h[header::CONTENT_TYPE].to_str().unwrap().starts_with(kind));
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            assert!(!body.is_empty());
        }
        let (status, _, _) = get("/console/other.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = render(&ConsoleConfig::default());
        assert_eq!(page.matches("<script").count(), 1);
        assert!(page.contains("<script src=\"/console/app.js\" defer></script>"));
        assert!(!page.contains("<style"));
        assert!(!page.contains("style=\""));
        let handler = page.match_indices(" on").any(|(i, _)| {
            let rest = &page[i + 3..];
            let name = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "no inline event handlers");
        assert!(!page.contains("{{"), "every placeholder filled");
    }

    #[test]
    fn the_trace_template_is_escaped_and_checked() {
        let hostile = ConsoleConfig {
            trace_url: "http://x/\"><script>alert(1)</script>{traceId}".into(),
        };
        let page = render(&hostile);
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;{traceId}"));
        for bad in [
            "javascript:alert(1)//{traceId}",
            "http://jaeger/trace/",
            "data:text/html,{traceId}",
        ] {
            let c = ConsoleConfig {
                trace_url: bad.into(),
            };
            assert_eq!(c.usable_trace_url(), None, "{bad}");
            assert!(render(&c).contains("content=\"\""));
        }
        let jaeger = ConsoleConfig {
            trace_url: "http://127.0.0.1:16686/trace/{traceId}".into(),
        };
        assert!(render(&jaeger).contains("content=\"http://127.0.0.1:16686/trace/{traceId}\""));
    }

    #[test]
    fn the_script_writes_data_as_text_only() {
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("outerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML"));
        assert!(!SCRIPT.contains("document.write"));
        assert!(!SCRIPT.contains("eval("));
        assert!(
            !SCRIPT.contains("localStorage"),
            "the key stays in sessionStorage"
        );
        assert!(
            !SCRIPT.contains("console.log"),
            "nothing (a key included) is logged"
        );
    }
}
