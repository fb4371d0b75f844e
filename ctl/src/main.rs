//! `rcimctl`: the command line for `rcimd`.
//!
//! Thin on purpose: it parses arguments, attaches through `rcim-client` (never
//! daemon internals), and prints. Each subcommand is one module under [`cmd`] that
//! fetches first and renders second; this file owns only the global flags, the
//! mapping of failures onto exit codes, and the last line of defence for output
//! (a closed stdout, as in `rcimctl status | head -1`, ends quietly).

mod cmd;
mod failure;
mod view;

use clap::{CommandFactory, Parser, Subcommand};
use failure::CliError;
use rcim_client::ClientOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Text shared by every `--help`: what the exit status means.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success
  1  rcimd answered with an RC error (the message gives the code and its meaning)
  2  usage error: bad flags, no token source, an empty or malformed token
  3  rcimd could not be reached or used (not running, not yours, another
     protocol version, or it went away); the message says how to start it
  4  send only: the server did not confirm within --timeout (the message
     stays queued in rcimd's outbox)";

/// Talk to rcimd, the per-user daemon that holds the one IM connection for every
/// local app.
#[derive(Debug, Parser)]
#[command(name = "rcimctl", version, after_long_help = EXIT_STATUS_HELP)]
struct Cli {
    /// rcimd's socket [default: $RCIM_SOCKET, else $XDG_RUNTIME_DIR/rcim/rcimd.sock]
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Seconds to keep retrying while rcimd is starting and not yet listening
    #[arg(long, global = true, value_name = "SECS", default_value_t = 0)]
    wait: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Status(cmd::status::Args),
    Connect(cmd::connect::Args),
    Disconnect(cmd::disconnect::Args),
    Send(cmd::send::Args),
    History(cmd::history::Args),
    Conversations(cmd::conversations::Args),
    Watch(cmd::watch::Args),
    Clients(cmd::clients::Args),
    Doctor(cmd::doctor::Args),
    Logout(cmd::disconnect::LogoutArgs),
    Completions(cmd::completions::Args),
    Man(cmd::man::Args),
    Read(cmd::read::Args),
    Unread(cmd::unread::Args),
    Typing(cmd::typing::Args),
    Pin(cmd::pin::Args),
    Mute(cmd::mute::Args),
    Remove(cmd::remove::Args),
    Delete(cmd::delete::Args),
    Draft(cmd::draft::Args),
    Recall(cmd::recall::Args),
    Search(cmd::search::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = cmd::Context {
        options: ClientOptions {
            socket: cli.socket,
            wait_for_daemon: Duration::from_secs(cli.wait),
            ..ClientOptions::named("rcimctl")
        },
    };
    // Styles reach stdout only when it is a terminal (and NO_COLOR is unset).
    let mut out = anstream::AutoStream::auto(io::stdout().lock());
    let result = match cli.command {
        Command::Status(args) => cmd::status::run(&ctx, &args, &mut out),
        Command::Connect(args) => cmd::connect::run(&ctx, &args, &mut out),
        Command::Disconnect(args) => cmd::disconnect::run(&ctx, &args, &mut out),
        Command::Send(args) => cmd::send::run(&ctx, &args, &mut out),
        Command::History(args) => cmd::history::run(&ctx, &args, &mut out),
        Command::Conversations(args) => cmd::conversations::run(&ctx, &args, &mut out),
        Command::Watch(args) => cmd::watch::run(&ctx, &args, &mut out),
        Command::Clients(args) => cmd::clients::run(&ctx, &args, &mut out),
        Command::Doctor(args) => cmd::doctor::run(&ctx, &args, &mut out),
        Command::Logout(args) => cmd::disconnect::logout(&ctx, &args, &mut out),
        Command::Read(args) => cmd::read::run(&ctx, &args, &mut out),
        Command::Unread(args) => cmd::unread::run(&ctx, &args, &mut out),
        Command::Typing(args) => cmd::typing::run(&ctx, &args, &mut out),
        Command::Pin(args) => cmd::pin::run(&ctx, &args, &mut out),
        Command::Mute(args) => cmd::mute::run(&ctx, &args, &mut out),
        Command::Remove(args) => cmd::remove::run(&ctx, &args, &mut out),
        Command::Delete(args) => cmd::delete::run(&ctx, &args, &mut out),
        Command::Draft(args) => cmd::draft::run(&ctx, &args, &mut out),
        Command::Completions(args) => cmd::completions::run(&args, Cli::command(), &mut out),
        Command::Man(args) => cmd::man::run(&args, Cli::command(), &mut out),
        Command::Recall(args) => cmd::recall::run(&ctx, &args, &mut out),
        Command::Search(args) => cmd::search::run(&ctx, &args, &mut out),
    };
    let result = result.and_then(|()| out.flush().map_err(CliError::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(message) = err.message() {
                let style = anstyle::Style::new()
                    .bold()
                    .fg_color(Some(anstyle::AnsiColor::Red.into()));
                // Nothing sensible is left to do if stderr is gone too.
                let _ = writeln!(anstream::stderr(), "{style}rcimctl:{style:#} {message}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
