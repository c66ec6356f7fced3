//! What a proxy is started with: the runtime family, the interpreters and
//! the working directory (launcher sources, `lib/`, the action's code).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The language family a proxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Python 3 (`__main__.py`, `def main(args)`).
    Python,
    /// Node.js (`index.js`, `function main(params)` or `exports.main`).
    Nodejs,
}

impl Family {
    /// The file name the action's source is written to.
    pub fn source_file(self) -> &'static str {
        match self {
            Family::Python => "__main__.py",
            Family::Nodejs => "index.js",
        }
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "python" | "python3" => Ok(Family::Python),
            "nodejs" | "node" => Ok(Family::Nodejs),
            other => Err(format!("unknown runtime family {other:?} (python|nodejs)")),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Python => "python",
            Family::Nodejs => "nodejs",
        })
    }
}

/// Settings of one proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Which launcher to run.
    pub family: Family,
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
    /// The interpreter for this family.
    pub fn interpreter(&self) -> &Path {
        match self.family {
            Family::Python => &self.python,
            Family::Nodejs => &self.node,
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

/// `/usr/bin/python3` when present (fast to start), else `python3` from PATH.
pub fn default_python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.exists() {
        system.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}
