//! Distributed-mode scenarios: warm blocking `noop` invokes through Kafka (separate `whisk
//! controller` and `whisk invoker` processes, CouchDB store) at 1, 8 and 64 clients, side by
//! side with standalone in the same run, and the idle memory (RSS) of the controller and the
//! invoker. Needs the services of `scripts/services.sh up` (Kafka on 9092, CouchDB on 5984).

use crate::load::{self, Measured};
use crate::stack::{Shape, Stack};
use crate::table::{self, Row};
use std::time::Duration;

/// Sizes of a run.
pub struct Plan {
    /// Requests per scenario.
    pub requests: usize,
}

async fn measure(base: &str, key: &str, clients: usize, requests: usize) -> Measured {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    load::invoke_noop_as(http, base, key, clients, requests).await
}

/// Runs the scenarios and prints the tables.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let stack = Stack::start(&Shape {
        invokers: 1,
        directory: false,
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = (stack.rss_of("controller"), stack.rss_of("invoker0"));
    let (base, key) = (stack.base.clone(), stack.key.clone());
    let http = reqwest::Client::new();
    load::create_noop_as(&http, &base, &key).await?;
    let guest = whisk_core::identity::GUEST_KEY;

    let dir = tempfile::tempdir()?;
    let mut settings = whisk_serve::Settings::load(None, &Default::default())?;
    settings.listen = "127.0.0.1:0".into();
    settings.data_dir = Some(dir.path().to_path_buf());
    settings.controller.invocations_per_minute = 100_000_000;
    settings.controller.concurrent_invocations = 100_000;
    let platform = whisk_serve::standalone(settings).await?;
    let platform_addr = platform
        .api_addr
        .ok_or_else(|| anyhow::anyhow!("standalone serves no API"))?;
    let sbase = format!("http://{}", platform_addr);
    load::create_noop(&http, &sbase).await?;

    let mut rows = vec![];
    for clients in [1usize, 8, 64] {
        let _ = measure(&base, &key, clients, clients * 10).await; // warm containers
        let d = measure(&base, &key, clients, plan.requests).await;
        let _ = measure(&sbase, guest, clients, clients * 10).await;
        let st = measure(&sbase, guest, clients, plan.requests).await;
        rows.push(Row::measured(
            "distributed: controller → Kafka → invoker (CouchDB store)",
            clients,
            &d,
        ));
        rows.push(Row::measured(
            "standalone: one process, in-process bus, embedded store",
            clients,
            &st,
        ));
    }
    platform.shutdown().await?;
    table::print(
        "Warm blocking noop invoke: distributed vs standalone",
        &rows,
    );
    println!(
        "\nidle RSS: controller {:.1} MB + invoker {:.1} MB = {:.1} MB",
        idle.0,
        idle.1,
        idle.0 + idle.1
    );
    drop(stack);
    Ok(())
}
