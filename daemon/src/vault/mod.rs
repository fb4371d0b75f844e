//! The vault: owns the user's token between connects and across restarts.
//!
//! The token is the user's credential. It is held as a [`Token`] (zeroized on drop,
//! redacted in `Debug`), never written to the data dir, never logged. It lives in one
//! of these stores (`--token-store`):
//!
//! - `secret-service`: the desktop keyring over D-Bus (GNOME Keyring, KWallet, ...);
//! - `keyutils`: the kernel keyring, for headless Linux hosts; it needs a session
//!   keyring (a login session, or `keyctl session -`) and is cleared by a reboot;
//! - the Keychain on macOS and the Credential Manager on Windows (through `auto`);
//! - `memory`: process memory only, for tests and demos;
//! - `auto` (the default; `keyring` is an old alias): the first of the OS stores
//!   that works here, checked by writing, reading and deleting a probe entry.
//!
//! A systemd credential `$CREDENTIALS_DIRECTORY/rcim-token` is a read-only source
//! beside the store: it is used when the store holds no usable token.
//!
//! The Secret Service is called through zbus's async API on rcimd's own runtime
//! (`secret_service.rs`): a task owns the D-Bus connection, with no thread or
//! runtime of its own. The other stores' calls are blocking, so they run on the
//! vault's own thread. Either way one owner runs the store's jobs in order. The
//! handle keeps a mirror of the entry in memory, loaded when the vault opens;
//! reads come from the mirror and writes go through to the store before they
//! return, or for at most [`WRITE_WAIT`]: a keyring that does not answer (a hung
//! D-Bus, a locked collection waiting for its password prompt) must not hold up the
//! link, which waits on these writes in `connect`. The write then finishes on the
//! vault's thread in the background (later writes queue behind it, in order), and
//! its outcome is logged when it comes.
//!
//! The same store keeps each user database's key (see `crate::store::cipher`), in
//! an entry of its own per database file: the memory store keeps no key, since a
//! key that dies with the process would make the database unreadable at the next
//! start. Key reads and writes wait for the store (they come before a database
//! opens, not on the link's hot path), for [`KEY_WAIT`] at most.
//!
//! One entry per (server, app key), under the service name `rcim`, so two
//! configurations never clash. Its secret is the token behind a short prefix that
//! says whether the server rejected it (31004, 31020): a rejected token is not used
//! for the start-up auto-connect until a new one is given, across restarts too,
//! and the mark never sits in the data dir in clear.

#[cfg(target_os = "linux")]
mod secret_service;

use crate::store::cipher::DbKey;
use rcim_proto::Token;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// The keyring service name every entry is stored under.
pub const SERVICE: &str = "rcim";
/// The systemd credential read as a token source (`LoadCredential=rcim-token:...`).
pub const CREDENTIAL_NAME: &str = "rcim-token";
/// How long opening a keyring may take before rcimd gives up on it (a locked
/// keyring may be waiting for a password prompt nobody sees).
const OPEN_LIMIT: Duration = Duration::from_secs(20);
/// The secret's prefix for a token the server has not rejected.
const USABLE: &str = "rcim1:usable:";
/// The secret's prefix for a token the server rejected.
const REJECTED: &str = "rcim1:rejected:";

/// Which token store to use (`--token-store`, `token_store` in the config file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenStoreKind {
    /// The first OS keyring that works here (Linux: Secret Service, then keyutils).
    #[default]
    #[value(alias = "keyring")]
    #[serde(alias = "keyring")]
    Auto,
    /// The Secret Service over the session D-Bus (GNOME Keyring, KWallet).
    SecretService,
    /// The Linux kernel keyring (needs a session keyring; lost at reboot).
    Keyutils,
    /// Process memory only; the token is gone when rcimd stops.
    Memory,
}

impl TokenStoreKind {
    /// The name as `--token-store` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::Memory => "memory",
        }
    }
}

impl fmt::Display for TokenStoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A concrete store, as chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreName {
    /// The Secret Service (D-Bus).
    SecretService,
    /// The Linux kernel keyring.
    Keyutils,
    /// The macOS Keychain.
    Keychain,
    /// The Windows Credential Manager.
    CredentialManager,
    /// Process memory.
    Memory,
}

impl StoreName {
    /// A short name for logs and `rcimctl doctor`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecretService => "secret-service",
            Self::Keyutils => "keyutils",
            Self::Keychain => "keychain",
            Self::CredentialManager => "credential-manager",
            Self::Memory => "memory",
        }
    }

    /// What to do when this store does not work.
    fn fix(self) -> &'static str {
        match self {
            Self::SecretService => {
                "start a keyring daemon in this session (log in to a desktop, or run gnome-keyring-daemon --unlock under the session D-Bus)"
            }
            Self::Keyutils => {
                "run rcimd inside a session keyring (a login session, or `keyctl session - rcimd ...`)"
            }
            Self::Keychain => "unlock the login keychain",
            Self::CredentialManager => "check that the Credential Manager service runs",
            Self::Memory => "nothing: memory always works",
        }
    }

    /// The OS stores `auto` tries, in order.
    pub fn candidates() -> &'static [StoreName] {
        if cfg!(target_os = "linux") {
            &[Self::SecretService, Self::Keyutils]
        } else if cfg!(target_os = "macos") {
            &[Self::Keychain]
        } else if cfg!(windows) {
            &[Self::CredentialManager]
        } else {
            &[]
        }
    }
}

impl fmt::Display for StoreName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the vault could not open. Each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The store asked for does not work here.
    #[error(
        "the {store} token store does not work here: {detail}. Fix: {fix}; or choose another with --token-store (memory keeps the token only until rcimd stops)",
        fix = store.fix()
    )]
    Unusable {
        /// The store.
        store: StoreName,
        /// What failed.
        detail: String,
    },
    /// `auto` found no working OS store.
    #[error(
        "no OS keyring works here ({tried}). Fix: start a keyring daemon (gnome-keyring-daemon under the session D-Bus), run rcimd inside a session keyring (`keyctl session -`), or choose --token-store memory (the token is then kept only until rcimd stops; a systemd credential `rcim-token` can provide it at each start)"
    )]
    NoneWorks {
        /// Each store tried, with what failed.
        tried: String,
    },
    /// The store was not built into this rcimd (another OS).
    #[error("the {0} token store is not available on this OS; choose --token-store auto or memory")]
    NotOnThisOs(TokenStoreKind),
    /// The keyring did not answer in time.
    #[error(
        "the OS keyring did not answer within {OPEN_LIMIT:?} (a locked keyring may be waiting for a password prompt); unlock it, or choose --token-store memory"
    )]
    TimedOut,
    /// The systemd credential exists but cannot be read.
    #[error("cannot read the systemd credential {path}: {detail}")]
    Credential {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

/// What the vault needs to open: the store, the entry's key and the credential.
#[derive(Clone, Debug)]
pub struct VaultOptions {
    /// The store.
    pub kind: TokenStoreKind,
    /// The keyring entry's user field: `APP_KEY@SERVER`, so two configurations of
    /// rcimd never share a token.
    pub account: String,
    /// A read-only token file (the systemd credential), if any.
    pub credential: Option<PathBuf>,
}

impl VaultOptions {
    /// Options for `server` and `app_key`; the credential comes from
    /// `$CREDENTIALS_DIRECTORY/rcim-token` when systemd provides one.
    pub fn new(kind: TokenStoreKind, server: &str, app_key: &str) -> Self {
        let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(CREDENTIAL_NAME))
            .filter(|path| path.exists());
        Self {
            kind,
            account: format!("{app_key}@{server}"),
            credential,
        }
    }
}

/// The entry's content, mirrored in memory.
#[derive(Default)]
struct Record {
    token: Option<Token>,
    rejected: bool,
}

impl Record {
    /// The secret as stored: a prefix saying whether the token was rejected, then
    /// the token.
    fn encode(&self) -> Option<Zeroizing<String>> {
        let token = self.token.as_ref()?;
        let prefix = if self.rejected { REJECTED } else { USABLE };
        let mut secret = Zeroizing::new(String::with_capacity(prefix.len() + token.expose().len()));
        secret.push_str(prefix);
        secret.push_str(token.expose());
        Some(secret)
    }

    /// Reads a stored secret. One without our prefix (put there by hand, e.g. with
    /// `secret-tool store`) is taken as a usable token.
    fn decode(secret: &[u8]) -> Record {
        let Ok(text) = std::str::from_utf8(secret) else {
            tracing::warn!("the stored token is not UTF-8; ignoring it");
            return Record::default();
        };
        let text = text.trim();
        let (rejected, token) = if let Some(token) = text.strip_prefix(REJECTED) {
            (true, token)
        } else if let Some(token) = text.strip_prefix(USABLE) {
            (false, token)
        } else {
            (false, text)
        };
        Record {
            token: (!token.is_empty()).then(|| Token::new(token)),
            rejected,
        }
    }
}

/// The longest a caller waits for a write to reach the store. Writes to a working
/// keyring take milliseconds (keyutils) to tens of milliseconds (the Secret
/// Service); the link's heartbeat waits 6 s for a pong by default, so a stall must
/// stay well under that.
pub const WRITE_WAIT: Duration = Duration::from_secs(2);

/// The longest a database open waits for the store to read or write a key. A
/// keyring that takes longer fails the open (`onDatabaseOpened(33002)`); the next
/// connect tries again. A key is never taken as lost because the store was slow.
pub const KEY_WAIT: Duration = Duration::from_secs(10);

/// The secret's prefix for a database key.
const KEY_PREFIX: &str = "rcim1:dbkey:";

/// A job for the vault's thread.
enum Job {
    /// Replace the entry's secret.
    Write(Zeroizing<String>, oneshot::Sender<Result<(), WriteError>>),
    /// Delete the entry (no entry is fine).
    Delete(oneshot::Sender<Result<(), WriteError>>),
    /// Read the secret of another entry (a database key); `None` if it has none.
    ReadOther(
        String,
        oneshot::Sender<Result<Option<Zeroizing<Vec<u8>>>, WriteError>>,
    ),
    /// Replace the secret of another entry (a database key).
    WriteOther(
        String,
        Zeroizing<String>,
        oneshot::Sender<Result<(), WriteError>>,
    ),
}

/// Where the vault's jobs go: the vault thread (blocking stores), or the task
/// that owns the Secret Service connection.
#[derive(Clone)]
enum JobSender {
    Thread(mpsc::Sender<Job>),
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Task(tokio::sync::mpsc::UnboundedSender<Job>),
}

impl JobSender {
    /// Queues `job`; false when its owner has ended.
    fn send(&self, job: Job) -> bool {
        match self {
            Self::Thread(jobs) => jobs.send(job).is_ok(),
            Self::Task(jobs) => jobs.send(job).is_ok(),
        }
    }
}

/// What the store says of a database key.
#[derive(Debug)]
pub enum KeyLookup {
    /// The key.
    Found(DbKey),
    /// The store answered: it has no key for this database (or one that is not a
    /// key rcimd wrote).
    Missing,
}

/// Why a database key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// This store keeps no keys (memory).
    #[error("the {0} token store keeps no database key (it would be gone at the next start)")]
    NoKeyStore(StoreName),
    /// The store refused, in its own words.
    #[error("the {store} store failed: {detail}")]
    Store {
        /// The store.
        store: StoreName,
        /// Its message.
        detail: String,
    },
    /// The store did not answer within [`KEY_WAIT`].
    #[error(
        "the {0} store did not answer within {KEY_WAIT:?} (a locked keyring may be waiting for its password)"
    )]
    TimedOut(StoreName),
}

/// Why a write to the store failed. The vault only logs it: the change then holds
/// in memory until rcimd stops.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The keyring refused, in its own words. Only the message leaves the vault
    /// thread: a keyring error's value can hold a secret's bytes (`BadEncoding`).
    #[error("{0}")]
    Keyring(String),
    /// The vault thread ended (it panicked), so nothing reached the store.
    #[error("the vault thread is gone")]
    ThreadGone,
}

impl From<keyring_core::Error> for WriteError {
    fn from(e: keyring_core::Error) -> Self {
        Self::Keyring(e.to_string())
    }
}

/// A cloneable handle to the token store.
#[derive(Clone)]
pub struct Vault {
    mirror: Arc<Mutex<Record>>,
    credential: Option<Arc<Token>>,
    store: StoreName,
    /// Where the store's jobs go; `None` for the memory store.
    jobs: Option<JobSender>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault in process memory only (tests, `--dev`).
    pub fn memory() -> Self {
        Self {
            mirror: Arc::default(),
            credential: None,
            store: StoreName::Memory,
            jobs: None,
        }
    }

    /// Opens the store `options` names (for `auto`, the first that works), reads the
    /// stored entry, and reads the systemd credential if there is one.
    pub async fn open(options: VaultOptions) -> Result<Self, VaultError> {
        let credential = match options.credential.clone() {
            Some(path) => Some(Arc::new(read_credential(path).await?)),
            None => None,
        };
        let kind = match options.kind {
            // With a credential and no keyring, memory is enough: the credential is
            // read again at every start.
            TokenStoreKind::Auto if credential.is_some() => match open_keyring(options).await {
                Ok(vault) => return Ok(vault.with_credential(credential)),
                Err(e) => {
                    tracing::info!(
                        "token store: memory, with the systemd credential {CREDENTIAL_NAME} (no OS keyring: {e})"
                    );
                    return Ok(Self::memory().with_credential(credential));
                }
            },
            TokenStoreKind::Memory => {
                tracing::info!("token store: memory (the token is forgotten when rcimd stops)");
                return Ok(Self::memory().with_credential(credential));
            }
            kind => kind,
        };
        let vault = open_keyring(VaultOptions { kind, ..options }).await?;
        Ok(vault.with_credential(credential))
    }

    fn with_credential(mut self, credential: Option<Arc<Token>>) -> Self {
        if credential.is_some() {
            tracing::info!("the systemd credential {CREDENTIAL_NAME} is a read-only token source");
        }
        self.credential = credential;
        self
    }

    /// The store in use.
    pub fn store(&self) -> StoreName {
        self.store
    }

    /// Whether this store can keep a database key (every OS store; not memory).
    pub fn keeps_keys(&self) -> bool {
        self.jobs.is_some()
    }

    /// The key of the database `account` names (see [`key_account`]).
    pub async fn database_key(&self, account: &str) -> Result<KeyLookup, KeyError> {
        let jobs = self.jobs.as_ref().ok_or(KeyError::NoKeyStore(self.store))?;
        let (reply, answer) = oneshot::channel();
        let sent = jobs.send(Job::ReadOther(account.to_owned(), reply));
        let secret = self.key_answer(sent, answer).await?;
        let Some(secret) = secret else {
            return Ok(KeyLookup::Missing);
        };
        let key = std::str::from_utf8(&secret)
            .ok()
            .and_then(|text| text.trim().strip_prefix(KEY_PREFIX))
            .and_then(DbKey::from_hex);
        Ok(match key {
            Some(key) => KeyLookup::Found(key),
            None => {
                tracing::warn!(
                    "the {} store holds something for this database that is not a key rcimd wrote; ignoring it",
                    self.store
                );
                KeyLookup::Missing
            }
        })
    }

    /// Stores the key of the database `account` names, and waits until the store
    /// has it: a database is encrypted with a new key only once the key is safe.
    pub async fn save_database_key(&self, account: &str, key: &DbKey) -> Result<(), KeyError> {
        let jobs = self.jobs.as_ref().ok_or(KeyError::NoKeyStore(self.store))?;
        let mut secret = Zeroizing::new(String::with_capacity(KEY_PREFIX.len() + 64));
        secret.push_str(KEY_PREFIX);
        secret.push_str(&key.to_hex());
        let (reply, answer) = oneshot::channel();
        let sent = jobs.send(Job::WriteOther(account.to_owned(), secret, reply));
        self.key_answer(sent, answer).await
    }

    /// Waits up to [`KEY_WAIT`] for the vault thread's answer to a key job.
    async fn key_answer<T>(
        &self,
        sent: bool,
        answer: oneshot::Receiver<Result<T, WriteError>>,
    ) -> Result<T, KeyError> {
        let store = self.store;
        let failed = |e: WriteError| KeyError::Store {
            store,
            detail: e.to_string(),
        };
        if !sent {
            return Err(failed(WriteError::ThreadGone));
        }
        match tokio::time::timeout(KEY_WAIT, answer).await {
            Err(_) => Err(KeyError::TimedOut(store)),
            Ok(Err(_)) => Err(failed(WriteError::ThreadGone)),
            Ok(Ok(result)) => result.map_err(failed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        // A panic while holding this lock cannot leave the record half-written.
        self.mirror.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token to connect with at start-up: the stored one unless the server
    /// rejected it, else the systemd credential unless that is the rejected one.
    pub async fn usable_token(&self) -> Option<Token> {
        let record = self.lock();
        match (&record.token, record.rejected) {
            (Some(token), false) => Some(token.clone()),
            (stored, _) => self
                .credential
                .as_deref()
                .filter(|credential| stored.as_ref() != Some(*credential))
                .cloned(),
        }
    }

    /// Stores `token` (a new token clears a rejection).
    pub async fn save(&self, token: Token) {
        let secret = {
            let mut record = self.lock();
            if record.token.as_ref() == Some(&token) {
                return;
            }
            record.rejected = false;
            record.token = Some(token);
            record.encode()
        };
        if let Some(secret) = secret {
            self.write(secret, "save the token").await;
        }
    }

    /// Deletes the stored token (`rcimctl logout`).
    pub async fn delete(&self) {
        {
            let mut record = self.lock();
            record.token = None;
            record.rejected = false;
        }
        let Some(jobs) = &self.jobs else { return };
        let (reply, answer) = oneshot::channel();
        self.finish(jobs.send(Job::Delete(reply)), answer, "delete the token")
            .await;
    }

    /// Marks the stored token as rejected by the server.
    pub async fn mark_rejected(&self) {
        let secret = {
            let mut record = self.lock();
            if record.rejected {
                return;
            }
            record.rejected = true;
            record.encode()
        };
        if let Some(secret) = secret {
            self.write(secret, "mark the token rejected").await;
        }
    }

    async fn write(&self, secret: Zeroizing<String>, what: &'static str) {
        let Some(jobs) = &self.jobs else { return };
        let (reply, answer) = oneshot::channel();
        self.finish(jobs.send(Job::Write(secret, reply)), answer, what)
            .await;
    }

    /// Waits up to [`WRITE_WAIT`] for the vault thread's answer to a write; past
    /// that, the answer is awaited and logged in the background.
    async fn finish(
        &self,
        sent: bool,
        mut answer: oneshot::Receiver<Result<(), WriteError>>,
        what: &'static str,
    ) {
        if !sent {
            log_write(what, self.store, Err(WriteError::ThreadGone));
            return;
        }
        match tokio::time::timeout(WRITE_WAIT, &mut answer).await {
            Ok(answered) => log_write(
                what,
                self.store,
                answered.unwrap_or(Err(WriteError::ThreadGone)),
            ),
            Err(_) => {
                tracing::warn!(
                    "the {} store has not answered within {WRITE_WAIT:?} (trying to {what}); \
                     rcimd goes on, the write finishes in the background",
                    self.store
                );
                let store = self.store;
                drop(tokio::spawn(async move {
                    let written = answer.await.unwrap_or(Err(WriteError::ThreadGone));
                    if written.is_ok() {
                        tracing::info!("the {store} store answered at last: done ({what})");
                    }
                    log_write(what, store, written);
                }));
            }
        }
    }
}

/// The keyring account (the entry's user field) of the key of the database at
/// `path`: one entry per database file, so two data dirs never share a key.
pub fn key_account(path: &std::path::Path) -> String {
    // The directory as the OS resolves it, so `--decrypt-db` given another
    // spelling of the path (relative, through a symlink) finds the same entry.
    let resolved = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        })
        .map(|dir| dir.join(name))
        .unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    };
    format!("dbkey:{}", resolved.display())
}

/// Logs a write that failed (a vault thread that ended is a failure too).
fn log_write(what: &str, store: StoreName, written: Result<(), WriteError>) {
    if let Err(e) = written {
        tracing::warn!(
            "cannot {what} in the {store} store: {e}; the change holds only until rcimd stops"
        );
    }
}

/// Reads the systemd credential off the worker threads.
async fn read_credential(path: PathBuf) -> Result<Token, VaultError> {
    let read = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || std::fs::read(&path).map(Zeroizing::new))
    };
    let failed = |detail: String| VaultError::Credential {
        path: path.clone(),
        detail,
    };
    let bytes = read
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| failed("it is not UTF-8".into()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(failed("it is empty".into()));
    }
    Ok(Token::new(text))
}

/// Opens the store `options` names (for `auto`, the first of the OS stores that
/// works here) and reads the entry, waiting at most [`OPEN_LIMIT`] for each.
async fn open_keyring(options: VaultOptions) -> Result<Vault, VaultError> {
    let wanted: &[StoreName] = match options.kind {
        TokenStoreKind::Auto => StoreName::candidates(),
        TokenStoreKind::SecretService if cfg!(target_os = "linux") => &[StoreName::SecretService],
        TokenStoreKind::Keyutils if cfg!(target_os = "linux") => &[StoreName::Keyutils],
        kind => return Err(VaultError::NotOnThisOs(kind)),
    };
    let mut tried = Vec::new();
    for &name in wanted {
        let opened = match name {
            #[cfg(target_os = "linux")]
            StoreName::SecretService => open_secret_service(options.clone()).await,
            _ => {
                let (options, account) = (options.clone(), options.account.clone());
                start_thread(move |opened, inbox| {
                    keyring_thread(options, opened, inbox, move || {
                        check(name, &account)
                            .map(|store| (name, store))
                            .map_err(|e| VaultError::Unusable {
                                store: name,
                                detail: e.to_string(),
                            })
                    })
                })
                .await
            }
        };
        match opened {
            Err(e) if options.kind == TokenStoreKind::Auto => {
                let detail = match &e {
                    VaultError::Unusable { detail, .. } => detail.clone(),
                    other => other.to_string(),
                };
                tracing::info!("token store {name} does not work here: {detail}");
                tried.push(format!("{name}: {detail}"));
            }
            other => return other,
        }
    }
    Err(VaultError::NoneWorks {
        tried: tried.join("; "),
    })
}

/// Logs the store opened and what it holds.
fn log_opened(kind: TokenStoreKind, name: StoreName, record: &Record) {
    tracing::info!(
        "token store: {name} ({}; a stored token is {})",
        match kind {
            TokenStoreKind::Auto => "chosen by auto",
            _ => "as configured",
        },
        match (&record.token, record.rejected) {
            (None, _) => "absent",
            (Some(_), false) => "present",
            (Some(_), true) => "present but was rejected by the server",
        }
    );
}

/// Connects to the Secret Service on this runtime, checks that it works, reads
/// the entry, and starts the task that owns the connection.
#[cfg(target_os = "linux")]
async fn open_secret_service(options: VaultOptions) -> Result<Vault, VaultError> {
    use secret_service::SecretStore;
    let name = StoreName::SecretService;
    let unusable = |detail: String| VaultError::Unusable {
        store: name,
        detail,
    };
    let opening = async {
        let store = SecretStore::connect_checked(SERVICE, &probe_name(&options.account))
            .await
            .map_err(unusable)?;
        let record = match store.get(SERVICE, &options.account).await {
            Ok(Some(secret)) => Record::decode(&secret),
            Ok(None) => Record::default(),
            Err(e) => return Err(unusable(format!("cannot read the stored token: {e}"))),
        };
        Ok((store, record))
    };
    let (store, record) = tokio::time::timeout(OPEN_LIMIT, opening)
        .await
        .map_err(|_| VaultError::TimedOut)??;
    log_opened(options.kind, name, &record);
    let (jobs, inbox) = tokio::sync::mpsc::unbounded_channel();
    drop(tokio::spawn(secret_service_task(
        store,
        options.account,
        inbox,
    )));
    Ok(Vault {
        mirror: Arc::new(Mutex::new(record)),
        credential: None,
        store: name,
        jobs: Some(JobSender::Task(jobs)),
    })
}

/// Owns the Secret Service connection and runs the vault's jobs on it, one at a
/// time, in order. Ends when the last handle is dropped.
#[cfg(target_os = "linux")]
async fn secret_service_task(
    store: secret_service::SecretStore,
    account: String,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Job>,
) {
    let failed = |e: secret_service::SecretServiceError| WriteError::Keyring(e.to_string());
    while let Some(job) = inbox.recv().await {
        match job {
            Job::Write(secret, reply) => {
                let written = store.set(SERVICE, &account, secret.as_bytes()).await;
                let _ = reply.send(written.map_err(failed));
            }
            Job::Delete(reply) => {
                let _ = reply.send(store.delete(SERVICE, &account).await.map_err(failed));
            }
            Job::ReadOther(other, reply) => {
                let _ = reply.send(store.get(SERVICE, &other).await.map_err(failed));
            }
            Job::WriteOther(other, secret, reply) => {
                let written = store.set(SERVICE, &other, secret.as_bytes()).await;
                let _ = reply.send(written.map_err(failed));
            }
        }
    }
}

/// The name of the probe entry written to check a store (unique per process).
fn probe_name(account: &str) -> String {
    format!("rcimd-probe-{}-{}", std::process::id(), account.len())
}

/// Starts a vault thread running `body`, and waits for it to open its store.
async fn start_thread(
    body: impl FnOnce(oneshot::Sender<Opened>, mpsc::Receiver<Job>) + Send + 'static,
) -> Result<Vault, VaultError> {
    let (opened, answer) = oneshot::channel();
    let (jobs, inbox) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("rcimd-vault".into())
        .spawn(move || body(opened, inbox));
    if let Err(e) = spawned {
        return Err(VaultError::NoneWorks {
            tried: format!("cannot start the vault thread: {e}"),
        });
    }
    let (store, record) = match tokio::time::timeout(OPEN_LIMIT, answer).await {
        Err(_) => return Err(VaultError::TimedOut),
        Ok(Err(_)) => {
            return Err(VaultError::NoneWorks {
                tried: "the vault thread ended early".into(),
            });
        }
        Ok(Ok(result)) => result?,
    };
    Ok(Vault {
        mirror: Arc::new(Mutex::new(record)),
        credential: None,
        store,
        jobs: Some(JobSender::Thread(jobs)),
    })
}

type Opened = Result<(StoreName, Record), VaultError>;

/// The vault thread of a blocking store: opens it with `open` (which checks that
/// it works), reads the entry, and owns both, so no keyring call ever runs on a
/// tokio worker. Ends when the last handle is dropped.
fn keyring_thread(
    options: VaultOptions,
    opened: oneshot::Sender<Opened>,
    inbox: mpsc::Receiver<Job>,
    open: impl FnOnce() -> Result<(StoreName, Arc<keyring_core::CredentialStore>), VaultError>,
) {
    let chosen =
        open().and_then(|(name, store)| {
            let entry = keyring_core::Entry::new_in_store(&store, SERVICE, &options.account)
                .map_err(|e| VaultError::Unusable {
                    store: name,
                    detail: e.to_string(),
                })?;
            let record = match entry.get_secret() {
                Ok(secret) => Record::decode(&Zeroizing::new(secret)),
                Err(keyring_core::Error::NoEntry) => Record::default(),
                Err(e) => {
                    return Err(VaultError::Unusable {
                        store: name,
                        detail: format!("cannot read the stored token: {e}"),
                    });
                }
            };
            Ok((name, store, entry, record))
        });
    let (store, entry) = match chosen {
        Ok((name, store, entry, record)) => {
            log_opened(options.kind, name, &record);
            if opened.send(Ok((name, record))).is_err() {
                return;
            }
            (store, entry)
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    for job in inbox {
        match job {
            Job::Write(secret, reply) => {
                let _ = reply.send(
                    entry
                        .set_secret(secret.as_bytes())
                        .map_err(WriteError::from),
                );
            }
            Job::Delete(reply) => {
                let result = match entry.delete_credential() {
                    Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                    Err(e) => Err(WriteError::from(e)),
                };
                let _ = reply.send(result);
            }
            Job::ReadOther(account, reply) => {
                let read = keyring_core::Entry::new_in_store(&store, SERVICE, &account)
                    .and_then(|other| other.get_secret());
                let _ = reply.send(match read {
                    Ok(secret) => Ok(Some(Zeroizing::new(secret))),
                    Err(keyring_core::Error::NoEntry) => Ok(None),
                    Err(e) => Err(WriteError::from(e)),
                });
            }
            Job::WriteOther(account, secret, reply) => {
                let written = keyring_core::Entry::new_in_store(&store, SERVICE, &account)
                    .and_then(|other| other.set_secret(secret.as_bytes()));
                let _ = reply.send(written.map_err(WriteError::from));
            }
        }
    }
}

/// Checks that `name` works by writing, reading back and deleting a probe entry
/// (its name made from `account`); returns the store. Blocking.
pub fn check(
    name: StoreName,
    account: &str,
) -> Result<Arc<keyring_core::CredentialStore>, StoreCheckError> {
    let store = os_store(name).map_err(StoreCheckError::Open)?;
    let probe_user = probe_name(account);
    let probe = keyring_core::Entry::new_in_store(&store, SERVICE, &probe_user)
        .map_err(StoreCheckError::Open)?;
    probe.set_secret(b"probe").map_err(StoreCheckError::Write)?;
    let read = probe.get_secret().map_err(StoreCheckError::ReadBack);
    let _ = probe.delete_credential();
    if read? != b"probe" {
        return Err(StoreCheckError::Differs);
    }
    Ok(store)
}

/// Why an OS store failed the probe of [`check`]; `rcimctl doctor` shows the
/// message after "does not work:". Each message carries the keyring's own text
/// (no separate `source`). The only secret involved is the probe's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreCheckError {
    /// The store, or an entry in it, could not be opened.
    #[error("{0}")]
    Open(keyring_core::Error),
    /// The probe could not be written.
    #[error("cannot write: {0}")]
    Write(keyring_core::Error),
    /// The probe could not be read back.
    #[error("cannot read back: {0}")]
    ReadBack(keyring_core::Error),
    /// The probe read back is not what was written.
    #[error("what was read back differs from what was written")]
    Differs,
    /// The Secret Service failed, in its own words.
    #[error("{0}")]
    Service(String),
}

/// Builds the OS store `name`. Blocking.
fn os_store(name: StoreName) -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let unsupported = || {
        Err(keyring_core::Error::NotSupportedByStore(format!(
            "{name} is not built into this rcimd"
        )))
    };
    match name {
        #[cfg(target_os = "linux")]
        StoreName::Keyutils => {
            let store: Arc<keyring_core::CredentialStore> =
                linux_keyutils_keyring_store::Store::new()?;
            Ok(store)
        }
        #[cfg(target_os = "macos")]
        StoreName::Keychain => {
            let store: Arc<keyring_core::CredentialStore> =
                apple_native_keyring_store::keychain::Store::new()?;
            Ok(store)
        }
        #[cfg(windows)]
        StoreName::CredentialManager => {
            let store: Arc<keyring_core::CredentialStore> =
                windows_native_keyring_store::Store::new()?;
            Ok(store)
        }
        _ => unsupported(),
    }
}

/// A vault on keyring-core's in-memory mock keyring, which keeps keys like an OS
/// store does (until the vault is dropped). For the store's unit tests; the
/// e2e tests use the real stores.
#[cfg(test)]
pub(crate) async fn mock() -> Vault {
    let options = VaultOptions {
        kind: TokenStoreKind::Keyutils,
        account: "app@test".into(),
        credential: None,
    };
    let store: Arc<keyring_core::CredentialStore> =
        keyring_core::mock::Store::new().expect("the mock store");
    start_thread(move |opened, inbox| {
        keyring_thread(options, opened, inbox, move || {
            Ok((StoreName::Keyutils, store))
        })
    })
    .await
    .expect("the mock vault opens")
}

/// Which OS stores work here, as `rcimd --check-token-stores` reports them for
/// `rcimctl doctor`. Blocking: run it where no tokio runtime is current.
pub fn check_all() -> Vec<(StoreName, Result<(), StoreCheckError>)> {
    let account = format!("rcimd-check-{}", std::process::id());
    StoreName::candidates()
        .iter()
        .map(|&name| {
            let result = match name {
                #[cfg(target_os = "linux")]
                StoreName::SecretService => check_secret_service(&account),
                _ => check(name, &account).map(drop),
            };
            (name, result)
        })
        .collect()
}

/// [`check`] for the Secret Service, on a runtime of its own for the length of
/// the probe (this runs where no runtime is current). Blocking.
#[cfg(target_os = "linux")]
fn check_secret_service(account: &str) -> Result<(), StoreCheckError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreCheckError::Service(format!("cannot start a runtime: {e}")))?;
    runtime.block_on(async {
        let probe_entry = probe_name(account);
        let probe = secret_service::SecretStore::connect_checked(SERVICE, &probe_entry);
        match tokio::time::timeout(OPEN_LIMIT, probe).await {
            Ok(checked) => checked.map(drop).map_err(StoreCheckError::Service),
            Err(_) => Err(StoreCheckError::Service(format!(
                "no answer within {OPEN_LIMIT:?}"
            ))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyring that never answers (a hung D-Bus) holds a write up for
    /// [`WRITE_WAIT`] and no longer: the link, which waits on it, goes on, and the
    /// token is in the mirror at once.
    #[tokio::test(start_paused = true)]
    async fn a_keyring_that_does_not_answer_holds_a_write_up_for_write_wait_only() {
        let (jobs, hung) = mpsc::channel::<Job>();
        let vault = Vault {
            mirror: Arc::new(Mutex::new(Record {
                token: None,
                rejected: false,
            })),
            credential: None,
            store: StoreName::SecretService,
            jobs: Some(JobSender::Thread(jobs)),
        };
        let gave_up = |limit| async move {
            // Without the limit the write would wait for ever: fail, do not hang.
            tokio::time::sleep(10 * limit).await;
            panic!("the write did not give up waiting");
        };
        let started = tokio::time::Instant::now();
        tokio::select! {
            () = vault.save(Token::new("tok.en")) => {}
            () = gave_up(WRITE_WAIT) => {}
        }
        assert_eq!(started.elapsed(), WRITE_WAIT);
        assert_eq!(vault.usable_token().await, Some(Token::new("tok.en")));
        let started = tokio::time::Instant::now();
        tokio::select! {
            () = vault.mark_rejected() => {}
            () = gave_up(WRITE_WAIT) => {}
        }
        assert_eq!(started.elapsed(), WRITE_WAIT);
        assert!(vault.usable_token().await.is_none());
        // Both writes reached the vault thread, in order, and wait there.
        let queued: Vec<bool> = hung
            .try_iter()
            .map(|job| matches!(job, Job::Write(..)))
            .collect();
        assert_eq!(queued, [true, true]);
    }

    #[tokio::test]
    async fn rejection_holds_until_a_new_token() {
        let vault = Vault::memory();
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

    #[test]
    fn the_secret_says_whether_the_token_was_rejected() {
        for rejected in [false, true] {
            let record = Record {
                token: Some(Token::new("tok.en")),
                rejected,
            };
            let secret = record.encode().expect("a token");
            let back = Record::decode(secret.as_bytes());
            assert_eq!(back.token, Some(Token::new("tok.en")));
            assert_eq!(back.rejected, rejected);
        }
        let by_hand = Record::decode(b"plain-token\n");
        assert_eq!(by_hand.token, Some(Token::new("plain-token")));
        assert!(!by_hand.rejected);
        assert!(Record::decode(b"").token.is_none());
        assert!(Record::decode(&[0xff, 0xfe]).token.is_none());
    }

    #[tokio::test]
    async fn the_credential_is_used_when_the_store_has_nothing_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CREDENTIAL_NAME);
        std::fs::write(&path, "from-credential\n").unwrap();
        let options = VaultOptions {
            kind: TokenStoreKind::Memory,
            account: "k@rcim://h:1".into(),
            credential: Some(path),
        };
        let vault = Vault::open(options).await.unwrap();
        assert_eq!(vault.store(), StoreName::Memory);
        assert_eq!(
            vault.usable_token().await,
            Some(Token::new("from-credential"))
        );
        // The link saves the token it boots with; the server then rejects it.
        vault.save(Token::new("from-credential")).await;
        vault.mark_rejected().await;
        assert!(vault.usable_token().await.is_none(), "rejected credential");
        // A newer token from an app wins.
        vault.save(Token::new("newer")).await;
        assert_eq!(vault.usable_token().await, Some(Token::new("newer")));
        // A rejected stored token that is not the credential falls back to it.
        vault.mark_rejected().await;
        assert_eq!(
            vault.usable_token().await,
            Some(Token::new("from-credential"))
        );
    }

    #[tokio::test]
    async fn an_empty_credential_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CREDENTIAL_NAME);
        std::fs::write(&path, " \n").unwrap();
        let options = VaultOptions {
            kind: TokenStoreKind::Memory,
            account: "k@rcim://h:1".into(),
            credential: Some(path),
        };
        let err = Vault::open(options).await.unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    /// The round trip against a real Secret Service: `.ci/run` runs this under
    /// `dbus-run-session` with an unlocked gnome-keyring. Elsewhere it skips.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn secret_service_round_trip() {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            eprintln!("skipped: no session D-Bus (DBUS_SESSION_BUS_ADDRESS is unset)");
            return;
        }
        round_trip(TokenStoreKind::SecretService, StoreName::SecretService).await;
    }

    /// The round trip against the kernel keyring: `.ci/run` runs this under
    /// `keyctl session -`. Elsewhere it skips.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyutils_round_trip() {
        if std::env::var_os("RCIM_TEST_KEYUTILS").is_none() {
            eprintln!(
                "skipped: set RCIM_TEST_KEYUTILS=1 and run under `keyctl session -` to test the kernel keyring"
            );
            return;
        }
        round_trip(TokenStoreKind::Keyutils, StoreName::Keyutils).await;
    }

    async fn round_trip(kind: TokenStoreKind, expect: StoreName) {
        let account = format!("test-{}@rcim://round-trip:{}", kind, std::process::id());
        let options = VaultOptions {
            kind,
            account: account.clone(),
            credential: None,
        };
        let vault = Vault::open(options.clone()).await.unwrap();
        assert_eq!(vault.store(), expect);
        assert!(vault.usable_token().await.is_none(), "fresh entry");
        vault.save(Token::new("round-trip-token")).await;
        drop(vault);

        // A second open (as after a restart) reads it back.
        let vault = Vault::open(options.clone()).await.unwrap();
        assert_eq!(
            vault.usable_token().await,
            Some(Token::new("round-trip-token"))
        );
        vault.mark_rejected().await;
        drop(vault);

        let vault = Vault::open(options.clone()).await.unwrap();
        assert!(
            vault.usable_token().await.is_none(),
            "the rejection survives a restart"
        );
        vault.delete().await;
        drop(vault);

        let vault = Vault::open(options).await.unwrap();
        assert!(vault.usable_token().await.is_none());
        let record = vault.lock();
        assert!(record.token.is_none(), "deleted");
    }
}
