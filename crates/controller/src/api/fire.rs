//! `POST /api/v1/namespaces/{ns}/triggers/{name}`: firing a trigger, as OpenWhisk's
//! `Triggers.scala` does it.
//!
//! - Every fire counts against the namespace's `firesPerMinute` (429 beyond it), before the
//!   trigger is read.
//! - A trigger without an active rule answers 204 and leaves no record.
//! - Otherwise each active rule's action is invoked, non-blocking, through the action resolver
//!   and [`Invocations::invoke`] (the invocation throttles apply to each), with the trigger's
//!   parameters under `__ow_headers` (the request's headers, without `authorization`) under
//!   the payload; the action's activation has `cause` = the trigger's activation. A sequence
//!   or conductor action runs as a non-blocking invoke runs it.
//! - The trigger's activation record (`response.result` = the payload, `end` = 0) has one
//!   log line per rule: `{"statusCode":0,"success":true,"activationId":…,"rule":"ns/r",
//!   "action":"ns/a"}`, or `"error"` instead of the id when the action could not be invoked
//!   (statusCode 1 for a refusal such as 404 or 429, 3 for a platform fault); an inactive rule
//!   has its own line. The record is stored before the answer: 202 `{"activationId"}` with
//!   `x-openwhisk-activation-id`.

use crate::api::answers::accepted;
use crate::api::extract::{json_object, Body, Caller};
use crate::api::sequences::{component, is_composite, ServiceSteps};
use crate::api::triggers::trigger_name;
use crate::errors::{transaction_id, ApiResult};
use crate::services::{
    Composite, Entities, Invocation, Invocations, Invoked, Ran, Sequences, Services,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use whisk_core::entity::to_object;
use whisk_core::limits::PAYLOAD_MAX_BYTES;
use whisk_core::trigger::{ReducedRule, RuleStatus};
use whisk_core::{
    now_ms, Activation, ActivationId, ActivationResponse, ErrorKind, Identity, WhiskError,
};

/// The argument the request's headers reach the rules' actions under.
pub const HEADERS_ARGUMENT: &str = "__ow_headers";

/// One line of a trigger activation's logs: what became of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleOutcome {
    /// 0: the action was invoked; 1: it was refused; 3: the platform failed.
    #[serde(rename = "statusCode")]
    pub status_code: u8,
    /// `statusCode == 0`.
    pub success: bool,
    /// The action's activation, when it was invoked.
    #[serde(rename = "activationId", skip_serializing_if = "Option::is_none")]
    pub activation_id: Option<String>,
    /// Why it was not, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `ns/rule`.
    pub rule: String,
    /// `ns/[pkg/]action`.
    pub action: String,
}

impl RuleOutcome {
    fn invoked(rule: &str, action: String, id: &ActivationId) -> Self {
        Self {
            status_code: 0,
            success: true,
            activation_id: Some(id.to_string()),
            error: None,
            rule: rule.to_string(),
            action,
        }
    }

    fn failed(rule: &str, action: String, e: &WhiskError) -> Self {
        let platform = matches!(
            e.kind,
            ErrorKind::Internal | ErrorKind::ActionFailed | ErrorKind::Unavailable
        );
        Self {
            status_code: if platform { 3 } else { 1 },
            success: false,
            activation_id: None,
            error: Some(e.message.clone()),
            rule: rule.to_string(),
            action,
        }
    }

    /// The log line.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `POST .../triggers/{name}`: fires (body = payload).
pub async fn fire(
    State(services): State<Services>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<PAYLOAD_MAX_BYTES>,
) -> ApiResult<Response> {
    let triggers = &services.triggers;
    let fqn = trigger_name(&caller, &ns, &name)?;
    triggers.admit_fire(&caller.0)?;
    let payload = json_object(&body)?;
    let trigger = triggers.trigger(&fqn).await?;
    if !trigger.has_active_rule() {
        tracing::debug!(trigger = %fqn, "fired without an active rule: no record");
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let id = ActivationId::generate();
    let start = now_ms();
    let mut args = to_object(&trigger.parameters);
    args.insert(HEADERS_ARGUMENT.into(), headers_argument(&headers));
    args.extend(payload.clone());
    let rules = trigger.rules.clone().unwrap_or_default();
    let ctx = Fire {
        entities: &services.entities,
        invocations: &services.invocations,
        sequences: &services.sequences,
        identity: &caller.0,
        cause: &id,
        args: &args,
    };
    let outcomes =
        futures::future::join_all(rules.iter().map(|(rule, link)| ctx.activate(rule, link))).await;
    let record = Activation {
        namespace: caller.0.namespace.clone(),
        name: trigger.name.clone(),
        version: trigger.version.clone(),
        subject: caller.0.subject.clone(),
        activation_id: id.clone(),
        start,
        end: 0,
        duration: 0,
        response: ActivationResponse::success(Value::Object(payload)),
        logs: outcomes.iter().map(RuleOutcome::line).collect(),
        annotations: Vec::new(),
        publish: false,
        cause: None,
    };
    if let Err(e) = triggers.record(&record).await {
        tracing::error!(error = %e, activation = %id, trigger = %fqn, "storing a trigger activation failed");
    }
    Ok(accepted(&id))
}

/// What firing one trigger shares across its rules.
struct Fire<'a> {
    entities: &'a Entities,
    invocations: &'a Invocations,
    sequences: &'a Sequences,
    identity: &'a Identity,
    cause: &'a ActivationId,
    args: &'a Map<String, Value>,
}

impl Fire<'_> {
    /// Invokes the action of rule `rule` when it is active; what became of it.
    async fn activate(&self, rule: &str, link: &ReducedRule) -> RuleOutcome {
        let action = link.action.to_string();
        if link.status != RuleStatus::Active {
            return RuleOutcome::failed(
                rule,
                action.clone(),
                &WhiskError::bad_request(format!(
                    "Rule '{rule}' is inactive, action '{action}' was not activated."
                )),
            );
        }
        match self.invoke(link).await {
            Ok(id) => RuleOutcome::invoked(rule, action, &id),
            Err(e) => {
                tracing::debug!(rule, %action, error = %e.message, "a trigger's rule could not invoke its action");
                RuleOutcome::failed(rule, action, &e)
            }
        }
    }

    /// Starts the rule's action with the fire's arguments, as `POST .../actions/{name}` does.
    async fn invoke(&self, link: &ReducedRule) -> Result<ActivationId, WhiskError> {
        let fqn = link.action.fqn()?;
        let resolved = self.entities.resolve_action(self.identity, &fqn).await?;
        if is_composite(resolved.action()) {
            // A sequence or conductor action runs in the controller, as a direct invoke would.
            resolved.merge(self.args.clone())?;
            let top = Composite {
                identity: self.identity.clone(),
                component: component(resolved),
                payload: self.args.clone(),
                wait: None,
            };
            let steps = Arc::new(ServiceSteps::new(self.entities, self.invocations));
            return Ok(match self.sequences.invoke(steps, top).await? {
                Ran::Accepted(id) => id,
                Ran::Completed(a) => a.activation_id,
            });
        }
        let content = resolved.merge(self.args.clone())?;
        let path = resolved.fqn.to_string();
        whisk_core::peers::instance(&content, &path)?;
        let outcome = self
            .invocations
            .invoke(Invocation {
                identity: self.identity,
                fqn: &resolved.fqn,
                action: resolved.action(),
                revision: &resolved.action.rev,
                content,
                blocking: false,
                wait: Duration::ZERO,
                transaction_id: transaction_id(),
                gang_size: 0,
                cause: Some(self.cause.to_string()),
                preadmitted: false,
                binding: resolved.binding.clone(),
            })
            .await?;
        Ok(match outcome {
            Invoked::Accepted(id) => id,
            Invoked::Completed(a) => a.activation_id,
        })
    }
}

/// The request's headers as the rules' actions see them: lower-case names, without the
/// caller's credentials.
fn headers_argument(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        if name == axum::http::header::AUTHORIZATION {
            continue;
        }
        out.insert(
            name.as_str().to_string(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_like_openwhisk() {
        let id = ActivationId::parse(&"a".repeat(32)).unwrap();
        let ok = RuleOutcome::invoked("guest/r", "guest/a".into(), &id);
        assert_eq!(
            ok.line(),
            format!(
                r#"{{"statusCode":0,"success":true,"activationId":"{id}","rule":"guest/r","action":"guest/a"}}"#
            )
        );
        let missing = RuleOutcome::failed("guest/r", "guest/a".into(), &WhiskError::not_found());
        assert_eq!(
            missing.line(),
            r#"{"statusCode":1,"success":false,"error":"The requested resource does not exist.","rule":"guest/r","action":"guest/a"}"#
        );
        let down = RuleOutcome::failed("guest/r", "guest/a".into(), &WhiskError::unavailable("x"));
        assert_eq!(down.status_code, 3);
    }

    #[test]
    fn headers_without_credentials() {
        let mut h = HeaderMap::new();
        h.insert("Authorization", "Basic x".parse().unwrap());
        h.insert("X-Hub-Signature", "sha1=1".parse().unwrap());
        assert_eq!(
            headers_argument(&h),
            serde_json::json!({"x-hub-signature": "sha1=1"})
        );
    }
}
