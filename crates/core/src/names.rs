//! Entity names and fully qualified names, validated by OpenWhisk's rules: letters, digits,
//! `_ @ . -` and inner spaces, at most 256 characters, not starting with a space.

use crate::error::WhiskError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest entity name OpenWhisk accepts.
pub const NAME_MAX_LEN: usize = 256;
/// The path segment that stands for the caller's own namespace.
pub const DEFAULT_NAMESPACE: &str = "_";

/// A validated entity name (action, package, trigger, rule or namespace segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EntityName(String);

impl EntityName {
    /// Validates `s` as an entity name.
    pub fn new(s: &str) -> Result<Self, WhiskError> {
        if is_valid_name(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(WhiskError::bad_request(format!(
                "The name '{}' is not valid: names may contain letters, digits, '_', '@', '.', '-' and inner spaces, at most {NAME_MAX_LEN} characters.",
                truncate(s, 64)
            )))
        }
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EntityName {
    type Error = WhiskError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<EntityName> for String {
    fn from(n: EntityName) -> String {
        n.0
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `s` follows OpenWhisk's entity name rule
/// (`\A([\w]|[\w][\w@ .-]*[\w@.-]+)\z`).
pub fn is_valid_name(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let inner = |c: char| word(c) || matches!(c, '@' | ' ' | '.' | '-');
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() || chars.len() > NAME_MAX_LEN {
        return false;
    }
    if !word(chars[0]) {
        return false;
    }
    if chars.len() == 1 {
        return true;
    }
    let last = chars[chars.len() - 1];
    chars[1..].iter().all(|c| inner(*c)) && last != ' '
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `namespace[/package]/name`: where an action lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FullyQualifiedName {
    /// The namespace (never `_` once resolved).
    pub namespace: EntityName,
    /// The package, if the action is inside one.
    pub package: Option<EntityName>,
    /// The entity's own name.
    pub name: EntityName,
}

impl FullyQualifiedName {
    /// Builds a name in `namespace` from a route path `name` or `pkg/name`.
    pub fn from_route(namespace: &str, path: &str) -> Result<Self, WhiskError> {
        let namespace = EntityName::new(namespace)?;
        let mut parts = path.split('/');
        let first = parts.next().unwrap_or_default();
        match (parts.next(), parts.next()) {
            (None, _) => Ok(Self {
                namespace,
                package: None,
                name: EntityName::new(first)?,
            }),
            (Some(second), None) => Ok(Self {
                namespace,
                package: Some(EntityName::new(first)?),
                name: EntityName::new(second)?,
            }),
            _ => Err(WhiskError::bad_request(format!(
                "The name '{path}' has too many path segments."
            ))),
        }
    }

    /// Parses `/ns/name`, `/ns/pkg/name`, `ns/name`, `name` (the last in `default_ns`).
    pub fn parse(s: &str, default_ns: &str) -> Result<Self, WhiskError> {
        let absolute = s.starts_with('/');
        let trimmed = s.trim_start_matches('/');
        let parts: Vec<&str> = trimmed.split('/').collect();
        let resolve = |ns: &str| {
            if ns == DEFAULT_NAMESPACE {
                default_ns.to_string()
            } else {
                ns.to_string()
            }
        };
        match (absolute, parts.as_slice()) {
            (_, [name]) => Self::from_route(default_ns, name),
            (true, [ns, name]) => Self::from_route(&resolve(ns), name),
            (false, [pkg, name]) => Self::from_route(default_ns, &format!("{pkg}/{name}")),
            (_, [ns, pkg, name]) => Self::from_route(&resolve(ns), &format!("{pkg}/{name}")),
            _ => Err(WhiskError::bad_request(format!(
                "The name '{s}' is not a valid entity path."
            ))),
        }
    }

    /// `namespace[/package]`: the path of the entity, as in records and summaries.
    pub fn path(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{}", self.namespace, p),
            None => self.namespace.to_string(),
        }
    }

    /// `package/name` or `name`: the name as routes and activation lists use it.
    pub fn name_in_namespace(&self) -> String {
        match &self.package {
            Some(p) => format!("{}/{}", p, self.name),
            None => self.name.to_string(),
        }
    }
}

impl fmt::Display for FullyQualifiedName {
    /// `namespace[/package]/name`, without a leading slash (OpenWhisk's `path` annotation form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.path(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_openwhisk_rules() {
        for ok in ["a", "fib", "my action", "a.b-c@d_e", "x1", "_x"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", " a", "a ", "-a", "a/b", "a?b", "é", &"a".repeat(257)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn parses_paths() {
        let f = FullyQualifiedName::parse("/_/fib", "guest").unwrap();
        assert_eq!(f.to_string(), "guest/fib");
        let f = FullyQualifiedName::parse("pkg/fib", "guest").unwrap();
        assert_eq!(f.to_string(), "guest/pkg/fib");
        assert_eq!(f.path(), "guest/pkg");
        let f = FullyQualifiedName::parse("/ns/pkg/fib", "guest").unwrap();
        assert_eq!(f.name_in_namespace(), "pkg/fib");
        assert!(FullyQualifiedName::parse("a/b/c/d", "guest").is_err());
        assert!(FullyQualifiedName::from_route("guest", "a b ").is_err());
    }
}
