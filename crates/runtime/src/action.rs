//! Puts an action's code on disk for the launcher: source text goes to its launcher's source
//! file (`<dir>/__main__.py`, `<dir>/index.js`, `<dir>/exec`); a binary action (base64 of a
//! zip) is decoded and extracted into `<dir>`. For the native launcher a binary action may
//! also be the executable itself, and `exec` is made executable.

use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use serde_json::json;
use whisk_core::kinds::Launcher;

use crate::config::source_file;
use crate::error::ProxyError;
use crate::protocol::InitRequest;

/// The first bytes of a zip archive.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// Writes the code of `init` into `dir` (created if missing).
pub fn materialize(launcher: Launcher, dir: &Path, init: &InitRequest) -> Result<(), ProxyError> {
    std::fs::create_dir_all(dir)
        .map_err(|err| ProxyError::Internal(format!("cannot create {}: {err}", dir.display())))?;
    let path = dir.join(source_file(launcher));
    let write = |bytes: &[u8]| {
        std::fs::write(&path, bytes)
            .map_err(|err| ProxyError::Internal(format!("cannot write {}: {err}", path.display())))
    };
    if init.binary {
        let bytes = decode_base64(&init.code)?;
        if launcher == Launcher::Exec && !bytes.starts_with(ZIP_MAGIC) {
            write(&bytes)?;
        } else {
            unzip(&bytes, dir)?;
        }
    } else {
        write(init.code.as_bytes())?;
    }
    if launcher == Launcher::Exec && path.is_file() {
        // The entry point, whatever mode the zip gave it (OpenWhisk's skeleton ships it so).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|err| {
            ProxyError::Internal(format!("cannot make {} executable: {err}", path.display()))
        })?;
    }
    Ok(())
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
        materialize(Launcher::Node, dir.path(), &request("x", false)).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("index.js")).unwrap(),
            "x"
        );
    }

    #[test]
    fn bad_base64_and_bad_zip_are_init_failures() {
        let dir = tempfile::tempdir().unwrap();
        let err = materialize(Launcher::Python, dir.path(), &request("!!!", true)).unwrap_err();
        assert!(matches!(err, ProxyError::InitFailed(_)), "{err}");
        let err =
            materialize(Launcher::Python, dir.path(), &request("aGVsbG8=", true)).unwrap_err();
        assert!(err.to_string().contains("bad zip"), "{err}");
    }

    #[test]
    fn a_native_action_is_an_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        materialize(
            Launcher::Exec,
            dir.path(),
            &request("#!/bin/sh\necho {}", false),
        )
        .unwrap();
        let mode = std::fs::metadata(dir.path().join("exec"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        // A single binary, base64 ("hello" here: not a zip), is the executable itself.
        let dir = tempfile::tempdir().unwrap();
        materialize(Launcher::Exec, dir.path(), &request("aGVsbG8=", true)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("exec")).unwrap(), b"hello");
    }
}
