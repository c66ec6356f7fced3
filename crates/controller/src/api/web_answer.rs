//! How a web action's result becomes the HTTP answer, per extension (OpenWhisk's media
//! transcoders): `.http` reads `headers`, `statusCode` and `body` (base64-decoded for binary
//! content types), `.json` answers the object or array, `.html`/`.svg` the string in `body`
//! (or `html`/`svg`), `.text` the value of `body` (or `text`). A result that does not fit its
//! extension is OpenWhisk's 400 naming the media type. Also the media type rules the request
//! side shares: which content types are JSON, and which are binary (base64 in `__ow_body`).

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value};
use whisk_core::WhiskError;

/// A web action's response type: the extension of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext {
    /// `.http` (also when the URL has no extension): the result describes the response.
    Http,
    /// `.json`: the result, as JSON.
    Json,
    /// `.html`: a string, as `text/html`.
    Html,
    /// `.svg`: a string, as `image/svg+xml`.
    Svg,
    /// `.text`: a value, as `text/plain`.
    Text,
}

const EXTENSIONS: [(&str, Ext); 5] = [
    ("http", Ext::Http),
    ("json", Ext::Json),
    ("html", Ext::Html),
    ("svg", Ext::Svg),
    ("text", Ext::Text),
];

/// `Extension must be specified and one of [...]` (406 of an unknown response type).
pub fn extensions_message() -> String {
    let list: Vec<String> = EXTENSIONS.iter().map(|(e, _)| format!(".{e}")).collect();
    format!(
        "Extension must be specified and one of [{}].",
        list.join(", ")
    )
}

impl Ext {
    /// The response type named `name` (`json`, `http`, ...).
    pub fn parse(name: &str) -> Option<Ext> {
        EXTENSIONS.iter().find(|(e, _)| *e == name).map(|(_, x)| *x)
    }

    /// The extension's name without the dot.
    pub fn name(self) -> &'static str {
        EXTENSIONS
            .iter()
            .find(|(_, x)| *x == self)
            .map_or("http", |(e, _)| e)
    }

    /// Splits `action.ext` into the action's name and its extension: a known extension is
    /// stripped; any other name is the whole action name, answered as `.http` (as OpenWhisk,
    /// which does not enforce an extension on `/web`).
    pub fn split(segment: &str) -> (&str, Ext) {
        for (e, x) in EXTENSIONS {
            if let Some(base) = segment.strip_suffix(e) {
                if let Some(base) = base.strip_suffix('.') {
                    return (base, x);
                }
            }
        }
        (segment, Ext::Http)
    }
}

/// OpenWhisk's message when a result does not fit media type `m`.
pub fn invalid_media(m: &str) -> WhiskError {
    WhiskError::bad_request(format!("Response is not valid '{m}'."))
}

/// OpenWhisk's 404 when the projected property is missing.
pub fn property_not_found() -> WhiskError {
    WhiskError::new(
        whisk_core::ErrorKind::NotFound,
        "Response does not include requested property.",
    )
}

const UNKNOWN_CONTENT_TYPE: &str = "Response did not specify a known content-type.";
const CONTENT_TYPE_MISMATCH: &str = "Response type in header did not match generated content type.";

/// The essence of a content type (`type/subtype`, lowercase), or `None` when malformed.
pub fn media_type(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let (main, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(main) && token(sub)).then_some(essence)
}

/// `application/json` or any `+json` type.
pub fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

/// Whether a media type carries binary data (base64 on the action's side): everything but
/// text, JSON, XML, JavaScript and form data.
pub fn is_binary(media: &str) -> bool {
    let textual = media.starts_with("text/")
        || is_json(media)
        || media.ends_with("+xml")
        || matches!(
            media,
            "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-www-form-urlencoded"
        );
    !textual
}

/// The answer of a successful activation's `result` (or an application error's `error`)
/// under extension `ext`.
pub fn project(ext: Ext, result: &Value) -> Result<Response, WhiskError> {
    match ext {
        Ext::Http => http(result),
        Ext::Json => match result {
            Value::Object(_) | Value::Array(_) => Ok(json_response(StatusCode::OK, result)),
            _ => Err(invalid_media("application/json")),
        },
        Ext::Html => match field(result, "html") {
            Some(Value::String(s)) => Ok(text(StatusCode::OK, "text/html; charset=UTF-8", s)),
            _ => Err(invalid_media("text/html")),
        },
        Ext::Svg => match field(result, "svg") {
            Some(Value::String(s)) => Ok(text(StatusCode::OK, "image/svg+xml", s)),
            _ => Err(invalid_media("image/svg+xml")),
        },
        Ext::Text => {
            let shown = match field(result, "text") {
                None => return Err(property_not_found()),
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Object(_) | Value::Array(_))) => {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
                Some(v) => v.to_string(),
            };
            Ok(text(StatusCode::OK, "text/plain; charset=UTF-8", &shown))
        }
    }
}

/// `body`, else `alt`, of an object result; a result that is not an object is itself.
fn field<'a>(result: &'a Value, alt: &str) -> Option<&'a Value> {
    match result {
        Value::Object(m) => m.get("body").or_else(|| m.get(alt)),
        v => Some(v),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = Response::new(Body::from(v.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `.http` projection.
fn http(result: &Value) -> Result<Response, WhiskError> {
    let invalid = || invalid_media("message/http");
    let Value::Object(fields) = result else {
        return Err(invalid());
    };
    let headers = match fields.get("headers") {
        None => Vec::new(),
        Some(Value::Object(h)) => headers_of(h).ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
    };
    let code = match fields.get("statusCode") {
        None => None,
        Some(v) => Some(status_code(v).ok_or_else(invalid)?),
    };
    let content_type = headers
        .iter()
        .find(|(k, _)| k == header::CONTENT_TYPE)
        .map(|(_, v)| v.to_str().unwrap_or("").to_string());
    let mut resp = match fields.get("body") {
        Some(Value::String(s)) if !s.is_empty() => {
            let ct = content_type.unwrap_or_else(|| "text/html".to_string());
            let media =
                media_type(&ct).ok_or_else(|| WhiskError::bad_request(UNKNOWN_CONTENT_TYPE))?;
            let (bytes, ct) = if is_binary(&media) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|_| WhiskError::bad_request(CONTENT_TYPE_MISMATCH))?;
                (bytes, ct)
            } else if is_json(&media) || ct.to_ascii_lowercase().contains("charset=") {
                (s.clone().into_bytes(), ct)
            } else {
                (s.clone().into_bytes(), format!("{ct}; charset=UTF-8"))
            };
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = code.unwrap_or(StatusCode::OK);
            let ct = HeaderValue::from_str(&ct)
                .map_err(|_| WhiskError::bad_request(UNKNOWN_CONTENT_TYPE))?;
            resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            resp
        }
        Some(v) if !v.is_null() && !v.is_string() => {
            let ct = content_type.unwrap_or_else(|| "application/json".to_string());
            let media =
                media_type(&ct).ok_or_else(|| WhiskError::bad_request(UNKNOWN_CONTENT_TYPE))?;
            if media == "application/json" {
                json_response(code.unwrap_or(StatusCode::OK), v)
            } else if is_json(&media) {
                let mut resp = Response::new(Body::from(
                    serde_json::to_string_pretty(v).unwrap_or_default(),
                ));
                *resp.status_mut() = code.unwrap_or(StatusCode::OK);
                let ct = HeaderValue::from_str(&media)
                    .map_err(|_| WhiskError::bad_request(UNKNOWN_CONTENT_TYPE))?;
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
                resp
            } else {
                return Err(WhiskError::bad_request(CONTENT_TYPE_MISMATCH));
            }
        }
        _ => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = code.unwrap_or(StatusCode::NO_CONTENT);
            resp
        }
    };
    let out = resp.headers_mut();
    for (k, v) in headers {
        if k != header::CONTENT_TYPE {
            out.append(k, v);
        }
    }
    Ok(resp)
}

/// The response headers an `.http` result names (arrays give repeated headers); `None` when
/// one is not a string, number, boolean or array of them, or not a valid header. Headers that
/// frame the message (length, transfer encoding, connection) are the platform's and dropped.
fn headers_of(h: &Map<String, Value>) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    for (k, v) in h {
        let name = HeaderName::from_bytes(k.as_bytes()).ok()?;
        let framing = [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ];
        let mut push = |v: &Value| -> Option<()> {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            if !framing.contains(&name) {
                out.push((name.clone(), HeaderValue::from_str(&s).ok()?));
            }
            Some(())
        };
        match v {
            Value::Array(vs) => vs.iter().try_for_each(&mut push)?,
            v => push(v)?,
        }
    }
    Some(out)
}

/// A `statusCode`: a whole number or a string of one, 100 to 999.
fn status_code(v: &Value) -> Option<StatusCode> {
    let n: i64 = match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => {
                let f = n.as_f64()?;
                if f.fract() != 0.0 || f.abs() > 1e9 {
                    return None;
                }
                f as i64
            }
        },
        Value::String(s) => s.parse::<i32>().ok()?.into(),
        _ => return None,
    };
    StatusCode::from_u16(u16::try_from(n).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body(r: Response) -> (u16, String, Vec<u8>) {
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let s = r.status().as_u16();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (s, ct, b.to_vec())
    }

    #[test]
    fn splits_extensions() {
        assert_eq!(Ext::split("a.json"), ("a", Ext::Json));
        assert_eq!(Ext::split("a"), ("a", Ext::Http));
        assert_eq!(Ext::split("a.xyz"), ("a.xyz", Ext::Http));
        assert_eq!(Ext::split("a.b.text"), ("a.b", Ext::Text));
    }

    #[tokio::test]
    async fn http_projection() {
        let r = project(
            Ext::Http,
            &json!({"statusCode": 201, "headers": {"x-a": [1, true]}, "body": "<b>hi</b>"}),
        )
        .unwrap();
        assert_eq!(r.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(
            body(r).await,
            (
                201,
                "text/html; charset=UTF-8".into(),
                b"<b>hi</b>".to_vec()
            )
        );
        let png = json!({"headers": {"Content-Type": "image/png"}, "body": "AAEC"});
        assert_eq!(
            body(project(Ext::Http, &png).unwrap()).await.2,
            vec![0, 1, 2]
        );
        let obj = json!({"body": {"a": 1}});
        assert_eq!(
            body(project(Ext::Http, &obj).unwrap()).await,
            (200, "application/json".into(), br#"{"a":1}"#.to_vec())
        );
        assert_eq!(body(project(Ext::Http, &json!({})).unwrap()).await.0, 204);
        for bad in [
            json!({"statusCode": "abc"}),
            json!({"statusCode": 42}),
            json!({"statusCode": 200.5}),
            json!({"headers": {"a": {"b": 1}}}),
            json!([1]),
        ] {
            let e = project(Ext::Http, &bad).unwrap_err();
            assert_eq!(e.message, "Response is not valid 'message/http'.", "{bad}");
        }
        let e = project(
            Ext::Http,
            &json!({"headers": {"content-type": "image/png"}, "body": "%%"}),
        )
        .unwrap_err();
        assert_eq!(e.message, CONTENT_TYPE_MISMATCH);
        let e = project(
            Ext::Http,
            &json!({"headers": {"content-type": "text/html"}, "body": {"a": 1}}),
        )
        .unwrap_err();
        assert_eq!(e.message, CONTENT_TYPE_MISMATCH);
    }

    #[tokio::test]
    async fn other_projections() {
        let r = project(Ext::Html, &json!({"html": "<p/>"})).unwrap();
        assert_eq!(body(r).await.2, b"<p/>");
        assert!(project(Ext::Json, &json!("x")).is_err());
        assert!(project(Ext::Svg, &json!({"a": 1})).is_err());
        let r = project(Ext::Text, &json!({"text": 5})).unwrap();
        assert_eq!(body(r).await.2, b"5");
        assert_eq!(
            project(Ext::Text, &json!({"a": 1})).unwrap_err().kind,
            whisk_core::ErrorKind::NotFound
        );
    }

    #[test]
    fn media_types() {
        assert!(is_binary("image/png"));
        assert!(is_binary("application/octet-stream"));
        assert!(!is_binary("text/plain"));
        assert!(!is_binary("application/vnd.api+json"));
        assert_eq!(
            media_type("Text/HTML; charset=x").as_deref(),
            Some("text/html")
        );
        assert_eq!(media_type("nonsense"), None);
    }
}
