//! The controller's services: one handle per concern, each built once by
//! [`Controller::start`](crate::Controller::start), owning its state and cheap to clone, and
//! handed to the routers in [`Services`] (axum state; every handle is a sub-state through
//! `FromRef`, so a route takes only the handles it uses).
//!
//! - [`Entities`]: actions (and the action cache of the invoke path, invalidated across
//!   controllers) and the store's other entity collections.
//! - [`Activations`]: activation records, listed or read one at a time.
//! - [`Invocations`]: throttles, invoker health and the balancer, publishing activations,
//!   waiting for and applying their completions, expiring lost ones.
//! - [`Identities`]: authentication against the identity cache, and `whisk admin`'s operations
//!   (which invalidate it).
//!
//! Services use the layers below them ([`crate::cache`], [`crate::health`],
//! [`crate::throttle`], [`crate::inflight`], [`crate::auth`], [`crate::admin`], the store and
//! the bus), never the API nor one another.

mod activations;
mod entities;
mod identities;
mod invocations;

pub use activations::Activations;
pub use entities::Entities;
pub use identities::Identities;
pub use invocations::{merge_parameters, Invocation, Invocations, Invoked, OVERLOADED};

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
}
