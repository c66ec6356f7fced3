//! Web actions against an in-process standalone platform behind `whisk gateway` (HTTP): a
//! `GET` of a web action (`/api/v1/web/guest/default/noopweb.json`, no credentials) next to a
//! blocking invoke of the same code through the REST API (`POST .../actions/noop?blocking=
//! true&result=true` with the key), both through the gateway and both directly to the
//! controller, at 1 and 8 clients.

use crate::gateway::wait_up;
use crate::load::{self, Measured};
use crate::proc::{free_port, Proc};
use crate::standalone::{base_settings, start};
use crate::table::{self, Row};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Sizes of a run.
pub struct Plan {
    /// Requests per scenario.
    pub requests: usize,
}

const CODE: &str = "def main(args):\n    return {\"ok\": True}\n";

async fn put_web_action(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let (u, k) = whisk_core::identity::GUEST_KEY
        .split_once(':')
        .unwrap_or_default();
    let r = http
        .put(format!(
            "{base}/api/v1/namespaces/_/actions/noopweb?overwrite=true"
        ))
        .basic_auth(u, Some(k))
        .json(&serde_json::json!({
            "exec": {"kind": "python:3", "code": CODE},
            "annotations": [{"key": "web-export", "value": true}],
        }))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "PUT noopweb: {}", r.status());
    Ok(())
}

/// `GET`s of the web action at `base`; any answer but 200 is an error.
async fn web_gets(http: reqwest::Client, base: &str, clients: usize, requests: usize) -> Measured {
    let url = Arc::new(format!("{base}/api/v1/web/guest/default/noopweb.json"));
    load::run(clients, requests, move || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(url.as_str()).send().await?;
            anyhow::ensure!(r.status().as_u16() == 200, "{}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// Runs the scenarios and prints the table.
pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let (platform, addr) = start(base_settings(&tmp.path().join("data"))?).await?;
    let direct = format!("http://{addr}");
    let port = free_port()?;
    let whisk = std::env::current_exe()?.with_file_name("whisk");
    let gateway = Proc(
        Command::new(&whisk)
            .args(["gateway", "--http", &format!("127.0.0.1:{port}")])
            .args(["--backend", &direct])
            .env("WHISK_GATEWAY__ACCESS_LOG", "false")
            .env("WHISK_GATEWAY__WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let through = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()?;
    wait_up(&http, &format!("{through}/api/v1")).await?;
    load::create_noop(&http, &direct).await?;
    put_web_action(&http, &direct).await?;

    let mut rows = Vec::new();
    for clients in [1usize, 8] {
        for (route, base) in [("through the gateway", &through), ("direct", &direct)] {
            // Warm containers for this concurrency first.
            let _ = web_gets(http.clone(), base, clients, clients * 20).await;
            let _ = load::invoke_noop(http.clone(), base, clients, clients * 20).await;
            let web = web_gets(http.clone(), base, clients, plan.requests).await;
            let invoke = load::invoke_noop(http.clone(), base, clients, plan.requests).await;
            rows.push(Row::measured(
                &format!("web action GET .json {route}"),
                clients,
                &web,
            ));
            rows.push(Row::measured(
                &format!("blocking invoke (REST, with key) {route}"),
                clients,
                &invoke,
            ));
        }
    }
    drop(gateway);
    platform.shutdown().await?;
    table::print(
        "Web action vs blocking invoke of the same Python noop (standalone, process runtime)",
        &rows,
    );
    Ok(())
}
