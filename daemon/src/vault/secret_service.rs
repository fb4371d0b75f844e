//! The Secret Service (GNOME Keyring, KWallet) over the session D-Bus, on rcimd's
//! own tokio runtime.
//!
//! The blocking Secret Service store of the keyring crates runs zbus's blocking
//! API, which starts a multi-thread tokio runtime of its own: four threads and
//! about 3 MiB more for an idle rcimd. This module talks to the same service
//! through zbus's async API (by way of the `secret-service` crate, with its tokio
//! feature), so the D-Bus connection is a few tasks on rcimd's single thread.
//!
//! Entries are the ones the keyring crates write (attributes `service` and
//! `username`), so a token stored by an older rcimd is found. Every call here can
//! wait on D-Bus (and a locked collection on a password prompt): callers bound
//! it with a timeout and never call it from the link's hot path. The task that
//! owns the connection (see `super::secret_service_task`) runs one job at a time,
//! in order.

use secret_service::{EncryptionType, SecretService};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// A connection to the Secret Service with an open session.
pub struct SecretStore {
    service: SecretService<'static>,
}

/// What the Secret Service said when it failed, in its own words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SecretServiceError(String);

impl From<secret_service::Error> for SecretServiceError {
    fn from(e: secret_service::Error) -> Self {
        Self(e.to_string())
    }
}

/// The MIME type the keyring crates give secrets.
const CONTENT_TYPE: &str = "text/plain";

impl SecretStore {
    /// Connects to the session bus and opens an encrypted session (Diffie-Hellman
    /// key exchange: the secrets cross the bus encrypted).
    pub async fn connect() -> Result<Self, SecretServiceError> {
        let service = SecretService::connect(EncryptionType::Dh).await?;
        Ok(Self { service })
    }

    /// Connects and checks that the service works (see [`SecretStore::probe`],
    /// with a probe entry named `probe`); the error in the service's words.
    pub async fn connect_checked(service: &str, probe: &str) -> Result<Self, String> {
        let store = Self::connect().await.map_err(|e| e.to_string())?;
        store
            .probe(service, probe)
            .await
            .map_err(|e| e.to_string())?;
        Ok(store)
    }

    fn attributes<'a>(service: &'a str, account: &'a str) -> HashMap<&'a str, &'a str> {
        HashMap::from([("service", service), ("username", account)])
    }

    /// The secret of the entry (`service`, `account`), unlocking it if it is
    /// locked; `None` when there is none.
    pub async fn get(
        &self,
        service: &str,
        account: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, SecretServiceError> {
        let found = self
            .service
            .search_items(Self::attributes(service, account))
            .await?;
        let item = match (found.unlocked.first(), found.locked.first()) {
            (Some(item), _) => item,
            (None, Some(item)) => {
                item.unlock().await?;
                item
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(Zeroizing::new(item.get_secret().await?)))
    }

    /// Replaces the secret of the entry (`service`, `account`), creating it in
    /// the default collection when there is none.
    pub async fn set(
        &self,
        service: &str,
        account: &str,
        secret: &[u8],
    ) -> Result<(), SecretServiceError> {
        let found = self
            .service
            .search_items(Self::attributes(service, account))
            .await?;
        if let Some(item) = found.unlocked.first() {
            item.set_secret(secret, CONTENT_TYPE).await?;
            return Ok(());
        }
        if let Some(item) = found.locked.first() {
            item.unlock().await?;
            item.set_secret(secret, CONTENT_TYPE).await?;
            return Ok(());
        }
        let collection = match self.service.get_default_collection().await {
            Ok(collection) => collection,
            Err(secret_service::Error::NoResult) => self.service.get_any_collection().await?,
            Err(e) => return Err(e.into()),
        };
        collection.ensure_unlocked().await?;
        collection
            .create_item(
                &format!("{service} {account}"),
                Self::attributes(service, account),
                secret,
                true,
                CONTENT_TYPE,
            )
            .await?;
        Ok(())
    }

    /// Deletes the entry (`service`, `account`); none is fine.
    pub async fn delete(&self, service: &str, account: &str) -> Result<(), SecretServiceError> {
        let found = self
            .service
            .search_items(Self::attributes(service, account))
            .await?;
        for item in found.unlocked.iter().chain(found.locked.iter()) {
            item.delete().await?;
        }
        Ok(())
    }

    /// Checks that the service works: writes, reads back and deletes a probe
    /// entry named after `probe`.
    pub async fn probe(&self, service: &str, probe: &str) -> Result<(), ProbeError> {
        self.set(service, probe, b"probe")
            .await
            .map_err(ProbeError::Write)?;
        let read = self.get(service, probe).await.map_err(ProbeError::ReadBack);
        let _ = self.delete(service, probe).await;
        match read?.as_deref().map(Vec::as_slice) {
            Some(b"probe") => Ok(()),
            _ => Err(ProbeError::Differs),
        }
    }
}

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe could not be written.
    #[error("cannot write: {0}")]
    Write(SecretServiceError),
    /// The probe could not be read back.
    #[error("cannot read back: {0}")]
    ReadBack(SecretServiceError),
    /// What was read back differs from what was written.
    #[error("what was read back differs from what was written")]
    Differs,
}
