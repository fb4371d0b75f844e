//! A throw-away certificate authority for TLS tests (cargo feature `testca`).
//!
//! [`TestCa::new`] makes a fresh CA key and self-signed CA certificate with rcgen;
//! [`TestCa::leaf`] issues server certificates signed by it; [`TestCa::write_files`]
//! writes the CA certificate and a leaf for `localhost`, `127.0.0.1` and `::1` as
//! PEM files, ready for `--tls-cert`/`--tls-key` and for a client's CA file;
//! [`TestCa::client_config`] is a rustls client configuration (ring provider) that
//! trusts this CA only. Everything is generated at run time and lives only as long
//! as the test needs it. Not for production: the keys are never protected.
//!
//! Functions panic on failure: generating keys and certificates for fixed, valid
//! inputs cannot fail short of a broken crypto library, and test fixtures should
//! stop loudly.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A test certificate authority.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// A fresh CA (ECDSA P-256 key, self-signed, unconstrained).
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("generate the test CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("test CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "rcim test CA");
        let cert = params.self_signed(&key).expect("self-sign the test CA");
        Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses) signed by this CA:
    /// `(certificate PEM, private key PEM)`.
    pub fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("generate a test leaf key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("test leaf names");
        params
            .distinguished_name
            .push(DnType::CommonName, "rcim test server");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a test leaf");
        (cert.pem(), key.serialize_pem())
    }

    /// Writes `ca.pem`, and `server.pem` + `server.key` (a leaf for `localhost`,
    /// `127.0.0.1` and `::1`) into `dir`; returns `(ca, cert, key)` paths.
    pub fn write_files(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (cert_pem, key_pem) = self.leaf(&["localhost", "127.0.0.1", "::1"]);
        let ca = dir.join("ca.pem");
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        for (path, text) in [(&ca, &self.ca_pem), (&cert, &cert_pem), (&key, &key_pem)] {
            std::fs::write(path, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        (ca, cert, key)
    }

    /// A rustls client configuration (ring provider, safe defaults) that trusts
    /// this CA and nothing else.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("parse the CA");
        roots.add(ca).expect("trust the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_chain_rustls_accepts() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let (ca_path, cert, key) = ca.write_files(dir.path());
        assert!(
            std::fs::read_to_string(ca_path)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let files = crate::config::TlsFiles { cert, key };
        assert!(crate::tls::server_config(&files).is_ok());
        let _ = ca.client_config();
    }
}
