//! Shared vocabulary of whisk-rs: OpenWhisk's entities, names, limits, identities, activation
//! records and the error kinds every service maps to OpenWhisk's `{error, code}` bodies.
//!
//! Layout:
//! - [`names`]: entity names and fully qualified names, validated as OpenWhisk does.
//! - [`entity`]: actions (exec, limits, parameters, annotations) and their update rules.
//! - [`trigger`], [`rule`]: triggers (with their rules' links and statuses) and rules.
//! - [`package`]: packages and bindings, their update rules, summaries and views.
//! - [`activation`]: activation ids, responses and records, stored and API views.
//! - [`identity`]: subjects, keys, namespaces, per-namespace limits, the well-known keys.
//! - [`limits`]: system-wide limits and defaults.
//! - [`kinds`]: the runtime manifest (which kinds exist, what `:default` means).
//! - [`sequence`]: sequences and conductor actions: components, continuations, messages.
//! - [`error`]: the error type shared by services.
//! - [`health`]: [`health::Health`], the probe every seam offers `whisk status`.

pub mod activation;
pub mod entity;
pub mod error;
pub mod health;
pub mod identity;
pub mod kinds;
pub mod limits;
pub mod names;
pub mod package;
pub mod peers;
pub mod rule;
pub mod sequence;
pub mod trigger;

pub use activation::{Activation, ActivationId, ActivationResponse, StatusCode};
pub use entity::{Action, ActionLimits, Exec, KeyValue};
pub use error::{ErrorKind, WhiskError};
pub use identity::{Identity, UserLimits};
pub use names::{EntityName, FullyQualifiedName};
pub use package::{Binding, Package};

/// Milliseconds since the Unix epoch, as OpenWhisk's records carry them.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A fresh transaction id (used as the `code` of error bodies and in activation messages).
pub fn transaction_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..16].to_string()
}
