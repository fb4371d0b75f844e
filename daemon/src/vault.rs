//! The vault: owns the user's token between connects and across restarts.
//!
//! The token is the user's credential, so it is held as a [`Token`] (zeroized on
//! drop, redacted in `Debug`) and never written to the data dir. Two stores:
//!
//! - `memory`: explicit and non-persistent, for tests and demos;
//! - `keyring`: the OS keyring. The real keyring stores (Secret Service, keyutils,
//!   Keychain, Credential Manager) arrive with the token-vault issue; until then
//!   this store keeps the token in memory and says so at start-up.
//!
//! A token the server rejected with 31004 or 31020 is marked, and not used for the
//! start-up auto-connect until a new one is given.

use rcim_proto::Token;
use std::sync::{Arc, Mutex};

/// Which token store to use (`--token-store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenStoreKind {
    /// The OS keyring.
    Keyring,
    /// Process memory only; the token is gone when rcimd stops.
    Memory,
}

#[derive(Default)]
struct Slot {
    token: Option<Token>,
    rejected: bool,
}

/// A cloneable handle to the token store.
#[derive(Clone)]
pub struct Vault {
    slot: Arc<Mutex<Slot>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault")
    }
}

impl Vault {
    /// Opens the chosen store.
    pub fn open(kind: TokenStoreKind) -> Self {
        if kind == TokenStoreKind::Keyring {
            tracing::warn!(
                "the OS keyring store is not built yet: the token is kept in memory only and must be given again after a restart"
            );
        }
        Self {
            slot: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        // A panic while holding this lock cannot leave the slot half-written.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored token, unless the server rejected it.
    pub async fn usable_token(&self) -> Option<Token> {
        let slot = self.lock();
        if slot.rejected {
            return None;
        }
        slot.token.clone()
    }

    /// Stores `token` (a new token clears a rejection).
    pub async fn save(&self, token: Token) {
        let mut slot = self.lock();
        if slot.token.as_ref() != Some(&token) {
            slot.rejected = false;
        }
        slot.token = Some(token);
    }

    /// Deletes the stored token (`rcimctl logout`).
    pub async fn delete(&self) {
        let mut slot = self.lock();
        slot.token = None;
        slot.rejected = false;
    }

    /// Marks the stored token as rejected by the server.
    pub async fn mark_rejected(&self) {
        self.lock().rejected = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rejection_holds_until_a_new_token() {
        let vault = Vault::open(TokenStoreKind::Memory);
        assert!(vault.usable_token().await.is_none());
        vault.save(Token::new("one")).await;
        assert_eq!(vault.usable_token().await, Some(Token::new("one")));
        vault.mark_rejected().await;
        assert!(vault.usable_token().await.is_none());
        vault.save(Token::new("one")).await;
        assert!(
            vault.usable_token().await.is_none(),
            "same token stays rejected"
        );
        vault.save(Token::new("two")).await;
        assert_eq!(vault.usable_token().await, Some(Token::new("two")));
    }
}
