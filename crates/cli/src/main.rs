//! `whisk`: the command-line client of whisk-rs (a `wsk`-compatible client) and
//! `whisk standalone`, the whole platform in one process. Parses the command line, sets up
//! logging to stderr and dispatches; the client lives in the `whisk_cli` library.

mod directory;
mod gateway;
mod roles;
mod standalone;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use whisk_cli::config::GlobalArgs;

/// mimalloc instead of glibc's malloc: the services allocate small, short-lived buffers per
/// request (the gateway spent ~9 % of its instructions in glibc's malloc and free).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// whisk: a client (and a standalone server) for OpenWhisk-compatible platforms.
#[derive(Debug, Parser)]
#[command(name = "whisk", version, about)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in one process (REST API on 127.0.0.1:3233).
    Standalone(standalone::StandaloneArgs),
    /// Run a controller alone (REST API; Kafka bus, CouchDB store).
    Controller(roles::RoleArgs),
    /// Run an invoker alone (`--id N` consumes topic invoker<N>).
    Invoker(roles::RoleArgs),
    /// Run the gateway (TLS, routing to controllers, limits).
    Gateway(gateway::GatewayArgs),
    /// Make a CA and server certificates (for the gateway and a private registry).
    Certs(gateway::CertsArgs),
    /// Run the directory service alone (peer maps over gRPC).
    Directory(directory::DirectoryArgs),
    /// Run one action proxy (what the process runtime starts per container).
    #[command(hide = true)]
    Proxy(whisk_runtime::cli::ProxyArgs),
    #[command(flatten)]
    Client(whisk_cli::Command),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The proxy's stderr is the action's log: it logs warnings only, like a client.
    let standalone = matches!(
        cli.command,
        Command::Standalone(_)
            | Command::Directory(_)
            | Command::Controller(_)
            | Command::Invoker(_)
            | Command::Gateway(_)
    );
    if matches!(cli.command, Command::Proxy(_)) {
        whisk_runtime::cli::init_tracing();
    } else {
        // `whisk status` reports an unreachable broker in its table; librdkafka's reconnect
        // warnings would only repeat it.
        let quiet = matches!(cli.command, Command::Client(whisk_cli::Command::Status(_)));
        init_tracing(cli.global.verbose, standalone, quiet);
    }
    if !standalone && !matches!(cli.command, Command::Proxy(_)) {
        restore_default_sigpipe();
    }
    let outcome = match cli.command {
        Command::Standalone(args) => standalone::run(args).await,
        Command::Directory(args) => directory::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Certs(args) => gateway::certs(args),
        Command::Controller(args) => roles::controller(args).await,
        Command::Invoker(args) => roles::invoker(args).await,
        Command::Proxy(args) => whisk_runtime::cli::run(args).await,
        Command::Client(cmd) => whisk_cli::run(&cli.global, cmd).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, message) = whisk_cli::describe_failure(&e);
            if let Some(m) = message {
                eprintln!("error: {m}");
            }
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

/// Lets a client command die quietly when its output pipe closes (`whisk ... | head`), as
/// `wsk` does, instead of failing on the write. Not for the server, which writes to pipes of
/// action processes that may have exited.
fn restore_default_sigpipe() {
    // SAFETY: called before any other thread writes to a pipe; only resets one signal's
    // disposition to the default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs to stderr; `RUST_LOG` wins, else `info` for the server, `warn` (or `debug` with
/// `-v`) for client commands; `quiet_bus` leaves out the Kafka clients' warnings.
fn init_tracing(verbose: bool, server: bool, quiet_bus: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (server, verbose, quiet_bus) {
        (_, true, _) => "debug,hyper=info,reqwest=info,h2=info,rustls=info",
        (true, false, _) => "info",
        (false, false, false) => "warn",
        (false, false, true) => "warn,whisk_bus=error,rdkafka=error",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
