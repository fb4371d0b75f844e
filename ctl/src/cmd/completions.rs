//! `rcimctl completions SHELL`: a completion script for SHELL on stdout, generated
//! from the same clap definition as the parser (so it never goes stale).
//!
//! ```text
//! rcimctl completions bash > ~/.local/share/bash-completion/completions/rcimctl
//! rcimctl completions zsh > "${fpath[1]}/_rcimctl"
//! rcimctl completions fish > ~/.config/fish/completions/rcimctl.fish
//! ```

use crate::failure::CliError;
use clap_complete::Shell;
use std::io::Write;

/// Print a shell completion script (bash, zsh, fish, elvish or powershell).
///
/// For example: `rcimctl completions bash >
/// ~/.local/share/bash-completion/completions/rcimctl`, `rcimctl completions zsh >
/// "${fpath[1]}/_rcimctl"`, `rcimctl completions fish >
/// ~/.config/fish/completions/rcimctl.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the script for `args.shell`, for the command line `command` describes.
pub fn run(args: &Args, mut command: clap::Command, out: &mut impl Write) -> Result<(), CliError> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    out.write_all(&script)?;
    Ok(())
}
