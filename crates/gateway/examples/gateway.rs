//! Runs the gateway from a JSON configuration (the keys of `GatewayConfig`), until Ctrl-C:
//! `cargo run --release -p whisk-gateway --example gateway -- '{"listen_http": "127.0.0.1:8080",
//! "backends": ["http://127.0.0.1:3233"], "access_log": false}'` (or a file path). For trying
//! the gateway and benchmarking it before the `whisk gateway` subcommand.

use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "{}".into());
    let text = if arg.trim_start().starts_with('{') {
        arg
    } else {
        std::fs::read_to_string(&arg)?
    };
    let config: whisk_gateway::GatewayConfig = serde_json::from_str(&text)?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    whisk_gateway::run(config, shutdown).await?;
    Ok(())
}
