//! The controller's services: one handle per concern, each built once by
//! [`Controller::start`](crate::Controller::start), owning its state and cheap to clone, and
//! handed to the routers in [`Services`] (axum state; every handle is a sub-state through
//! `FromRef`, so a route takes only the handles it uses).
//!
//! - [`Entities`]: actions (and the action cache of the invoke path, invalidated across
//!   controllers), packages and bindings, the action resolver (entitlement across
//!   namespaces, parameters package → binding → action), and the store's other collections.
//! - [`Activations`]: activation records, listed or read one at a time.
//! - [`Invocations`]: throttles, invoker health and the balancer, publishing activations,
//!   waiting for and applying their completions, expiring lost ones.
//! - [`Web`]: namespace owners of web actions and the route documents of `wsk api`.
//! - [`Triggers`]: triggers and rules (a rule's status lives in its trigger's document), the
//!   fires-per-minute throttle and trigger activation records.
//! - [`Sequences`]: sequences and conductor actions, run step by step through [`Steps`].
//! - [`Feeds`]: the catalog's feed actions, answered with feed registrations in the store.
//! - [`Live`]: live logs — the bounded buffers of the lines of running activations followed
//!   here, fed by the invokers over the bus.
//! - [`Identities`]: authentication against the identity cache, and `whisk admin`'s operations
//!   (which invalidate it).
//!
//! Services use the layers below them ([`crate::cache`], [`crate::health`],
//! [`crate::throttle`], [`crate::inflight`], [`crate::auth`], [`crate::admin`], the store and
//! the bus), never the API nor one another.

mod activations;
mod entities;
mod feeds;
mod identities;
mod invocations;
mod live;
mod rules;
mod sequences;
mod triggers;
mod web;

pub use activations::Activations;
pub use entities::{Entities, ReadablePackage, Resolved, PARAMETERS_NOT_ALLOWED};
pub use feeds::Feeds;
pub use identities::Identities;
pub use invocations::{Invocation, Invocations, Invoked, OVERLOADED};
pub use live::{Following, Live, LiveEvent};
pub use rules::{does_not_exist as rule_does_not_exist, RULE_WITHOUT_TRIGGER};
pub use sequences::{Component, Composite, Ran, Sequences, Step, Steps};
pub use triggers::Triggers;
pub use web::Web;

use axum::extract::FromRef;

/// Every service of one controller: the routers' state.
#[derive(Clone, FromRef)]
pub struct Services {
    /// Actions and other entities.
    pub entities: Entities,
    /// Activation records.
    pub activations: Activations,
    /// Invoking, invokers and throttles.
    pub invocations: Invocations,
    /// Authentication and identity administration.
    pub identities: Identities,
    /// Sequences and conductor actions.
    pub sequences: Sequences,
    /// Triggers and rules.
    pub triggers: Triggers,
    /// Web action owners and API routes.
    pub web: Web,
    /// The catalog's feed actions (feed registrations).
    pub feeds: Feeds,
    /// Live logs of running activations.
    pub live: Live,
}
