//! The runtime manifest: which `exec.kind`s exist, which launcher family runs them, and what
//! `:default` resolves to.

/// One runtime kind.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Canonical kind name.
    pub kind: &'static str,
    /// Launcher family: `python` or `nodejs`.
    pub family: &'static str,
    /// The image the Docker runtime uses for it.
    pub image: &'static str,
}

/// Every kind this platform runs.
pub const KNOWN: &[Kind] = &[
    Kind {
        kind: "python:3",
        family: "python",
        image: "whisk/python3action",
    },
    Kind {
        kind: "nodejs:20",
        family: "nodejs",
        image: "whisk/nodejsaction",
    },
];

/// Aliases accepted on input and the canonical kind they stand for.
const ALIASES: &[(&str, &str)] = &[
    ("python:default", "python:3"),
    ("python", "python:3"),
    ("python:3.9", "python:3"),
    ("python:3.10", "python:3"),
    ("python:3.11", "python:3"),
    ("python:3.12", "python:3"),
    ("nodejs:default", "nodejs:20"),
    ("nodejs", "nodejs:20"),
    ("nodejs:18", "nodejs:20"),
    ("nodejs:22", "nodejs:20"),
];

/// Resolves a kind given by a client to a canonical one, or `None` when unknown.
pub fn resolve(kind: &str) -> Option<String> {
    if let Some(k) = KNOWN.iter().find(|k| k.kind == kind) {
        return Some(k.kind.to_string());
    }
    ALIASES
        .iter()
        .find(|(a, _)| *a == kind)
        .map(|(_, k)| k.to_string())
}

/// The launcher family of a canonical kind.
pub fn family(kind: &str) -> Option<&'static str> {
    KNOWN.iter().find(|k| k.kind == kind).map(|k| k.family)
}

/// The launcher family for a blackbox image whose `/init` accepts Python code
/// (the project's own image and the seed's), so the process runtime can run them too.
pub fn family_of_image(image: &str) -> Option<&'static str> {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split(':').next().unwrap_or(base);
    match base {
        "python3action" | "action-python-v3.11" | "action-python-v3.12" => Some("python"),
        "nodejsaction" | "action-nodejs-v20" | "action-nodejs-v18" => Some("nodejs"),
        _ => None,
    }
}

/// True when `image` matches one of `patterns` (`*` matches any run of characters, the rest
/// literally); an image without a tag also matches as `<image>:latest`. The rule of
/// blackbox images, applied by the controller at create/update and by the Docker runtime.
pub fn image_allowed(image: &str, patterns: &[String]) -> bool {
    let untagged = image
        .rsplit('/')
        .next()
        .is_some_and(|last| !last.contains(':'));
    let tagged = untagged.then(|| format!("{image}:latest"));
    patterns.iter().any(|p| {
        glob(p.as_bytes(), image.as_bytes())
            || tagged
                .as_deref()
                .is_some_and(|t| glob(p.as_bytes(), t.as_bytes()))
    })
}

/// `*`-only glob, iterative with one backtrack point (linear in practice).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolves_defaults() {
        assert_eq!(
            super::resolve("python:default").as_deref(),
            Some("python:3")
        );
        assert_eq!(
            super::resolve("nodejs:default").as_deref(),
            Some("nodejs:20")
        );
        assert_eq!(super::resolve("java:8"), None);
        assert_eq!(
            super::family_of_image("yangzhou1997/python3action:mpi"),
            Some("python")
        );
    }
}
