//! Where a process's `/metrics` is served: on the controller's API port when the process runs
//! a controller, and on `metrics_listen` (an internal address of its own) when that is set —
//! the one way to scrape an invoker, a directory, a gateway or a feed provider alone. Both
//! answer [`whisk_metrics::encode`] of the process's families and of [`sources`]: the state
//! of the roles this process runs, read at each scrape.

use crate::{Running, ServeError, Settings};
use std::sync::Arc;
use whisk_metrics::{Gauges, Source};

/// Bytes in a MB (the platform counts memory in MB; Prometheus wants bytes).
const MB: f64 = 1024.0 * 1024.0;

/// The scrape-time sources of the roles in `running`: a controller's invokers and activations
/// in flight, an invoker's container pool, a directory's groups and watchers.
pub(crate) fn sources(running: &Running) -> Vec<Arc<dyn Source>> {
    let mut sources: Vec<Arc<dyn Source>> = Vec::new();
    if let Some(ctl) = running.controller.clone() {
        sources.push(Arc::new(move |g: &mut Gauges| controller(&ctl, g)));
    }
    if let Some(invoker) = running.invoker.clone() {
        sources.push(Arc::new(move |g: &mut Gauges| {
            let pool = invoker.pool();
            let [busy, idle, stems] = pool.stats();
            for (name, help, v) in [
                (
                    "openwhisk_containerpool_active_containers",
                    "Containers running activations",
                    busy.0 as f64,
                ),
                (
                    "openwhisk_containerpool_active_size_bytes",
                    "Memory of the containers running activations, bytes",
                    busy.1 as f64 * MB,
                ),
                (
                    "openwhisk_containerpool_idle_containers",
                    "Warm containers waiting for their action",
                    idle.0 as f64,
                ),
                (
                    "openwhisk_containerpool_idle_size_bytes",
                    "Memory of the warm idle containers, bytes",
                    idle.1 as f64 * MB,
                ),
                (
                    "openwhisk_containerpool_prewarm_containers",
                    "Prewarmed (stem cell) containers",
                    stems.0 as f64,
                ),
                (
                    "openwhisk_containerpool_prewarm_size_bytes",
                    "Memory of the prewarmed containers, bytes",
                    stems.1 as f64 * MB,
                ),
                (
                    "openwhisk_invoker_user_memory_bytes",
                    "The invoker's memory budget for action containers, bytes",
                    pool.capacity_mb() as f64 * MB,
                ),
            ] {
                g.gauge(name, help, &[], v);
            }
        }));
    }
    if let Some(registry) = running.directory.clone() {
        sources.push(Arc::new(move |g: &mut Gauges| {
            if let Some(n) = registry.groups() {
                g.gauge(
                    "whisk_peer_groups",
                    "Peer groups the directory holds",
                    &[],
                    n as f64,
                );
            }
            g.gauge(
                "whisk_peer_watchers",
                "Watchers of peer maps on the directory",
                &[],
                registry.watchers() as f64,
            );
        }));
    }
    sources
}

/// A controller's view of its invokers (OpenWhisk's loadbalancer gauges).
fn controller(ctl: &whisk_controller::Controller, g: &mut Gauges) {
    let invokers = ctl.services().invocations.invokers();
    let details = invokers.details();
    for state in ["up", "unhealthy", "down"] {
        let n = details.iter().filter(|d| d.state == state).count();
        let word = match state {
            "up" => "healthy",
            "down" => "offline",
            other => other,
        };
        g.gauge(
            "openwhisk_loadbalancer_invokers",
            "Invokers known to this controller, by state (OpenWhisk's totalHealthyInvoker, totalUnhealthyInvoker, totalOfflineInvoker)",
            &[("state", word)],
            n as f64,
        );
    }
    let up = details.iter().filter(|d| d.state == "up");
    g.gauge(
        "openwhisk_loadbalancer_total_capacity_bytes",
        "Memory budget of the healthy invokers, bytes",
        &[],
        up.map(|d| d.user_memory_mb).sum::<u64>() as f64 * MB,
    );
    g.gauge(
        "openwhisk_loadbalancer_memory_inflight_bytes",
        "Memory this controller reserved on invokers for activations in flight, bytes",
        &[],
        details.iter().map(|d| d.reserved_mb).sum::<u64>() as f64 * MB,
    );
    g.gauge(
        "openwhisk_loadbalancer_activations_inflight",
        "Activations placed by this controller that have not completed",
        &[],
        ctl.activations_in_flight() as f64,
    );
    g.counter(
        "openwhisk_loadbalancer_overloaded",
        "Activations refused because no healthy invoker had room (503)",
        &[],
        invokers.overloaded(),
    );
}

/// Serves `/metrics` on `metrics_listen`, when set.
pub(crate) async fn start(settings: &Settings, running: &mut Running) -> Result<(), ServeError> {
    let Some(addr) = settings.metrics_listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(ServeError::io(format!(
            "cannot listen on {addr} for /metrics"
        )))?;
    running.metrics_addr = Some(
        listener
            .local_addr()
            .map_err(ServeError::io("the metrics listener's address"))?,
    );
    let serving = whisk_metrics::serve(listener, sources(running), running.shutdown.clone());
    running.spawn_task(async move {
        if let Err(e) = serving.await {
            tracing::warn!(error = %e, %addr, "the metrics listener failed");
        }
    });
    Ok(())
}
