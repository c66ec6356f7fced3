//! Certificates with rcgen (no openssl needed): a private CA ([`generate_ca`]), server
//! certificates it signs for named hosts and IP addresses ([`issue_server_cert`]), client
//! certificates for the platform's own services ([`issue_client_cert`]: invokers talking to the
//! directory), written as PEM files; [`write_bundle`] does the CA and a server certificate into
//! one folder with the names the `certs/` scripts, the gateway's defaults and the private
//! registry use, [`write_named`] adds more:
//!
//! | file | content |
//! |---|---|
//! | `ca.crt` / `ca.key` | the CA (trust `ca.crt` with `--cacert`, in `/etc/docker/certs.d/...`) |
//! | `domain.crt` / `domain.key` | server certificate chain (server, then CA) and its key |
//! | `<name>.crt` / `<name>.key` | another server's (`directory`) or a client's (`invoker0`) |
//! | `peers.key` | the cluster's peer key ([`write_peer_key`]; invokers derive group secrets) |
//!
//! Keys are ECDSA P-256; private key files are written with mode 0600.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// What can go wrong making or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or the input.
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bad input (no hosts, bad validity).
    #[error("{0}")]
    Invalid(String),
}

/// A certificate authority: its certificate and private key in PEM.
pub struct CertAuthority {
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// The CA certificate (PEM): what clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM, PKCS#8).
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Reads a CA written by [`CertAuthority::write`] (or any PEM CA certificate and key).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, CertError> {
        let cert_pem = read(cert_path)?;
        let key = KeyPair::from_pem(&read(key_path)?)?;
        // Fails early when the files do not hold a usable CA.
        Issuer::from_ca_cert_pem(&cert_pem, &key)?;
        Ok(Self { cert_pem, key })
    }

    /// Writes the certificate and key (the key with mode 0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_file(cert_path, self.cert_pem.as_bytes(), false)?;
        write_file(key_path, self.key_pem().as_bytes(), true)
    }
}

/// A server certificate signed by a [`CertAuthority`].
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The server certificate (PEM).
    pub cert_pem: String,
    /// The CA certificate that signed it (PEM).
    pub ca_pem: String,
    /// The private key (PEM, PKCS#8).
    pub key_pem: String,
}

impl ServerCert {
    /// Server certificate then CA certificate: what a server presents.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.ca_pem)
    }

    /// Writes the chain and the key (the key with mode 0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_file(cert_path, self.chain_pem().as_bytes(), false)?;
        write_file(key_path, self.key_pem.as_bytes(), true)
    }
}

fn validity(days: u32) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    if days == 0 || days > 36_500 {
        return Err(CertError::Invalid(format!(
            "validity of {days} days (1..=36500)"
        )));
    }
    let now = OffsetDateTime::now_utc();
    // A little back-dating tolerates clocks that are slightly behind.
    Ok((
        now - Duration::hours(1),
        now + Duration::days(i64::from(days)),
    ))
}

/// A new CA named `common_name`, valid for `days`.
pub fn generate_ca(common_name: &str, days: u32) -> Result<CertAuthority, CertError> {
    let mut params = CertificateParams::default();
    let (not_before, not_after) = validity(days)?;
    params.not_before = not_before;
    params.not_after = not_after;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "whisk-rs");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CertAuthority {
        cert_pem: cert.pem(),
        key,
    })
}

/// A server certificate for `hosts` (DNS names or IP addresses; the first is also the common
/// name), signed by `ca`, valid for `days`.
pub fn issue_server_cert(
    ca: &CertAuthority,
    hosts: &[String],
    days: u32,
) -> Result<ServerCert, CertError> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    let Some(first) = hosts.first().cloned() else {
        return Err(CertError::Invalid("no host names given".into()));
    };
    let mut params = CertificateParams::new(hosts)?;
    let (not_before, not_after) = validity(days)?;
    params.not_before = not_before;
    params.not_after = not_after;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca.key)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ServerCert {
        cert_pem: cert.pem(),
        ca_pem: ca.cert_pem.clone(),
        key_pem: key.serialize_pem(),
    })
}

/// A client certificate named `name` (its common name), signed by `ca`, valid for `days`:
/// for client authentication only, so it cannot serve, and a server certificate cannot act as
/// a client.
pub fn issue_client_cert(
    ca: &CertAuthority,
    name: &str,
    days: u32,
) -> Result<ServerCert, CertError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CertError::Invalid("no client name given".into()));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let (not_before, not_after) = validity(days)?;
    params.not_before = not_before;
    params.not_after = not_after;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "whisk-rs");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca.key)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(ServerCert {
        cert_pem: cert.pem(),
        ca_pem: ca.cert_pem.clone(),
        key_pem: key.serialize_pem(),
    })
}

/// What [`write_named`] issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server certificate for the given hosts.
    Server,
    /// A client certificate (no hosts).
    Client,
}

/// Issues `<dir>/<name>.crt` and `<dir>/<name>.key` with the CA of `dir` (made, named
/// `ca_name`, when `dir` has none): a server certificate for `hosts`, or a client certificate.
pub fn write_named(
    dir: &Path,
    ca_name: &str,
    name: &str,
    role: Role,
    hosts: &[String],
    days: u32,
) -> Result<(PathBuf, PathBuf), CertError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) || name == "ca" {
        return Err(CertError::Invalid(format!(
            "certificate name {name:?}: a plain file name other than \"ca\" is needed"
        )));
    }
    let ca = load_or_make_ca(dir, ca_name, days)?;
    let cert = match role {
        Role::Server => issue_server_cert(&ca, hosts, days)?,
        Role::Client => issue_client_cert(&ca, name, days)?,
    };
    let paths = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    cert.write(&paths.0, &paths.1)?;
    Ok(paths)
}

/// Makes `<dir>/peers.key` (64 random hex digits, mode 0600) unless it exists: the cluster's
/// peer key, the same file for every invoker (`invoker.peer_key_file`). Returns its path.
pub fn write_peer_key(dir: &Path) -> Result<PathBuf, CertError> {
    create_dir(dir)?;
    let path = dir.join("peers.key");
    if path.exists() {
        return Ok(path);
    }
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_file(&path, format!("{hex}\n").as_bytes(), true)?;
    Ok(path)
}

fn create_dir(dir: &Path) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn load_or_make_ca(dir: &Path, ca_name: &str, days: u32) -> Result<CertAuthority, CertError> {
    create_dir(dir)?;
    let paths = BundlePaths::in_dir(dir);
    if paths.ca_cert.exists() && paths.ca_key.exists() {
        CertAuthority::load(&paths.ca_cert, &paths.ca_key)
    } else {
        let ca = generate_ca(ca_name, days.max(3650))?;
        ca.write(&paths.ca_cert, &paths.ca_key)?;
        Ok(ca)
    }
}

/// The files of a bundle in `dir` (see the module documentation).
#[derive(Debug, Clone)]
pub struct BundlePaths {
    /// `ca.crt`.
    pub ca_cert: PathBuf,
    /// `ca.key`.
    pub ca_key: PathBuf,
    /// `domain.crt`.
    pub cert: PathBuf,
    /// `domain.key`.
    pub key: PathBuf,
}

impl BundlePaths {
    /// The file names inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            cert: dir.join("domain.crt"),
            key: dir.join("domain.key"),
        }
    }
}

/// Makes `dir` hold a CA and a server certificate for `hosts`: the CA in `dir` is reused when
/// there is one (so clients that trust it keep working), else one named `ca_name` is made; the
/// server certificate is always issued anew.
pub fn write_bundle(
    dir: &Path,
    ca_name: &str,
    hosts: &[String],
    days: u32,
) -> Result<BundlePaths, CertError> {
    let paths = BundlePaths::in_dir(dir);
    let ca = load_or_make_ca(dir, ca_name, days)?;
    issue_server_cert(&ca, hosts, days)?.write(&paths.cert, &paths.key)?;
    Ok(paths)
}

fn read(path: &Path) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| CertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes through a temporary file and a rename, so that a reader (a reload) never sees half a
/// file.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(data).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_reuses_ca() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let p = write_bundle(dir.path(), "test CA", &hosts, 30).unwrap();
        let ca1 = std::fs::read_to_string(&p.ca_cert).unwrap();
        let cert1 = std::fs::read_to_string(&p.cert).unwrap();
        assert_eq!(cert1.matches("BEGIN CERTIFICATE").count(), 2);
        write_bundle(dir.path(), "test CA", &hosts, 30).unwrap();
        assert_eq!(std::fs::read_to_string(&p.ca_cert).unwrap(), ca1);
        assert_ne!(std::fs::read_to_string(&p.cert).unwrap(), cert1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(issue_server_cert(&generate_ca("x", 1).unwrap(), &[], 1).is_err());

        // Client and named server certificates with the same CA; the peer key made once.
        let (crt, key) =
            write_named(dir.path(), "test CA", "invoker0", Role::Client, &[], 30).unwrap();
        assert!(std::fs::read_to_string(&crt)
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert!(key.ends_with("invoker0.key"));
        let (crt, _) =
            write_named(dir.path(), "test CA", "directory", Role::Server, &hosts, 30).unwrap();
        assert!(crt.ends_with("directory.crt"));
        assert_eq!(
            std::fs::read_to_string(&p.ca_cert).unwrap(),
            ca1,
            "the CA is kept"
        );
        for bad in ["", "ca", "../x", ".hidden", "a/b"] {
            assert!(
                write_named(dir.path(), "x", bad, Role::Client, &[], 30).is_err(),
                "{bad}"
            );
        }
        let pk = write_peer_key(dir.path()).unwrap();
        let first = std::fs::read_to_string(&pk).unwrap();
        assert_eq!(first.trim().len(), 64);
        assert_eq!(write_peer_key(dir.path()).unwrap(), pk);
        assert_eq!(
            std::fs::read_to_string(&pk).unwrap(),
            first,
            "kept, not replaced"
        );
        assert!(generate_ca("x", 0).is_err());
    }
}
