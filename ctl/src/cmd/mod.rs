//! One module per subcommand. Each has clap `Args`, a `run` that fetches from the
//! daemon, and separate render functions that only format what was fetched, so the
//! output can be tested without a daemon.

pub mod clients;
pub mod completions;
pub mod connect;
pub mod conversations;
pub mod delete;
pub mod disconnect;
pub mod doctor;
pub mod draft;
pub mod history;
pub mod man;
pub mod mute;
pub mod pin;
pub mod read;
pub mod recall;
pub mod remove;
pub mod search;
pub mod send;
pub mod status;
pub mod typing;
pub mod unread;
pub mod watch;
pub mod with;

use crate::failure::CliError;
use rcim_client::ClientOptions;
use rcim_client::blocking::Client;

/// What every subcommand needs from the global flags.
#[derive(Debug)]
pub struct Context {
    /// Where the daemon is and how long to wait for it.
    pub options: ClientOptions,
}

impl Context {
    /// Attaches to the daemon.
    pub fn attach(&self) -> Result<Client, CliError> {
        Ok(Client::attach(self.options.clone())?)
    }
}
