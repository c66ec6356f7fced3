//! Sequences and conductor actions at the API: the [`Steps`] a composition runs through (the
//! action resolver of [`Entities`], one invocation of [`Invocations`] per step), the check of a
//! sequence on `PUT`, and the invoke of a sequence or conductor action (`POST .../actions/
//! {name}` dispatches here; web actions may too).

use crate::api::answers::{accepted, completed};
use crate::errors::{transaction_id, ApiResult};
use crate::services::{
    Component, Composite, Entities, Invocation, Invocations, Invoked, Ran, Resolved, Sequences,
    Step, Steps,
};
use async_trait::async_trait;
use axum::response::Response;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use whisk_core::entity::ActionPut;
use whisk_core::sequence as seq;
use whisk_core::{FullyQualifiedName, Identity, WhiskError};

/// The steps of compositions over this controller's services; cheap to clone.
#[derive(Clone)]
pub struct ServiceSteps {
    entities: Entities,
    invocations: Invocations,
    transaction_id: String,
}

impl ServiceSteps {
    /// Steps resolved by `entities` and run by `invocations`, in one request's transaction.
    pub fn new(entities: &Entities, invocations: &Invocations) -> Self {
        Self {
            entities: entities.clone(),
            invocations: invocations.clone(),
            transaction_id: transaction_id(),
        }
    }
}

#[async_trait]
impl Steps for ServiceSteps {
    fn admit(&self, identity: &Identity) -> Result<(), WhiskError> {
        self.invocations.admit_composite(identity)
    }

    async fn action(
        &self,
        identity: &Identity,
        fqn: &FullyQualifiedName,
    ) -> Result<Component, WhiskError> {
        let r = self.entities.resolve_action(identity, fqn).await?;
        Ok(component(r))
    }

    async fn run(&self, step: Step<'_>) -> Result<Ran, WhiskError> {
        self.invocations.occupy(step.identity);
        let outcome = self
            .invocations
            .invoke(Invocation {
                identity: step.identity,
                fqn: step.fqn,
                action: step.component.doc(),
                revision: &step.component.action.rev,
                content: step.payload,
                blocking: true,
                wait: step.wait,
                transaction_id: self.transaction_id.clone(),
                gang_size: 0,
                cause: Some(step.cause.to_string()),
                preadmitted: true,
                binding: step.component.binding.clone(),
            })
            .await?;
        Ok(match outcome {
            Invoked::Completed(a) => Ran::Completed(a),
            Invoked::Accepted(id) => Ran::Accepted(id),
        })
    }
}

/// The component of a composition a resolved action is.
pub fn component(r: Resolved) -> Component {
    Component {
        fqn: r.fqn,
        action: r.action,
        parameters: r.parameters,
        binding: r.binding,
    }
}

/// True when `action` runs as a composition: a sequence or a conductor action.
pub fn is_composite(action: &whisk_core::Action) -> bool {
    seq::is_sequence(action) || seq::is_conductor(action)
}

/// Before a `PUT` of `fqn` by `identity`: a sequence's components are qualified (`_` is the
/// caller's namespace) and checked (length, no cycle, each exists); other bodies pass.
pub async fn check_put(
    sequences: &Sequences,
    steps: &ServiceSteps,
    identity: &Identity,
    fqn: &FullyQualifiedName,
    mut put: ActionPut,
) -> Result<ActionPut, WhiskError> {
    seq::resolve_put(&mut put, &identity.namespace, sequences.max_length())?;
    let Some(list) = put.exec.as_ref().and_then(|e| e.components.as_ref()) else {
        return Ok(put);
    };
    let components = list
        .iter()
        .map(|c| seq::parse_component(c, &identity.namespace))
        .collect::<Result<Vec<_>, _>>()?;
    sequences.check(steps, identity, fqn, &components).await?;
    Ok(put)
}

/// Invokes `resolved` (a sequence or conductor action) with the request's `body` (checked
/// against its `final` parameters): 202 with its id when not blocking (`wait` is `None`) or
/// when the wait passes, else its record (or only its result).
#[allow(clippy::too_many_arguments)]
pub async fn invoke(
    sequences: &Sequences,
    entities: &Entities,
    invocations: &Invocations,
    identity: &Identity,
    resolved: &Resolved,
    body: Map<String, Value>,
    wait: Option<Duration>,
    result_only: bool,
) -> ApiResult<Response> {
    resolved.merge(body.clone())?;
    let top = Composite {
        identity: identity.clone(),
        component: component(resolved.clone()),
        payload: body,
        wait,
    };
    let steps = Arc::new(ServiceSteps::new(entities, invocations));
    Ok(match sequences.invoke(steps, top).await? {
        Ran::Accepted(id) => accepted(&id),
        Ran::Completed(a) => completed(&a, result_only),
    })
}
