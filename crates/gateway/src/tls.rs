//! TLS termination: [`CertReloader`] is a rustls [`ResolvesServerCert`] whose certificate can be
//! swapped while the gateway runs (SIGHUP calls [`CertReloader::reload`]): connections already
//! open keep the certificate they were made with, new handshakes get the new one, and a reload
//! that fails keeps the old certificate. [`server_config`] builds the rustls configuration.

use crate::error::GatewayError;
use parking_lot::RwLock;
use rustls::crypto::ring;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate of the HTTPS listener, reloadable from its files.
#[derive(Debug)]
pub struct CertReloader {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertReloader {
    /// Loads the certificate chain and key from PEM files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, GatewayError> {
        let key = load_certified_key(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Reads the files again; on success new handshakes use the new certificate, on failure
    /// the old one stays.
    pub fn reload(&self) -> Result<(), GatewayError> {
        let key = load_certified_key(&self.cert_path, &self.key_path)?;
        *self.current.write() = Arc::new(key);
        tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// The certificate chain served now (DER, server certificate first).
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().cert.clone()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, GatewayError> {
    let cert_err = |message: String| GatewayError::Tls {
        what: "certificate",
        path: cert_path.to_path_buf(),
        message,
    };
    let key_err = |message: String| GatewayError::Tls {
        what: "key",
        path: key_path.to_path_buf(),
        message,
    };
    let cert_pem = std::fs::read(cert_path).map_err(|e| cert_err(e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let key_pem = std::fs::read(key_path).map_err(|e| key_err(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(e.to_string()))?;
    let signing_key = ring::sign::any_supported_type(&key).map_err(|e| key_err(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| key_err(format!("does not match the certificate: {e}")))?;
    Ok(certified)
}

/// The rustls configuration of the HTTPS listener: TLS 1.2 and 1.3, no client certificates,
/// ALPN `h2` (when `http2`) and `http/1.1`, session tickets for resumption.
pub fn server_config(
    resolver: Arc<CertReloader>,
    http2: bool,
) -> Result<Arc<ServerConfig>, GatewayError> {
    let provider = Arc::new(ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.ticketer =
        ring::Ticketer::new().map_err(|e| GatewayError::Config(format!("TLS tickets: {e}")))?;
    Ok(Arc::new(config))
}
