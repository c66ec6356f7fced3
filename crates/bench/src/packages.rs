//! Packages against an in-process standalone platform (process runtime): blocking invokes of
//! the same noop action outside any package, in a package (with package parameters), and
//! through a binding of that package (binding parameters on top), at 1 and 4 clients — what
//! the action resolver (package and binding read through the package cache, parameters
//! merged) costs on the invoke path.

use crate::standalone::{invokes, settings, start_with_noop, Api, NOOP};
use crate::table::{self, Row};
use serde_json::{json, Value};

/// Sizes of a run.
pub struct Plan {
    /// Invokes per scenario.
    pub requests: usize,
}

async fn put_package(
    api: &Api,
    addr: std::net::SocketAddr,
    name: &str,
    body: Value,
) -> anyhow::Result<()> {
    let url = format!("http://{addr}/api/v1/namespaces/_/packages/{name}?overwrite=true");
    api.put_json(&url, &body, &format!("package {name}")).await
}

/// Runs the scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = whisk_serve::settings::Runtime::Process;
    let (platform, addr, api) = start_with_noop(settings(dir.path(), true, runtime)?).await?;
    put_package(
        &api,
        addr,
        "p",
        json!({"parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]}),
    )
    .await?;
    api.put("p/noop", NOOP).await?;
    put_package(
        &api,
        addr,
        "b",
        json!({"binding": {"namespace": "_", "name": "p"}, "parameters": [{"key": "b", "value": 3}]}),
    )
    .await?;

    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for clients in [1usize, 4] {
        let mut p50 = Vec::new();
        for (label, name) in [
            ("blocking invoke, no package", "noop"),
            ("blocking invoke, in a package", "p/noop"),
            ("blocking invoke, through a binding", "b/noop"),
        ] {
            let warm = invokes(&api, clients, clients * 20, name).await;
            anyhow::ensure!(warm.errors == 0, "warm-up invokes of {name} failed");
            let m = invokes(&api, clients, plan.requests, name).await;
            anyhow::ensure!(m.errors == 0, "invokes of {name} failed");
            rows.push(Row::measured(label, clients, &m));
            p50.push(m.p50_ms());
        }
        ratios.push((
            clients,
            p50[1] / p50[0].max(0.001),
            p50[2] / p50[0].max(0.001),
        ));
    }
    platform.shutdown().await?;
    table::print(
        "Invokes in a package and through a binding vs outside any package (standalone, process runtime)",
        &rows,
    );
    println!();
    for (c, pkg, binding) in ratios {
        println!("clients {c}: p50 in a package / outside = {pkg:.2}x, through a binding / outside = {binding:.2}x");
    }
    Ok(())
}
