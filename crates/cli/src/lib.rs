//! The `whisk` command-line client: a `wsk`-compatible client of the OpenWhisk REST API
//! (plus `admin` commands for user management). The binary (`src/main.rs`) only parses,
//! sets up logging and calls [`run`]; `whisk standalone` lives in the binary.
//!
//! Layout:
//! - [`config`]: global flags, `~/.wskprops`, environment, defaults → [`config::Settings`].
//! - [`client`]: the REST client (URLs, auth, TLS options, error answers).
//! - [`params`]: `-p`/`-P` values, qualified names, kinds from file extensions.
//! - [`output`]: pretty JSON and `wsk`'s tables.
//! - [`error`]: failures and `wsk`'s exit codes.
//! - commands: [`action`] (with [`action_body`], [`sequence`] and [`invoke`]), [`activation`], [`package`], [`namespace`] (also `list`), [`property`], [`admin`].
//! - [`trigger`], [`rule`]: triggers (fire) and rules (enable, disable, status).
//! - [`status`]: `whisk status`, the health of every service of a platform.
//! - [`completion`]: `whisk completion SHELL` and `whisk sdk install bashauto`.

pub mod action;
pub mod action_body;
pub mod activation;
pub mod admin;
pub mod api;
pub mod client;
pub mod completion;
pub mod config;
pub mod error;
pub mod feed;
pub mod invoke;
pub mod namespace;
pub mod output;
pub mod package;
pub mod params;
pub mod property;
pub mod rule;
pub mod sequence;
pub mod status;
pub mod trigger;

use config::{GlobalArgs, Props, Settings};
use error::{ApiError, Failure};

/// The client's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Work with actions.
    #[command(subcommand)]
    Action(action::ActionCommand),
    /// Work with activations.
    #[command(subcommand)]
    Activation(activation::ActivationCommand),
    /// Work with APIs (routes to web actions).
    #[command(subcommand)]
    Api(api::ApiCommand),
    /// Work with triggers.
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
    /// Work with rules.
    #[command(subcommand)]
    Rule(rule::RuleCommand),
    /// Work with packages.
    #[command(subcommand)]
    Package(package::PackageCommand),
    /// Work with namespaces.
    #[command(subcommand)]
    Namespace(namespace::NamespaceCommand),
    /// List entities in the current namespace.
    List(namespace::GetArgs),
    /// Work with whisk properties (~/.wskprops).
    #[command(subcommand)]
    Property(property::PropertyCommand),
    /// Administer users, keys and limits on the store (as OpenWhisk's wskadmin).
    Admin(admin::AdminArgs),
    /// Show the health of every service (controller, invokers, directory, Kafka, CouchDB,
    /// Redis); exits 1 when one is down.
    Status(status::StatusArgs),
    /// Work with the SDK (`install bashauto`: the bash completion script).
    #[command(subcommand)]
    Sdk(completion::SdkCommand),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    Completion(completion::CompletionArgs),
}

/// Runs one client command with the process environment.
pub async fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let props_path = config::props_path(&env);
    let props = Props::load(&props_path)?;
    let client = || client::Client::new(Settings::resolve(global, &props, &env));
    match command {
        Command::Property(cmd) => property::run(cmd, global, &props_path, props.clone(), &env),
        Command::Action(cmd) => action::run(&client()?, global.json, cmd).await,
        Command::Activation(cmd) => activation::run(&client()?, global.json, cmd).await,
        Command::Api(cmd) => api::run(&client()?, cmd).await,
        Command::Trigger(cmd) => trigger::run(&client()?, global.json, cmd).await,
        Command::Rule(cmd) => rule::run(&client()?, global.json, cmd).await,
        Command::Package(cmd) => package::run(&client()?, global.json, cmd).await,
        Command::Namespace(cmd) => namespace::run(&client()?, global.json, cmd).await,
        Command::List(args) => namespace::get(&client()?, global.json, args).await,
        Command::Admin(args) => admin::run(args, &env).await,
        Command::Status(args) => status::run(&args, global.json, &std::env::vars().collect()).await,
        Command::Sdk(cmd) => completion::sdk(completion::client_command(), cmd),
        Command::Completion(args) => completion::completion(completion::client_command(), args),
    }
}

/// The exit code and the message to print (as `error: <message>`) for a failed command.
pub fn describe_failure(e: &anyhow::Error) -> (i32, Option<String>) {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return (f.code, f.message.clone());
    }
    if let Some(a) = e.downcast_ref::<ApiError>() {
        return (a.exit_code(), Some(a.to_string()));
    }
    (error::EXIT_GENERAL, Some(format!("{e:#}")))
}
