//! Benchmark harness: load generators that drive the platform over its real interfaces and
//! print tables of latency percentiles and throughput. Timings live here, never in tests.
//!
//! Layout:
//! - [`distributed`]: the issue-5 scenarios (through Kafka vs standalone, idle RSS).
//! - [`docker`]: the Docker runtime's container creation rate.
//! - [`gateway`]: the issue-7 scenarios (gateway vs direct vs nginx).
//! - [`load`]: closed-loop load with N concurrent clients, recording a latency histogram.
//! - [`table`]: printing results.
//! - [`proc`]: services started as child processes, free ports.
//! - [`peers`]: the issue-4 scenarios (peer-map propagation vs polling, crashes, peer
//!   messaging, gangs).
//! - [`sandbox`]: the issue-13 process sandbox (cold/warm with and without it, creation
//!   rate, container churn).
//! - [`standalone`]: the issue-3 scenarios (warm invoke vs direct `/run`, cold starts).
//! - [`web`]: web action requests/s through the gateway next to blocking invokes.

pub mod distributed;
pub mod docker;
pub mod gateway;
pub mod load;
pub mod peers;
pub mod proc;
pub mod sandbox;
pub mod standalone;
pub mod table;
pub mod web;
