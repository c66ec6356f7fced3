//! [`Sequences`]: sequences and conductor actions (compositions), run in the controller as
//! OpenWhisk's `SequenceActions` and `PrimitiveActions` run them.
//!
//! - A sequence invokes its components in order, each blocking, the result of one the input of
//!   the next; nested sequences run inline and their atomic actions count toward the length
//!   limit; the first component whose result has an `error` field (or that cannot run) ends it.
//! - A conductor action runs with the input; while its result names an `action`, that action
//!   runs with the result's `params`, and the conductor runs again with the action's result
//!   plus the `state` it returned. Components and conductor runs are bounded (`n` components,
//!   `2n + 1` conductor runs, shared by nested compositions).
//!
//! Each primitive step is an ordinary activation with `cause` = the enclosing activation;
//! the sequence's or composition's own record (kind `sequence`, `topmost`, `limits` with the
//! largest memory, `logs` = the ids of its steps, `duration` = their sum) is written here.
//!
//! The service owns the record writes and the tasks compositions run in (drained with the
//! controller's [`TaskTracker`]); what a step needs from the rest of the controller (resolving
//! an action, running one) comes through [`Steps`], which the API implements over the other
//! services, so that services stay independent of one another.
//!
//! One file past the usual size: the sequence and composition runners recurse into each other
//! and share the step, tally and record code, and read best together.
//!
//! Why one file of this length: sequences and conductors share the step budget, the records and
//! the error rules of OpenWhisk's composition code, which is one file upstream too.

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use whisk_core::entity::{lookup, to_object};
use whisk_core::sequence::{self as seq, Continuation};
use whisk_core::{
    now_ms, Action, Activation, ActivationId, ActivationResponse, ErrorKind, FullyQualifiedName,
    Identity, KeyValue, WhiskError,
};
use whisk_store::{Revisioned, Store};

use crate::config::ControllerConfig;

/// An action a step resolved to.
#[derive(Debug, Clone)]
pub struct Component {
    /// Where the action lives (through a binding: in the bound package).
    pub fqn: FullyQualifiedName,
    /// The stored action.
    pub action: Arc<Revisioned<Action>>,
    /// Its parameters, package → binding → action merged.
    pub parameters: Vec<KeyValue>,
    /// The package binding it was reached through, if any (`ns/binding`).
    pub binding: Option<String>,
}

impl Component {
    /// The action document.
    pub fn doc(&self) -> &Action {
        &self.action.doc
    }
}

/// One primitive action to run to its end.
pub struct Step<'a> {
    /// The caller.
    pub identity: &'a Identity,
    /// The action's name.
    pub fqn: &'a FullyQualifiedName,
    /// The action.
    pub component: &'a Component,
    /// Its input (the action's own parameters not merged yet).
    pub payload: Map<String, Value>,
    /// The enclosing sequence or composition.
    pub cause: &'a ActivationId,
    /// How long to wait for its record.
    pub wait: Duration,
}

/// How an invocation was answered.
#[derive(Debug)]
pub enum Ran {
    /// Its record, once it ended.
    Completed(Box<Activation>),
    /// Accepted; its record will appear later (not waited for, or the wait passed).
    Accepted(ActivationId),
}

/// What running compositions needs from the rest of the controller.
#[async_trait]
pub trait Steps: Send + Sync {
    /// Admits one sequence or composition against `identity`'s throttles (429 when over).
    fn admit(&self, identity: &Identity) -> Result<(), WhiskError>;
    /// The action `fqn` names: 404 when absent, 403 when `identity` may not invoke it.
    async fn action(
        &self,
        identity: &Identity,
        fqn: &FullyQualifiedName,
    ) -> Result<Component, WhiskError>;
    /// Runs one primitive action, waiting for its record (429/503 when it cannot be placed).
    async fn run(&self, step: Step<'_>) -> Result<Ran, WhiskError>;
}

/// Runs sequences and compositions; cheap to clone.
#[derive(Clone)]
pub struct Sequences {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    tasks: TaskTracker,
    max: usize,
}

/// A sequence or composition to start at the top of a request.
pub struct Composite {
    /// The caller.
    pub identity: Identity,
    /// The sequence or conductor action.
    pub component: Component,
    /// The request's parameters.
    pub payload: Map<String, Value>,
    /// How long the request waits for the record (`None`: it does not).
    pub wait: Option<Duration>,
}

impl Sequences {
    /// Writes records to `store`; runs compositions in `tasks`.
    pub fn new(config: &ControllerConfig, store: Arc<dyn Store>, tasks: TaskTracker) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                tasks,
                max: config.sequence_length,
            }),
        }
    }

    /// The most atomic actions one sequence may run.
    pub fn max_length(&self) -> usize {
        self.inner.max
    }

    /// Checks a sequence `fqn` about to be stored with `components` as OpenWhisk does: it may
    /// not contain itself (directly or through other sequences), every component must exist,
    /// and its atomic actions, nested sequences inlined, may not exceed the limit (400 each).
    pub async fn check(
        &self,
        steps: &dyn Steps,
        identity: &Identity,
        fqn: &FullyQualifiedName,
        components: &[FullyQualifiedName],
    ) -> Result<(), WhiskError> {
        let max = self.inner.max;
        if components.len() > max {
            return Err(WhiskError::bad_request(seq::TOO_LONG));
        }
        if components.is_empty() {
            return Err(WhiskError::bad_request(seq::NO_COMPONENT));
        }
        // Depth-first over the inlined sequence; every visit counts, so a diamond of nested
        // sequences counts its atomic actions as often as they run.
        let mut stack: Vec<FullyQualifiedName> = components.iter().rev().cloned().collect();
        let mut atomic = 0usize;
        while let Some(c) = stack.pop() {
            if &c == fqn {
                return Err(WhiskError::bad_request(seq::CYCLIC));
            }
            let found = match steps.action(identity, &c).await {
                Ok(found) => found,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    return Err(WhiskError::bad_request(seq::COMPONENT_NOT_FOUND))
                }
                Err(e) => return Err(e),
            };
            if &found.fqn == fqn {
                return Err(WhiskError::bad_request(seq::CYCLIC));
            }
            if seq::is_sequence(found.doc()) {
                let inner = seq::components(found.doc(), &identity.namespace)?;
                stack.extend(inner.into_iter().rev());
            } else {
                atomic += 1;
            }
            if atomic > max || stack.len() > max {
                return Err(WhiskError::bad_request(seq::TOO_LONG));
            }
        }
        Ok(())
    }

    /// Starts `top` (a sequence or a conductor action) after admitting it: answers its record
    /// when it ends within the wait, else its id (it goes on in a task the controller drains).
    pub async fn invoke(&self, steps: Arc<dyn Steps>, top: Composite) -> Result<Ran, WhiskError> {
        steps.admit(&top.identity)?;
        let id = ActivationId::generate();
        let (tx, rx) = oneshot::channel();
        let me = self.clone();
        let wait = top.wait;
        let run_id = id.clone();
        let span = tracing::trace_span!(
            "composition",
            otel.name = if seq::is_sequence(top.component.doc()) { "sequence" } else { "conductor" },
            whisk.activation.id = %id,
            whisk.namespace = %top.identity.namespace,
            whisk.action = %top.component.fqn,
        );
        self.inner
            .tasks
            .spawn(whisk_telemetry::propagation::carried(span, async move {
                let accepted = now_ms();
                let runner = Runner {
                    steps: steps.as_ref(),
                    identity: &top.identity,
                    store: me.inner.store.as_ref(),
                    max: me.inner.max,
                    accepted,
                    depth: AtomicUsize::new(0),
                };
                let record = if seq::is_sequence(top.component.doc()) {
                    runner
                        .sequence(&top.component, run_id, Some(top.payload), None, 0)
                        .await
                        .0
                } else {
                    let mut counts = Counts::default();
                    runner
                        .composition(&top.component, run_id, Some(top.payload), None, &mut counts)
                        .await
                };
                // As OpenWhisk, the topmost record is answered first, then stored.
                let _ = tx.send(record.clone());
                runner.store(&record).await;
            }));
        let Some(wait) = wait else {
            return Ok(Ran::Accepted(id));
        };
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(record)) => Ok(Ran::Completed(Box::new(record))),
            _ => Ok(Ran::Accepted(id)),
        }
    }
}

/// Component and conductor runs of one composition, shared with the compositions it nests.
#[derive(Default)]
struct Counts {
    components: usize,
    conductors: usize,
}

/// What a sequence or composition has done so far.
struct Tally {
    logs: Vec<String>,
    duration: i64,
    max_memory: Option<u64>,
}

impl Tally {
    fn new(memory: Option<u64>) -> Self {
        Self {
            logs: Vec::new(),
            duration: 0,
            max_memory: memory,
        }
    }

    /// Counts a step that ended with `a`.
    fn add(&mut self, a: &Activation) {
        self.logs.push(a.activation_id.to_string());
        self.duration += a.duration;
        let memory = lookup(&a.annotations, "limits")
            .and_then(|l| l.get("memory"))
            .and_then(Value::as_u64);
        if let Some(m) = memory {
            self.max_memory = Some(self.max_memory.map_or(m, |p| p.max(m)));
        }
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One request's composition, with what every step of it needs.
struct Runner<'a> {
    steps: &'a dyn Steps,
    identity: &'a Identity,
    store: &'a dyn Store,
    max: usize,
    /// When the request was accepted (epoch ms): the records' `waitTime`.
    accepted: i64,
    /// Sequences open inside one another now: bounded like their atomic actions, so that a
    /// cycle the create checks could not see (through a binding) still ends.
    depth: AtomicUsize,
}

/// How long a composition waits for one step: its timeout and a minute, as OpenWhisk.
fn step_wait(action: &Action) -> Duration {
    Duration::from_millis(action.limits.timeout) + Duration::from_secs(60)
}

/// The object a result is (anything else reads as `{}`).
fn result_object(response: &ActivationResponse) -> Map<String, Value> {
    match &response.result {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    }
}

impl Runner<'_> {
    /// Runs sequence `component` as activation `id`; `count` atomic actions ran before it in the
    /// topmost sequence. Answers its record and the atomic count after it.
    fn sequence<'s>(
        &'s self,
        component: &'s Component,
        id: ActivationId,
        payload: Option<Map<String, Value>>,
        cause: Option<&'s ActivationId>,
        count: usize,
    ) -> Boxed<'s, (Activation, usize)> {
        Box::pin(async move {
            let start = now_ms();
            let action = component.doc();
            let mut tally = Tally::new(None);
            let mut count = count;
            let mut previous =
                ActivationResponse::success(Value::Object(payload.unwrap_or_default()));
            let depth = self.depth.fetch_add(1, Ordering::Relaxed) + 1;
            let components = if depth > self.max {
                Err(WhiskError::bad_request(seq::TOO_LONG))
            } else {
                seq::components(action, &self.identity.namespace)
            };
            match components {
                Err(e) if depth > self.max => {
                    previous = ActivationResponse::application_error(json!({ "error": e.message }))
                }
                Err(e) => previous = ActivationResponse::whisk_error(e.message),
                Ok(components) => {
                    for c in &components {
                        if count >= self.max {
                            previous = ActivationResponse::application_error(
                                json!({ "error": seq::TOO_LONG }),
                            );
                            break;
                        }
                        let input = result_object(&previous);
                        let found = match self.steps.action(self.identity, c).await {
                            Ok(found) => found,
                            Err(e) if e.kind == ErrorKind::NotFound => {
                                previous = ActivationResponse::application_error(
                                    json!({ "error": seq::COMPONENT_NOT_FOUND }),
                                );
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, component = %c, "a sequence component could not be resolved");
                                previous = ActivationResponse::whisk_error(seq::FAILED);
                                break;
                            }
                        };
                        let ran = if seq::is_sequence(found.doc()) {
                            let (record, n) = self
                                .sequence(
                                    &found,
                                    ActivationId::generate(),
                                    Some(input),
                                    Some(&id),
                                    count,
                                )
                                .await;
                            Ok((Ran::Completed(Box::new(record)), n))
                        } else if seq::is_conductor(found.doc()) {
                            let mut counts = Counts::default();
                            let record = self
                                .composition(
                                    &found,
                                    ActivationId::generate(),
                                    Some(input),
                                    Some(&id),
                                    &mut counts,
                                )
                                .await;
                            Ok((Ran::Completed(Box::new(record)), count + 1))
                        } else {
                            self.primitive(&found, input, &id)
                                .await
                                .map(|r| (r, count + 1))
                        };
                        match ran {
                            Ok((Ran::Completed(mut a), n)) => {
                                count = n;
                                let error = a
                                    .response
                                    .result
                                    .as_ref()
                                    .and_then(|r| r.get("error"))
                                    .is_some();
                                let too_long = n > self.max;
                                if too_long {
                                    a.response = ActivationResponse::application_error(
                                        json!({ "error": seq::TOO_LONG }),
                                    );
                                }
                                tally.add(&a);
                                previous = a.response;
                                if error || too_long {
                                    break;
                                }
                            }
                            Ok((Ran::Accepted(aid), _)) => {
                                tracing::warn!(activation = %aid, "a sequence component did not complete in time");
                                tally.logs.push(aid.to_string());
                                previous = ActivationResponse::whisk_error(seq::retrieve_timeout(
                                    aid.as_str(),
                                ));
                                break;
                            }
                            Err(e) if e.kind == ErrorKind::Unavailable => {
                                // Overloaded (no invoker has room): say so, as a direct
                                // invoke's 503 does.
                                tracing::warn!(error = %e, component = %c, "a sequence component could not be invoked");
                                previous = ActivationResponse::whisk_error(e.message);
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, component = %c, "a sequence component could not be invoked");
                                previous = ActivationResponse::whisk_error(seq::FAILED);
                                break;
                            }
                        }
                    }
                }
            }
            self.depth.fetch_sub(1, Ordering::Relaxed);
            let limits = tally.max_memory.map(|m| limits_annotation(action, m));
            let record = self
                .record(
                    &component.fqn,
                    action,
                    id,
                    cause,
                    start,
                    previous,
                    tally,
                    false,
                    limits,
                )
                .await;
            (record, count)
        })
    }

    /// Runs conductor action `conductor` as composition `id` (see the module's doc); answers its
    /// record.
    fn composition<'s>(
        &'s self,
        conductor: &'s Component,
        id: ActivationId,
        payload: Option<Map<String, Value>>,
        cause: Option<&'s ActivationId>,
        counts: &'s mut Counts,
    ) -> Boxed<'s, Activation> {
        Box::pin(async move {
            let start = now_ms();
            let action = conductor.doc();
            let mut tally = Tally::new(Some(action.limits.memory));
            let mut state: Option<Map<String, Value>> = None;
            let mut payload = payload;
            let response = loop {
                if counts.conductors > 2 * self.max {
                    break ActivationResponse::application_error(
                        json!({ "error": seq::COMPOSITION_TOO_LONG }),
                    );
                }
                let mut input = payload.take().unwrap_or_default();
                if let Some(s) = state.take() {
                    input.extend(s);
                }
                counts.conductors += 1;
                let ran = self.primitive(conductor, input, &id).await;
                let activation = match settle(&mut tally, ran) {
                    Ok(a) => a,
                    Err(response) => break response,
                };
                let result = result_object(&activation.response);
                let next = Continuation::of(&Value::Object(result.clone()));
                state = next.state;
                let Some(name) = next.action else {
                    break ActivationResponse {
                        status_code: activation.response.status_code,
                        result: Some(Value::Object(next.params.unwrap_or(result))),
                    };
                };
                let error =
                    |message: String| Some(Map::from_iter([("error".to_string(), json!(message))]));
                let target = match seq::resolve_name(&name, &self.identity.namespace) {
                    None => {
                        payload = error(seq::component_invalid(&name));
                        continue;
                    }
                    Some(_) if counts.components >= self.max => {
                        payload = error(seq::COMPOSITION_TOO_LONG.to_string());
                        continue;
                    }
                    Some(target) => target,
                };
                let found = match self.steps.action(self.identity, &target).await {
                    Ok(found) => found,
                    Err(e) if e.kind == ErrorKind::Forbidden => {
                        payload = error(seq::component_not_accessible(&target));
                        continue;
                    }
                    Err(_) => {
                        payload = error(seq::component_not_found(&target));
                        continue;
                    }
                };
                let params = next.params.unwrap_or_default();
                let ran = if seq::is_sequence(found.doc()) {
                    counts.components += 1;
                    let (record, _) = self
                        .sequence(&found, ActivationId::generate(), Some(params), Some(&id), 0)
                        .await;
                    Ok(Ran::Completed(Box::new(record)))
                } else if seq::is_conductor(found.doc()) {
                    let record = self
                        .composition(
                            &found,
                            ActivationId::generate(),
                            Some(params),
                            Some(&id),
                            counts,
                        )
                        .await;
                    Ok(Ran::Completed(Box::new(record)))
                } else {
                    counts.components += 1;
                    self.primitive(&found, params, &id).await
                };
                match settle(&mut tally, ran) {
                    Ok(a) => payload = Some(result_object(&a.response)),
                    Err(response) => break response,
                }
            };
            let memory = tally.max_memory.unwrap_or(action.limits.memory);
            let limits = Some(limits_annotation(action, memory));
            self.record(
                &conductor.fqn,
                action,
                id,
                cause,
                start,
                response,
                tally,
                true,
                limits,
            )
            .await
        })
    }

    /// Runs one primitive action with `payload` over its own parameters, caused by `cause`.
    async fn primitive(
        &self,
        component: &Component,
        payload: Map<String, Value>,
        cause: &ActivationId,
    ) -> Result<Ran, WhiskError> {
        let mut params = to_object(&component.parameters);
        params.extend(payload);
        self.steps
            .run(Step {
                identity: self.identity,
                fqn: &component.fqn,
                component,
                payload: params,
                cause,
                wait: step_wait(component.doc()),
            })
            .await
    }

    /// The record of a sequence (or, `conductor`, a composition); a nested one is stored at
    /// once, the topmost one by [`Sequences::invoke`] once it is answered.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        fqn: &FullyQualifiedName,
        action: &Action,
        id: ActivationId,
        cause: Option<&ActivationId>,
        start: i64,
        response: ActivationResponse,
        tally: Tally,
        conductor: bool,
        limits: Option<Value>,
    ) -> Activation {
        let kv = |key: &str, value: Value| KeyValue {
            key: key.to_string(),
            value,
        };
        let mut annotations = vec![
            kv("topmost", json!(cause.is_none())),
            kv("path", json!(fqn.to_string())),
            kv("kind", json!(seq::SEQUENCE)),
        ];
        if conductor {
            annotations.push(kv(seq::CONDUCTOR, json!(true)));
        }
        if cause.is_some() {
            annotations.push(kv("causedBy", json!(seq::SEQUENCE)));
        }
        annotations.push(kv("waitTime", json!((start - self.accepted).max(0))));
        if let Some(l) = limits {
            annotations.push(kv("limits", l));
        }
        let record = Activation {
            namespace: self.identity.namespace.clone(),
            name: action.name.clone(),
            version: action.version.clone(),
            subject: self.identity.subject.clone(),
            activation_id: id,
            start,
            end: now_ms(),
            duration: tally.duration,
            response,
            logs: tally.logs,
            annotations,
            publish: false,
            cause: cause.map(ToString::to_string),
        };
        if cause.is_some() {
            self.store(&record).await;
        }
        record
    }

    /// Stores a sequence's or composition's record (a failure is logged: the steps' records
    /// are stored already, and the answer carries this one).
    async fn store(&self, record: &Activation) {
        if let Err(e) = self.store.put_activation(record).await {
            tracing::error!(error = %e, activation = %record.activation_id, "storing a sequence's record failed");
        }
    }
}

/// A step of a composition ended: its record (counted in `tally`), or the response that ends
/// the composition (a timeout or a failure to invoke, both whisk errors).
fn settle(
    tally: &mut Tally,
    ran: Result<Ran, WhiskError>,
) -> Result<Activation, ActivationResponse> {
    match ran {
        Ok(Ran::Completed(a)) => {
            tally.add(&a);
            Ok(*a)
        }
        Ok(Ran::Accepted(aid)) => {
            tally.logs.push(aid.to_string());
            Err(ActivationResponse::whisk_error(seq::composition_timeout(
                aid.as_str(),
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "a composition's step could not be invoked");
            Err(ActivationResponse::whisk_error(seq::COMPOSITION_FAILURE))
        }
    }
}

/// The `limits` annotation of a sequence's or composition's record: its own, with the largest
/// memory of its steps.
fn limits_annotation(action: &Action, memory: u64) -> Value {
    let mut limits = action.limits;
    limits.memory = memory;
    serde_json::to_value(limits).unwrap_or_default()
}
