//! The IM endpoint's TLS identity: loading the PEM certificate chain and private key
//! named in [`TlsFiles`] into a rustls server configuration.
//!
//! rustls with the *ring* provider (no cmake, no aws-lc), TLS 1.2 and 1.3, no client
//! certificates. Every failure is a startup error that names the file and what is
//! wrong with it (unreadable, no certificate or key inside, a key that does not
//! belong to the certificate), so a misconfigured server never starts half-working.

use crate::config::TlsFiles;
use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Loads `files` into a rustls server configuration. Blocking (reads two files).
pub(crate) fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_path = files.cert.display();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the TLS certificate file {cert_path}"))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "the TLS certificate file {cert_path} contains no PEM certificate"
    );
    let key_path = files.key.display();
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!("cannot read a PEM private key from the TLS key file {key_path}")
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("the TLS key {key_path} is not usable with the certificate {cert_path}")
        })?;
    Ok(Arc::new(config))
}
