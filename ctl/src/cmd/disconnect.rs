//! `rcimctl disconnect [--no-push]`: RC's `disconnect(receivePush)`, which signs
//! this device out for every local app (the stored token stays for the next
//! `connect`).

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use std::io::Write;

/// Sign this device out of the IM server, for every local app.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Also stop remote push notifications (RC's disconnect(receivePush = false))
    #[arg(long)]
    pub no_push: bool,
}

/// Disconnects and prints the result.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let receive_push = !args.no_push;
    let code = ctx.attach()?.disconnect(receive_push)?;
    CliError::check("disconnect", code)?;
    render(receive_push, out)
}

/// `rcimctl logout`: disconnect without push and delete the stored token.
pub fn logout(ctx: &Context, out: &mut impl Write) -> Result<(), CliError> {
    let code = ctx.attach()?.logout()?;
    CliError::check("logout", code)?;
    writeln!(out, "logged out: the stored token was deleted")?;
    Ok(())
}

/// The success line.
pub fn render(receive_push: bool, out: &mut impl Write) -> Result<(), CliError> {
    let push = if receive_push { "kept" } else { "stopped" };
    writeln!(out, "disconnected (push notifications {push})")?;
    Ok(())
}
