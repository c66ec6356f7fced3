//! Puts an action's code on disk for the launcher: source text goes to
//! `<dir>/__main__.py` or `<dir>/index.js`; a binary action (base64 of a zip)
//! is decoded and extracted into `<dir>`.

use std::io::Cursor;
use std::path::Path;

use base64::Engine;
use serde_json::json;

use crate::config::Family;
use crate::error::ProxyError;
use crate::protocol::InitRequest;

/// Writes the code of `init` into `dir` (created if missing).
pub fn materialize(family: Family, dir: &Path, init: &InitRequest) -> Result<(), ProxyError> {
    std::fs::create_dir_all(dir)
        .map_err(|err| ProxyError::Internal(format!("cannot create {}: {err}", dir.display())))?;
    if init.binary {
        let zip = decode_base64(&init.code)?;
        unzip(&zip, dir)
    } else {
        let path = dir.join(family.source_file());
        std::fs::write(&path, &init.code)
            .map_err(|err| ProxyError::Internal(format!("cannot write {}: {err}", path.display())))
    }
}

/// The init message for the launcher (one JSON line).
pub fn init_line(dir: &Path, init: &InitRequest) -> Vec<u8> {
    let message = json!({"init": {
        "main": init.main,
        "binary": init.binary,
        "dir": dir.to_string_lossy(),
        "env": init.env,
    }});
    let mut line = serde_json::to_vec(&message).expect("a JSON value always serializes");
    line.push(b'\n');
    line
}

fn decode_base64(code: &str) -> Result<Vec<u8>, ProxyError> {
    let compact: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|err| ProxyError::InitFailed(format!("Invalid action: code is not base64: {err}")))
}

fn unzip(bytes: &[u8], dir: &Path) -> Result<(), ProxyError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|err| ProxyError::InitFailed(format!("Invalid action: bad zip file: {err}")))?;
    archive.extract(dir).map_err(|err| {
        ProxyError::InitFailed(format!(
            "Invalid action: cannot extract the zip file: {err}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn request(code: &str, binary: bool) -> InitRequest {
        InitRequest {
            name: "a".into(),
            main: "main".into(),
            code: code.into(),
            binary,
            env: Map::new(),
        }
    }

    #[test]
    fn source_is_written_to_the_family_file() {
        let dir = tempfile::tempdir().unwrap();
        materialize(Family::Nodejs, dir.path(), &request("x", false)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("index.js")).unwrap(),
            "x"
        );
    }

    #[test]
    fn bad_base64_and_bad_zip_are_init_failures() {
        let dir = tempfile::tempdir().unwrap();
        let err = materialize(Family::Python, dir.path(), &request("!!!", true)).unwrap_err();
        assert!(matches!(err, ProxyError::InitFailed(_)), "{err}");
        let err = materialize(Family::Python, dir.path(), &request("aGVsbG8=", true)).unwrap_err();
        assert!(err.to_string().contains("bad zip"), "{err}");
    }
}
