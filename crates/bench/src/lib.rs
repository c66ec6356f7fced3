//! Benchmark harness: load generators that drive the platform over its real interfaces and
//! print tables of latency percentiles and throughput. Timings live here, never in tests.
//!
//! Layout:
//! - [`distributed`]: the distributed-mode scenarios (through Kafka vs standalone, idle RSS).
//! - [`docker`]: the Docker runtime's container creation rate.
//! - [`feeds`]: a Kafka message to its trigger's fire through the feed provider.
//! - [`gateway`]: the gateway scenarios (gateway vs direct vs nginx).
//! - [`load`]: closed-loop load with N concurrent clients, recording a latency histogram.
//! - [`packages`]: invokes in a package and through a binding next to outside any package.
//! - [`table`]: printing results.
//! - [`proc`]: services started as child processes, free ports.
//! - `rest`: a small guest client of the REST API (feeds, triggers).
//! - [`peers`]: the peer-map scenarios (peer-map propagation vs polling, crashes, peer
//!   messaging, gangs).
//! - [`sandbox`]: the process sandbox (cold/warm with and without it, creation
//!   rate, container churn).
//! - [`sequences`]: a sequence of 10 noops next to 10 single invokes.
//! - [`triggers`]: a trigger fire through a rule to the noop next to a direct invoke.
//! - [`traces`]: warm invokes with OpenTelemetry export off vs exporting every span.
//! - [`soak`]: 100,000+ mixed activations through the distributed stack, RSS sampled.
//! - [`stack`]: the distributed platform as child processes (controller, invokers, directory).
//! - [`standalone`]: the standalone core's scenarios (warm invoke vs direct `/run`, cold starts).
//! - [`web`]: web action requests/s through the gateway next to blocking invokes.

pub mod distributed;
pub mod docker;
pub mod feeds;
pub mod gateway;
pub mod load;
pub mod packages;
pub mod peers;
pub mod proc;
mod rest;
pub mod sandbox;
pub mod sequences;
pub mod soak;
pub mod stack;
pub mod standalone;
pub mod table;
pub mod traces;
pub mod triggers;
pub mod web;
