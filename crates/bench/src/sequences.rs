//! Sequences against an in-process standalone platform: one blocking invoke of a sequence of
//! `length` noops next to `length` blocking invokes of the noop one after another, in one run
//! (the same platform, the same warm containers), at 1 and 4 clients.

use crate::load;
use crate::standalone::{invokes, settings, start_with_noop, warm_up, Api};
use crate::table::{self, Row};
use serde_json::json;

/// Sizes of a run.
pub struct Plan {
    /// Operations per scenario (one operation = one sequence, or `length` single invokes).
    pub requests: usize,
    /// Components of the sequence.
    pub length: usize,
}

async fn put_sequence(api: &Api, name: &str, components: &[String]) -> anyhow::Result<()> {
    let url = format!("{}/{name}?overwrite=true", api.base);
    let body = json!({"exec": {"kind": "sequence", "components": components}});
    api.put_json(&url, &body, name).await
}

/// Runs both scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runtime = whisk_serve::settings::Runtime::Process;
    let (platform, _, api) = start_with_noop(settings(dir.path(), true, runtime)?).await?;
    let components = vec!["/_/noop".to_string(); plan.length];
    put_sequence(&api, "noops", &components).await?;

    let n = plan.length;
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for clients in [1usize, 4] {
        warm_up(&api, clients).await?;
        let sequence = invokes(&api, clients, plan.requests, "noops").await;
        let singles = {
            let api = api.clone();
            load::run(clients, plan.requests, move || {
                let api = api.clone();
                async move {
                    for _ in 0..n {
                        api.invoke("noop").await?;
                    }
                    Ok(())
                }
            })
            .await
        };
        rows.push(Row::measured(
            &format!("one blocking invoke of a sequence of {n} noops"),
            clients,
            &sequence,
        ));
        rows.push(Row::measured(
            &format!("{n} blocking invokes of noop, one after another"),
            clients,
            &singles,
        ));
        ratios.push((clients, sequence.p50_ms() / singles.p50_ms().max(0.001)));
    }
    platform.shutdown().await?;
    table::print(
        &format!("Sequence of {n} vs {n} single invokes (standalone, process runtime)"),
        &rows,
    );
    println!();
    for (c, ratio) in ratios {
        println!("clients {c}: sequence p50 / {n} singles p50 = {ratio:.2}x");
    }
    Ok(())
}
