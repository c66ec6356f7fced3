//! [`EmbeddedHealth`]: the embedded store's probe for `whisk status` — its file exists, can be
//! read, and starts as a redb database does. Only reads the first bytes: it does not open the
//! database, which the server holds locked.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use whisk_core::health::{Checked, Health};

/// The first bytes of every redb database file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Probes the embedded store's file.
#[derive(Debug, Clone)]
pub struct EmbeddedHealth {
    path: PathBuf,
}

impl EmbeddedHealth {
    /// The store in the file at `path` (`<data dir>/whisk.redb`).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }
}

#[async_trait]
impl Health for EmbeddedHealth {
    fn name(&self) -> &str {
        "store"
    }

    fn address(&self) -> String {
        self.path.display().to_string()
    }

    async fn check(&self) -> Checked {
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", self.path.display());
        let mut file = tokio::fs::File::open(&self.path).await.map_err(cannot)?;
        let len = file.metadata().await.map_err(cannot)?.len();
        let mut head = [0u8; REDB_MAGIC.len()];
        match file.read_exact(&mut head).await {
            Ok(_) if head == REDB_MAGIC => Ok(format!("redb file, {}", size(len))),
            Ok(_) => Err(format!("{} is not a redb database", self.path.display())),
            Err(e) => Err(cannot(e)),
        }
    }
}

/// `len` bytes for people: `812 kB`, `3.4 MB`.
fn size(len: u64) -> String {
    match len {
        0..1_000 => format!("{len} B"),
        1_000..1_000_000 => format!("{} kB", len / 1_000),
        _ => format!("{:.1} MB", len as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmbeddedStore;

    #[tokio::test]
    async fn a_store_file_is_healthy_anything_else_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whisk.redb");
        let probe = EmbeddedHealth::new(&path);
        let missing = probe.check().await.unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let store = EmbeddedStore::open(&path).unwrap();
        // Readable while the store holds it open.
        let up = probe.check().await.unwrap();
        assert!(up.starts_with("redb file, "), "{up}");
        drop(store);
        std::fs::write(&path, b"not a database").unwrap();
        let other = probe.check().await.unwrap_err();
        assert!(other.contains("not a redb database"), "{other}");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(3_400_000), "3.4 MB");
    }
}
