//! What a proxy is started with: its launcher (from the runtime family or kind it is given,
//! looked up in `whisk_core::kinds::KINDS`), the interpreters and the working directory
//! (launcher sources, `lib/`, the action's code).

use std::path::{Path, PathBuf};
use whisk_core::kinds::{self, Launcher};

/// The launcher for a runtime family, kind or alias (`python`, `nodejs:20`, `native`, ...),
/// for the `--family` flag.
pub fn parse_launcher(name: &str) -> Result<Launcher, String> {
    kinds::launcher_of(&name.to_ascii_lowercase()).ok_or_else(|| {
        let families: Vec<&str> = kinds::families().collect();
        format!("unknown runtime family {name:?} ({})", families.join("|"))
    })
}

/// Settings of one proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Which launcher to run.
    pub launcher: Launcher,
    /// The Python interpreter.
    pub python: PathBuf,
    /// The Node.js interpreter.
    pub node: PathBuf,
    /// The directory holding `launcher.*`, `lib/` and `action/`.
    pub workdir: PathBuf,
    /// The container's secret: `/init` and `/run` need `Authorization: Bearer <secret>`
    /// (from [`SECRET_ENV`]); `None` serves anyone (a proxy run by hand).
    pub secret: Option<String>,
}

/// The variable an invoker gives a container its secret in; the proxy takes it out of its
/// environment before the action's launcher starts.
pub const SECRET_ENV: &str = "WHISK_PROXY_SECRET";

impl ProxyConfig {
    /// The interpreter of this launcher (the native launcher has none).
    pub fn interpreter(&self) -> Option<&Path> {
        match self.launcher {
            Launcher::Python => Some(&self.python),
            Launcher::Node => Some(&self.node),
            Launcher::Exec => None,
        }
    }

    /// The folder the proxy owns on the function's import path.
    pub fn lib_dir(&self) -> PathBuf {
        self.workdir.join("lib")
    }

    /// The folder the action's code is written or unzipped into.
    pub fn action_dir(&self) -> PathBuf {
        self.workdir.join("action")
    }
}

/// The file the action's source (or single executable) is written to, in the action folder.
pub fn source_file(launcher: Launcher) -> &'static str {
    match launcher {
        Launcher::Python => "__main__.py",
        Launcher::Node => "index.js",
        Launcher::Exec => "exec",
    }
}

/// `/usr/bin/python3` when present (fast to start), else `python3` from PATH.
pub fn default_python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.exists() {
        system.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_kinds_name_launchers() {
        assert_eq!(parse_launcher("python"), Ok(Launcher::Python));
        assert_eq!(parse_launcher("NodeJS"), Ok(Launcher::Node));
        assert_eq!(parse_launcher("nodejs:20"), Ok(Launcher::Node));
        assert_eq!(parse_launcher("native"), Ok(Launcher::Exec));
        let err = parse_launcher("cobol").unwrap_err();
        assert!(err.contains("python|nodejs|native"), "{err}");
    }
}
