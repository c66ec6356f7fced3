//! The directory server's TLS settings, made from the [`TlsFiles`] of `whisk-directory-api`
//! (re-exported here): it presents its certificate, signed by the project's CA, and accepts
//! only clients whose certificate that CA signed for client authentication (the invokers';
//! `whisk certs --client NAME`). A client without one fails the TLS handshake.

use tonic::transport::ServerTlsConfig;

use crate::error::DirectoryError;
pub use whisk_directory_api::tls::{TlsFiles, HANDSHAKE_TIMEOUT};

/// Server settings: the certificate of `tls`, and client certificates required (signed by
/// its CA).
pub fn server_config(tls: &TlsFiles) -> Result<ServerTlsConfig, DirectoryError> {
    Ok(ServerTlsConfig::new()
        .identity(tls.identity()?)
        .client_ca_root(tls.ca_certificate()?)
        .client_auth_optional(false)
        .timeout(HANDSHAKE_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn unreadable_files_are_a_settings_error() {
        let p = Path::new("/a");
        let f = TlsFiles::from_parts("x", Some(p), Some(p), Some(p))
            .unwrap()
            .unwrap();
        let e = server_config(&f).unwrap_err();
        assert!(matches!(e, DirectoryError::Config(_)), "{e}");
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
