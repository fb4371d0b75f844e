//! The IM endpoint's TLS identity: loading the PEM certificate chain and private key
//! named in [`TlsFiles`] into a rustls server configuration.
//!
//! rustls with the *ring* provider (no cmake, no aws-lc), TLS 1.2 and 1.3, no client
//! certificates. Every failure is a startup error ([`TlsError`]) that names the file
//! and what is wrong with it (unreadable, no certificate or key inside, a key that
//! does not belong to the certificate), so a misconfigured server never starts
//! half-working.

use crate::config::TlsFiles;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// Why the IM endpoint's certificate or key cannot be used. Each message names the
/// file and ends with the underlying cause, so it is complete on its own line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file cannot be read or is not PEM.
    #[error("cannot read the TLS certificate file {}: {cause}", .path.display())]
    ReadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What went wrong.
        cause: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("the TLS certificate file {} contains no PEM certificate", .path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file cannot be read or holds no PEM private key.
    #[error("cannot read a PEM private key from the TLS key file {}: {cause}", .path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// What went wrong.
        cause: pem::Error,
    },
    /// The crypto provider offers none of the default protocol versions.
    #[error("the TLS provider supports no protocol version: {0}")]
    NoProtocolVersion(rustls::Error),
    /// The key does not belong to the certificate (or rustls cannot use either).
    #[error(
        "the TLS key {} is not usable with the certificate {}: {cause}",
        .key.display(),
        .cert.display()
    )]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
        /// What rustls said.
        cause: rustls::Error,
    },
}

/// Loads `files` into a rustls server configuration. Blocking (reads two files).
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|cause| TlsError::ReadCertificate {
            path: files.cert.clone(),
            cause,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|cause| TlsError::ReadKey {
        path: files.key.clone(),
        cause,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::NoProtocolVersion)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|cause| TlsError::KeyMismatch {
            key: files.key.clone(),
            cert: files.cert.clone(),
            cause,
        })?;
    Ok(Arc::new(config))
}
