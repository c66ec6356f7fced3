//! Where the client's settings come from: the global flags, `WHISK_*` environment variables,
//! the `~/.wskprops` file (`WSK_CONFIG_FILE` overrides its path) and the defaults that let a
//! fresh user talk to `whisk standalone` (`http://127.0.0.1:3233`, the guest key).
//!
//! Precedence: flag > environment > wskprops > default. The environment is read through a
//! passed-in lookup function so that tests never mutate the process environment.

use std::path::{Path, PathBuf};
use whisk_core::identity::GUEST_KEY;

/// The API host used when nothing is configured (where `whisk standalone` listens).
pub const DEFAULT_APIHOST: &str = "http://127.0.0.1:3233";
/// The namespace placeholder meaning "the caller's own namespace".
pub const DEFAULT_NAMESPACE: &str = "_";

/// Flags accepted by every client command.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Whisk API host (`host[:port]` means https; `http://host:port` is kept)
    #[arg(long, global = true, value_name = "HOST", num_args = 0..=1, default_missing_value = "")]
    pub apihost: Option<String>,
    /// Authorization key (`uuid:key`)
    #[arg(short = 'u', long, global = true, value_name = "KEY", num_args = 0..=1, default_missing_value = "")]
    pub auth: Option<String>,
    /// Bypass certificate checking.
    #[arg(short = 'i', long, global = true)]
    pub insecure: bool,
    /// Trust the CA certificate(s) in this PEM file.
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Verbose output (log HTTP requests and responses to stderr).
    #[arg(short = 'v', long, global = true, visible_short_alias = 'd')]
    pub verbose: bool,
    /// Print raw JSON instead of tables and `ok:` lines.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The resolved settings of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Normalised API host (scheme, no trailing slash).
    pub apihost: String,
    /// `uuid:key`.
    pub auth: String,
    /// Default namespace for names without a leading `/` (`_` unless configured).
    pub namespace: String,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra CA certificate file.
    pub cacert: Option<PathBuf>,
}

/// The first non-empty value of `flag`, the environment variable `var` and the wskprops
/// `key`.
pub fn lookup(
    flag: Option<&str>,
    var: &str,
    key: &str,
    props: &Props,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    flag.filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| env(var).filter(|v| !v.is_empty()))
        .or_else(|| props.get(key).filter(|v| !v.is_empty()).map(str::to_string))
}

impl Settings {
    /// Resolves settings from flags, the environment (`env`) and the wskprops file.
    pub fn resolve(
        flags: &GlobalArgs,
        props: &Props,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let pick = |flag: &Option<String>, var: &str, key: &str| {
            lookup(flag.as_deref(), var, key, props, env)
        };
        let apihost = pick(&flags.apihost, "WHISK_APIHOST", "APIHOST")
            .unwrap_or_else(|| DEFAULT_APIHOST.into());
        let auth = pick(&flags.auth, "WHISK_AUTH", "AUTH").unwrap_or_else(|| GUEST_KEY.into());
        let namespace =
            pick(&None, "WHISK_NAMESPACE", "NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into());
        Self {
            apihost: normalize_apihost(&apihost),
            auth,
            namespace,
            insecure: flags.insecure,
            cacert: flags.cacert.clone(),
        }
    }

    /// `{apihost}/api/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/api/v1", self.apihost)
    }
}

/// Adds `https://` to a host without a scheme (as `wsk` does) and drops trailing slashes.
pub fn normalize_apihost(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("https://{host}")
    }
}

/// The wskprops file: `WSK_CONFIG_FILE`, else `$HOME/.wskprops`.
pub fn props_path(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(p) = env("WSK_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = env("HOME")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| ".".into());
    Path::new(&home).join(".wskprops")
}

/// The content of a wskprops file: `KEY=VALUE` lines, order and unknown keys kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    entries: Vec<(String, String)>,
}

impl Props {
    /// Parses `KEY=VALUE` lines; blank lines, comments and lines without `=` are skipped.
    pub fn parse(text: &str) -> Self {
        let mut props = Props::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                props.set(k.trim(), v.trim());
            }
        }
        props
    }

    /// Reads the file at `path`; a missing file is an empty one.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the file at `path` (creating its directory).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(path, self.render())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (in place when present, else appended).
    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_string(),
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }

    /// Removes `key`.
    pub fn unset(&mut self, key: &str) {
        self.entries.retain(|(k, _)| k != key);
    }

    /// The file text.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn apihost_without_scheme_is_https() {
        assert_eq!(normalize_apihost("10.10.1.2"), "https://10.10.1.2");
        assert_eq!(
            normalize_apihost("localhost:3233/"),
            "https://localhost:3233"
        );
        assert_eq!(
            normalize_apihost("http://127.0.0.1:3233"),
            "http://127.0.0.1:3233"
        );
        assert_eq!(normalize_apihost("https://h/"), "https://h");
    }

    #[test]
    fn props_round_trip_keeps_unknown_keys() {
        let mut p = Props::parse("# c\nAPIHOST=a\n\nOTHER=x=y\nAUTH = k\n");
        assert_eq!(p.get("APIHOST"), Some("a"));
        assert_eq!(p.get("OTHER"), Some("x=y"));
        assert_eq!(p.get("AUTH"), Some("k"));
        p.set("APIHOST", "b");
        p.set("NAMESPACE", "guest");
        p.unset("AUTH");
        assert_eq!(p.render(), "APIHOST=b\nOTHER=x=y\nNAMESPACE=guest\n");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/.wskprops");
        p.save(&path).unwrap();
        assert_eq!(Props::load(&path).unwrap(), p);
        assert_eq!(
            Props::load(&dir.path().join("missing")).unwrap(),
            Props::default()
        );
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let props = Props::parse("APIHOST=file:1\nAUTH=file-key\nNAMESPACE=ns\n");
        let none = GlobalArgs::default();
        let s = Settings::resolve(&none, &Props::default(), &env_of(&[]));
        assert_eq!(s.apihost, DEFAULT_APIHOST);
        assert_eq!(s.auth, GUEST_KEY);
        assert_eq!(s.namespace, "_");
        let s = Settings::resolve(&none, &props, &env_of(&[]));
        assert_eq!(
            (s.apihost.as_str(), s.auth.as_str(), s.namespace.as_str()),
            ("https://file:1", "file-key", "ns")
        );
        let env = env_of(&[("WHISK_APIHOST", "http://env:2"), ("WHISK_AUTH", "env-key")]);
        let s = Settings::resolve(&none, &props, &env);
        assert_eq!(
            (s.apihost.as_str(), s.auth.as_str()),
            ("http://env:2", "env-key")
        );
        let flags = GlobalArgs {
            apihost: Some("flag".into()),
            auth: Some("flag-key".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&flags, &props, &env);
        assert_eq!(
            (s.apihost.as_str(), s.auth.as_str()),
            ("https://flag", "flag-key")
        );
        assert_eq!(s.base_url(), "https://flag/api/v1");
    }

    #[test]
    fn props_path_override() {
        assert_eq!(
            props_path(&env_of(&[("WSK_CONFIG_FILE", "/x/y")])),
            PathBuf::from("/x/y")
        );
        assert_eq!(
            props_path(&env_of(&[("HOME", "/home/u")])),
            PathBuf::from("/home/u/.wskprops")
        );
    }
}
