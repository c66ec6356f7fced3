//! The invoker: consumes activation messages, runs them in containers, stores activation
//! records, publishes completions and health pings.
//!
//! Layout:
//! - [`container`]: the [`ContainerFactory`]/[`Container`] seam and log collection up to the
//!   sentinel.
//! - [`docker`]: the Docker runtime (bollard): action containers on a user-defined bridge
//!   network, limits, log following, cleanup of labelled leftovers.
//! - [`process`]: the process runtime: each container is a local action proxy process bound
//!   to its own loopback address, sandboxed.
//! - [`sandbox`]: the process runtime's sandbox (bubblewrap namespaces, an unprivileged uid).
//! - [`cgroup`]: cgroups v1/v2 of sandboxed containers (memory, pids, freezer, kill, OOM).
//! - [`proxy`]: HTTP client of the action proxy protocol (`/init`, `/run`).
//! - [`pool`]: the container pool: prewarmed stems, warm reuse, memory-bounded capacity,
//!   idle eviction.
//! - [`run`]: one activation from message to record.
//! - [`actions`]: the action cache: messages name the action, the invoker reads it once.
//! - [`service`]: the bus consumer, completions and health pings.
//! - [`live`]: live logs: running activations' lines sent to the controllers that follow them.
//! - [`budget`]: the memory the activations taken off the bus hold; back-pressure.
//! - [`journal`]: started marks: user code at most once, a record for every started activation.
//! - [`commits`]: which offsets may be committed (at-least-once with concurrency).
//! - [`config`]: settings and their defaults.

pub mod actions;
pub mod budget;
pub mod cgroup;
pub mod commits;
pub mod config;
pub mod container;
pub mod docker;
pub mod journal;
pub mod live;
pub mod peers;
pub mod pool;
pub mod process;
pub mod proxy;
pub mod run;
pub mod sandbox;
pub mod service;

pub use config::InvokerConfig;
pub use container::{Container, ContainerError, ContainerFactory, ContainerSpec};
pub use docker::{DockerConfig, DockerFactory};
pub use process::ProcessFactory;
pub use service::Invoker;
