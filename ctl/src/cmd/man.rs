//! `rcimctl man`: the rcimctl(1) manual page, in roff, on stdout, generated from
//! the clap definition (every subcommand and flag, and the exit statuses).
//!
//! ```text
//! rcimctl man > ~/.local/share/man/man1/rcimctl.1 && man rcimctl
//! ```

use crate::failure::CliError;
use std::io::Write;

/// Print the rcimctl(1) manual page (roff) on stdout.
///
/// For example: `rcimctl man > ~/.local/share/man/man1/rcimctl.1`, or `rcimctl man
/// | man -l -`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Writes the page for the command line `command` describes, with a section per
/// subcommand.
pub fn run(_args: &Args, command: clap::Command, out: &mut impl Write) -> Result<(), CliError> {
    let mut page = Vec::new();
    let command = command.version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    for sub in command.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let full = format!("{} {}", command.get_name(), sub.get_name());
        let sub = sub
            .clone()
            .display_name(full.clone())
            .bin_name(full.clone());
        let mut section = format!(".SH \"{}\"\n", full.to_uppercase()).into_bytes();
        let man = clap_mangen::Man::new(sub);
        man.render_synopsis_section(&mut section)?;
        man.render_description_section(&mut section)?;
        man.render_options_section(&mut section)?;
        // Demote the sub-page's headings so they read as one page's subsections.
        let section = String::from_utf8_lossy(&section).replace("\n.SH ", "\n.SS ");
        page.extend_from_slice(section.as_bytes());
    }
    out.write_all(&page)?;
    Ok(())
}
