//! Shell completion of the `whisk` command line (made by `clap_complete` from its definition):
//! `whisk completion bash|zsh|fish|elvish|powershell` prints a script, and `whisk sdk install
//! bashauto` writes the bash one to `whisk_cli_bash_completion.sh` in the current folder (or
//! prints it with `--stdout`), as `wsk sdk install bashauto` does with its own.
//!
//! The binary gives these functions the whole command line (server roles included); a caller
//! without it gets the client's commands ([`client_command`]).

use std::io::Write;
use std::path::Path;

use crate::error::Failure;

/// The file `whisk sdk install bashauto` writes (wsk's is `wsk_cli_bash_completion.sh`).
pub const BASH_COMPLETION_FILE: &str = "whisk_cli_bash_completion.sh";

/// `whisk completion SHELL`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete `whisk` commands in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `whisk sdk ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SdkCommand {
    /// Install SDK artifacts, where the valid COMPONENT is bashauto (wsk's docker and ios
    /// components download files this platform does not serve).
    Install {
        /// What to install.
        component: Option<String>,
        /// Print the bash completion script instead of writing it to a file.
        #[arg(long)]
        stdout: bool,
    },
}

/// The client's commands alone, for callers that do not have the binary's whole command line.
pub fn client_command() -> clap::Command {
    use clap::Subcommand;
    crate::Command::augment_subcommands(clap::Command::new("whisk"))
}

/// Writes the completion script of `command` for `shell` to `out`.
pub fn write_script(mut command: clap::Command, shell: clap_complete::Shell, out: &mut dyn Write) {
    let name = command.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name.clone(), &mut script);
    if shell == clap_complete::Shell::Bash {
        // wsk's script starts with this line (its tests look for it).
        let _ = writeln!(out, "# bash completion for {name}");
    }
    let _ = out.write_all(&script);
    let _ = out.flush();
}

/// `whisk completion SHELL`: the script on stdout.
pub fn completion(command: clap::Command, args: CompletionArgs) -> anyhow::Result<()> {
    write_script(command, args.shell, &mut std::io::stdout().lock());
    Ok(())
}

/// `whisk sdk install COMPONENT`, in the current folder.
pub fn sdk(command: clap::Command, cmd: SdkCommand) -> anyhow::Result<()> {
    let SdkCommand::Install { component, stdout } = cmd;
    sdk_install(command, component.as_deref(), stdout, Path::new("."))
}

/// `whisk sdk install COMPONENT` in `dir`.
pub fn sdk_install(
    command: clap::Command,
    component: Option<&str>,
    stdout: bool,
    dir: &Path,
) -> anyhow::Result<()> {
    let Some(component) = component else {
        return Err(Failure::usage(
            "The SDK component argument is missing. One component (docker, ios, or bashauto) must be specified",
        )
        .into());
    };
    match component.to_ascii_lowercase().as_str() {
        "bashauto" if stdout => {
            completion(
                command,
                CompletionArgs {
                    shell: clap_complete::Shell::Bash,
                },
            )?;
        }
        "bashauto" => {
            let path = dir.join(BASH_COMPLETION_FILE);
            let mut file = std::fs::File::create(&path).map_err(|e| {
                Failure::general(format!("Unable to generate '{BASH_COMPLETION_FILE}': {e}"))
            })?;
            write_script(command, clap_complete::Shell::Bash, &mut file);
            print!(
                "The bash auto-completion script ({BASH_COMPLETION_FILE}) is installed in the current directory.\n\
                 To enable command line completion of whisk commands, source the auto completion script into your bash environment\n"
            );
        }
        "docker" | "ios" => {
            return Err(Failure::general(format!(
                "The SDK component '{component}' is not available from this platform; only bashauto is"
            ))
            .into());
        }
        other => {
            return Err(Failure::usage(format!(
                "The SDK component argument '{other}' is invalid. Valid components are docker, ios and bashauto"
            ))
            .into());
        }
    }
    Ok(())
}
