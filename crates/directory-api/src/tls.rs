//! [`TlsFiles`]: the CA, certificate and key (PEM files, as `whisk certs` writes them) of a
//! directory server or of one of its clients, and the client's tonic TLS settings made from
//! them (the server's are made in `whisk-directory`, from [`TlsFiles::identity`] and
//! [`TlsFiles::ca_certificate`]).
//!
//! Both sides authenticate: the server presents a certificate signed by the project's CA and
//! accepts only clients whose certificate that CA signed for client authentication (the
//! invokers'; `whisk certs --client NAME`). A client without one fails the TLS handshake.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::DirectoryError;

/// Longest TLS handshake either side waits for.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// PEM files of one side of a directory connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the other side's certificate (`ca.crt`).
    pub ca: PathBuf,
    /// This side's certificate (chain).
    pub cert: PathBuf,
    /// This side's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// All three, or none; one or two of them is a configuration error naming what is missing.
    pub fn from_parts(
        what: &str,
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Option<TlsFiles>, DirectoryError> {
        match (ca, cert, key) {
            (None, None, None) => Ok(None),
            (Some(ca), Some(cert), Some(key)) => Ok(Some(TlsFiles {
                ca: ca.to_path_buf(),
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            })),
            _ => Err(DirectoryError::Config(format!(
                "{what}: TLS needs a CA, a certificate and a key together \
                 (given: CA {}, certificate {}, key {})",
                given(ca),
                given(cert),
                given(key)
            ))),
        }
    }

    fn read(path: &Path, what: &str) -> Result<Vec<u8>, DirectoryError> {
        std::fs::read(path).map_err(|e| {
            DirectoryError::Config(format!("cannot read the {what} {}: {e}", path.display()))
        })
    }

    /// This side's certificate and key, read from their files.
    pub fn identity(&self) -> Result<Identity, DirectoryError> {
        Ok(Identity::from_pem(
            Self::read(&self.cert, "certificate")?,
            Self::read(&self.key, "private key")?,
        ))
    }

    /// The CA certificate, read from its file.
    pub fn ca_certificate(&self) -> Result<Certificate, DirectoryError> {
        Ok(Certificate::from_pem(Self::read(
            &self.ca,
            "CA certificate",
        )?))
    }

    /// Client settings: trust `ca` for a server named `domain`, present this certificate.
    pub fn client_config(&self, domain: &str) -> Result<ClientTlsConfig, DirectoryError> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(self.ca_certificate()?)
            .identity(self.identity()?)
            .domain_name(domain)
            .timeout(HANDSHAKE_TIMEOUT))
    }
}

fn given(p: Option<&Path>) -> String {
    p.map_or_else(|| "missing".to_string(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_none() {
        assert_eq!(TlsFiles::from_parts("x", None, None, None).unwrap(), None);
        let p = Path::new("/a");
        assert!(TlsFiles::from_parts("x", Some(p), Some(p), Some(p))
            .unwrap()
            .is_some());
        let e = TlsFiles::from_parts("directory", Some(p), None, Some(p)).unwrap_err();
        assert!(e.to_string().contains("certificate missing"), "{e}");
        let f = TlsFiles::from_parts("x", Some(p), Some(p), Some(p))
            .unwrap()
            .unwrap();
        let e = f.client_config("directory").unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
