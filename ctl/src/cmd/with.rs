//! The flags that name one conversation, shared by the commands that act on one
//! (`read`, `pin`, `mute`, `remove`, `delete --with`, `draft`): `--with ID` and `--group`
//! or `--system`.

use rcim_client::{ConversationKey, ConversationType};

/// One conversation: a user (or a group, or a system sender).
#[derive(Debug, clap::Args)]
pub struct WithArgs {
    /// The other side: a user id (or a group id with --group)
    #[arg(long, value_name = "ID")]
    pub with: String,

    /// --with is a group id
    #[arg(long, conflicts_with = "system")]
    pub group: bool,

    /// The system conversation with --with
    #[arg(long)]
    pub system: bool,
}

impl WithArgs {
    /// The conversation the flags name.
    pub fn conversation(&self) -> ConversationKey {
        let kind = if self.group {
            ConversationType::Group
        } else if self.system {
            ConversationType::System
        } else {
            ConversationType::Private
        };
        ConversationKey {
            kind,
            target_id: self.with.clone(),
        }
    }
}
