//! `whisk`: the command-line client of whisk-rs (a `wsk`-compatible client) and the server
//! roles (`whisk standalone|controller|invoker|directory|gateway`). Parses the command line,
//! sets up logging to stderr and dispatches: the client lives in the `whisk_cli` library, the
//! server subcommands in [`server`] (through `whisk_serve`).
//!
//! Two parsers: a server subcommand is parsed alone ([`ServerCli`]), so it shows and accepts
//! its own flags only; everything else by [`Cli`], whose client flags (`--apihost`, `--auth`,
//! `-i`, ...) go before or after any client command.

mod certs;
mod server;

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;
use whisk_cli::config::GlobalArgs;

/// mimalloc instead of glibc's malloc: the services allocate small, short-lived buffers per
/// request (the gateway spent ~9 % of its instructions in glibc's malloc and free).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// whisk: a client (and the servers) of OpenWhisk-compatible platforms.
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
    #[command(flatten)]
    Server(server::ServerCommand),
    #[command(flatten)]
    Client(whisk_cli::Command),
}

/// The server subcommands without the client's flags: what `whisk <server command>` parses.
#[derive(Debug, Parser)]
#[command(name = "whisk", version, about)]
struct ServerCli {
    #[command(subcommand)]
    command: server::ServerCommand,
}

/// True when the command line names a server subcommand first (or asks `help` about one).
fn names_server_command(args: &[OsString]) -> bool {
    let servers = ServerCli::command();
    let is_server = |a: &OsString| {
        a.to_str()
            .is_some_and(|name| servers.find_subcommand(name).is_some())
    };
    match args.get(1) {
        Some(first) if first == "help" => args.get(2).is_some_and(is_server),
        Some(first) => is_server(first),
        None => false,
    }
}

/// Parses the process's command line (exits on `--help` and errors, as clap does).
fn parse(args: Vec<OsString>) -> (GlobalArgs, Command) {
    if names_server_command(&args) {
        let cli = ServerCli::parse_from(args);
        return (GlobalArgs::default(), Command::Server(cli.command));
    }
    let cli = Cli::parse_from(&args);
    match cli.command {
        // Client flags before a server subcommand (`whisk -i standalone`): the server parser
        // refuses them with its own usage.
        Command::Server(_) => {
            let cli = ServerCli::parse_from(args);
            (GlobalArgs::default(), Command::Server(cli.command))
        }
        client => (cli.global, client),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (global, command) = parse(std::env::args_os().collect());
    let service = matches!(&command, Command::Server(s) if s.is_service());
    let mut telemetry = match &command {
        // The proxy's stderr is the action's log: it logs warnings only, like a client.
        Command::Server(server::ServerCommand::Proxy(_)) => {
            whisk_runtime::cli::init_tracing();
            whisk_telemetry::Telemetry::default()
        }
        // `whisk status` reports an unreachable broker in its table; librdkafka's reconnect
        // warnings would only repeat it.
        Command::Client(whisk_cli::Command::Status(_)) => init_tracing(global.verbose, None, true),
        Command::Server(s) if service => init_tracing(global.verbose, Some(s), false),
        _ => init_tracing(global.verbose, None, false),
    };
    if !service && !matches!(command, Command::Server(server::ServerCommand::Proxy(_))) {
        restore_default_sigpipe();
    }
    let outcome = match command {
        // Completion scripts cover the whole command line, server roles included.
        Command::Client(whisk_cli::Command::Completion(args)) => {
            whisk_cli::completion::completion(Cli::command(), args)
        }
        Command::Client(whisk_cli::Command::Sdk(cmd)) => {
            whisk_cli::completion::sdk(Cli::command(), cmd)
        }
        Command::Server(cmd) => server::run(cmd).await,
        Command::Client(cmd) => whisk_cli::run(&global, cmd).await,
    };
    // The last spans of a service reach the collector before the process ends.
    telemetry.shutdown();
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
/// `-v`) for client commands; `quiet_bus` leaves out the Kafka clients' warnings. A service
/// also exports its spans when the `OTEL_EXPORTER_OTLP_*` variables say so (whisk-telemetry).
fn init_tracing(
    verbose: bool,
    service: Option<&server::ServerCommand>,
    quiet_bus: bool,
) -> whisk_telemetry::Telemetry {
    let default = match (service.is_some(), verbose, quiet_bus) {
        (_, true, _) => "debug,hyper=info,reqwest=info,h2=info,rustls=info",
        (true, false, _) => "info",
        (false, false, false) => "warn",
        (false, false, true) => "warn,whisk_bus=error,rdkafka=error",
    };
    match service {
        Some(s) => {
            whisk_telemetry::init(whisk_telemetry::Options::service(default, s.service_name()))
        }
        None => whisk_telemetry::init(whisk_telemetry::Options::client(default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        ServerCli::command().debug_assert();
    }

    #[test]
    fn server_subcommands_have_their_own_flags_only() {
        let mut servers = ServerCli::command();
        servers.build();
        for sc in servers.get_subcommands() {
            for client_flag in ["apihost", "auth", "cacert", "json"] {
                assert!(
                    sc.get_arguments().all(|a| a.get_id() != client_flag),
                    "`whisk {}` has the client's --{client_flag}",
                    sc.get_name()
                );
            }
        }
        for line in [
            "whisk controller --apihost x",
            "whisk -i standalone",
            "whisk --auth k invoker",
        ] {
            assert!(ServerCli::try_parse_from(args(line)).is_err(), "{line}");
        }
        assert!(names_server_command(&args("whisk controller --help")));
        assert!(names_server_command(&args("whisk help gateway")));
        assert!(!names_server_command(&args("whisk -i action list")));
        assert!(!names_server_command(&args("whisk help action")));
    }

    #[test]
    fn client_flags_go_before_or_after_a_client_command() {
        for line in [
            "whisk -i --apihost h action list",
            "whisk action list --apihost h -i",
        ] {
            let (global, command) = parse(args(line));
            assert!(matches!(command, Command::Client(_)), "{line}");
            assert_eq!(global.apihost.as_deref(), Some("h"), "{line}");
            assert!(global.insecure, "{line}");
        }
    }

    #[test]
    fn shared_server_flags_mean_the_same_for_each_role() {
        let (_, command) = parse(args(
            "whisk invoker -c f.toml --id 2 --kafka k:1 --couchdb http://c --directory d:7 --data-dir /x",
        ));
        let Command::Server(server::ServerCommand::Invoker(a)) = command else {
            panic!("not the invoker: {command:?}");
        };
        assert_eq!(
            a.config.config.as_deref(),
            Some(std::path::Path::new("f.toml"))
        );
        assert_eq!(a.id, Some(2));
        assert_eq!(a.cluster.kafka.as_deref(), Some("k:1"));
        assert_eq!(a.directory.directory.as_deref(), Some("d:7"));
        assert_eq!(a.data.data_dir.as_deref(), Some(std::path::Path::new("/x")));
    }
}
