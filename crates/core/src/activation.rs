//! Activation ids, responses and records, in the stored form and in the API views OpenWhisk
//! shows (full record, summary, result).

use crate::entity::KeyValue;
use crate::error::WhiskError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;

/// A 32-hex-character activation id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActivationId(String);

impl ActivationId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    /// Validates an id given by a client.
    pub fn parse(s: &str) -> Result<Self, WhiskError> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(WhiskError::bad_request(format!(
                "The activation id '{}' is not valid: expected 32 hexadecimal characters.",
                s.chars().take(40).collect::<String>()
            )))
        }
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ActivationId {
    type Error = WhiskError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<ActivationId> for String {
    fn from(a: ActivationId) -> String {
        a.0
    }
}
impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// OpenWhisk's activation status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum StatusCode {
    /// 0: the action returned a result.
    Success,
    /// 1: the action returned `{"error": ...}`.
    ApplicationError,
    /// 2: the action misbehaved: bad init or run answer, crash, timeout.
    DeveloperError,
    /// 3: the platform failed.
    WhiskError,
}

impl From<StatusCode> for u8 {
    fn from(s: StatusCode) -> u8 {
        match s {
            StatusCode::Success => 0,
            StatusCode::ApplicationError => 1,
            StatusCode::DeveloperError => 2,
            StatusCode::WhiskError => 3,
        }
    }
}

impl TryFrom<u8> for StatusCode {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Ok(match v {
            0 => StatusCode::Success,
            1 => StatusCode::ApplicationError,
            2 => StatusCode::DeveloperError,
            3 => StatusCode::WhiskError,
            n => return Err(format!("unknown activation status code {n}")),
        })
    }
}

impl StatusCode {
    /// The `status` string of API views.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Success => "success",
            StatusCode::ApplicationError => "application error",
            StatusCode::DeveloperError => "action developer error",
            StatusCode::WhiskError => "whisk internal error",
        }
    }
}

/// The outcome of an activation, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationResponse {
    /// 0..3.
    #[serde(rename = "statusCode")]
    pub status_code: StatusCode,
    /// The result object (an `{"error": ...}` object for failures).
    #[serde(default)]
    pub result: Option<Value>,
}

impl ActivationResponse {
    /// A successful result.
    pub fn success(result: Value) -> Self {
        Self {
            status_code: StatusCode::Success,
            result: Some(result),
        }
    }
    /// An application error: the action returned `result` holding `error`.
    pub fn application_error(result: Value) -> Self {
        Self {
            status_code: StatusCode::ApplicationError,
            result: Some(result),
        }
    }
    /// A developer error with a message.
    pub fn developer_error(message: impl Into<String>) -> Self {
        Self {
            status_code: StatusCode::DeveloperError,
            result: Some(json!({"error": message.into()})),
        }
    }
    /// A platform error with a message.
    pub fn whisk_error(message: impl Into<String>) -> Self {
        Self {
            status_code: StatusCode::WhiskError,
            result: Some(json!({"error": message.into()})),
        }
    }
    /// True on success.
    pub fn is_success(&self) -> bool {
        self.status_code == StatusCode::Success
    }
    /// The API view: `{status, success, result, size}`.
    pub fn view(&self) -> Value {
        let mut v = json!({
            "status": self.status_code.as_str(),
            "success": self.is_success(),
        });
        if let Some(r) = &self.result {
            v["result"] = r.clone();
            v["size"] = json!(r.to_string().len());
        }
        v
    }
}

/// An activation record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// Namespace of the invoking subject.
    pub namespace: String,
    /// Action name (without package).
    pub name: String,
    /// Action version.
    pub version: String,
    /// Invoking subject.
    pub subject: String,
    /// The id.
    #[serde(rename = "activationId")]
    pub activation_id: ActivationId,
    /// Epoch ms when the run started.
    pub start: i64,
    /// Epoch ms when it ended.
    pub end: i64,
    /// `end - start` (plus init), ms.
    pub duration: i64,
    /// Outcome.
    pub response: ActivationResponse,
    /// `"<ISO time> stdout: line"`.
    pub logs: Vec<String>,
    /// `path, waitTime, kind, timeout, limits, initTime` in that order (initTime on cold starts).
    pub annotations: Vec<KeyValue>,
    /// Shared publicly.
    pub publish: bool,
    /// Parent activation (gang or sequence), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Activation {
    /// The full API view (`GET activations/{id}`, blocking invoke).
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["response"] = self.response.view();
        v
    }
    /// The list summary: no logs, no result, top-level `statusCode`.
    pub fn summary(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "subject": self.subject,
            "activationId": self.activation_id,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "statusCode": u8::from(self.response.status_code),
            "annotations": self.annotations,
            "publish": self.publish,
        })
    }
    /// The `path` annotation: `namespace[/package]/name` of the action.
    pub fn path(&self) -> Option<&str> {
        crate::entity::lookup(&self.annotations, "path").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex() {
        let id = ActivationId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(ActivationId::parse(id.as_str()).is_ok());
        assert!(ActivationId::parse("xyz").is_err());
        assert!(ActivationId::parse(&"g".repeat(32)).is_err());
    }

    #[test]
    fn response_views() {
        let r = ActivationResponse::application_error(json!({"error": "boom"}));
        let v = r.view();
        assert_eq!(v["status"], "application error");
        assert_eq!(v["success"], false);
        let stored = serde_json::to_value(&r).unwrap();
        assert_eq!(stored["statusCode"], 1);
    }
}
