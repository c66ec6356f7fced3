//! The runtime kinds, in one table: [`KINDS`] says, per kind, everything the platform needs to
//! know about it — the names a client may give (aliases, `<family>:default`), the launcher the
//! action proxy runs, the Docker image, the default memory and prewarmed stems, the manifest's
//! flags. The controller validates `exec.kind` and serves the runtimes manifest of `GET /` from
//! it ([`resolve`], [`manifest`]); the invoker takes its stem-cell and image defaults and each
//! action's launcher family from it ([`stem_cells`], [`images`], [`family`],
//! [`family_of_image`]); the action proxy picks its launcher from it ([`launcher_of`]).
//!
//! Adding a kind whose launcher exists is one row here (and its image in
//! `deploy/images/build-actions.sh`); a new launcher is a row plus a [`Launcher`] variant and
//! its code in `whisk-runtime`'s `launcher` module.
//!
//! Also the blackbox image rule ([`image_allowed`]), shared by the controller and the Docker
//! runtime.

use serde_json::{json, Map, Value};

/// The kind of actions that bring their own image (`exec.image`); not a row of [`KINDS`].
pub const BLACKBOX: &str = "blackbox";

/// What the action proxy runs for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Launcher {
    /// One long-lived `python3` running the proxy's `launcher.py` (ActionLoop style): the
    /// action's `main(args)` is called once per activation.
    Python,
    /// One long-lived `node` running the proxy's `launcher.js`.
    Node,
    /// The action is an executable (OpenWhisk's dockerskeleton): run once per activation with
    /// the parameters as JSON in argv\[1\] (and on stdin); the last line it prints is the
    /// result, the lines before it are logs.
    Exec,
}

impl Launcher {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Launcher::Python => "python",
            Launcher::Node => "nodejs",
            Launcher::Exec => "exec",
        }
    }
}

impl std::fmt::Display for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One runtime kind.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    /// Canonical kind name, e.g. `python:3`; what the store keeps.
    pub kind: &'static str,
    /// Runtime family (`python`, `nodejs`, `native`): the manifest's grouping, and what the
    /// invoker keys containers, stems and images by. Every kind of a family has the same
    /// launcher and image.
    pub family: &'static str,
    /// Other names a client may give for this kind (OpenWhisk's versioned kinds).
    /// `<family>:default` and `<family>` name the family's default kind without being listed.
    pub aliases: &'static [&'static str],
    /// The family's default kind (exactly one per family).
    pub default: bool,
    /// Shown as deprecated in the manifest (still runs).
    pub deprecated: bool,
    /// What the action proxy runs.
    pub launcher: Launcher,
    /// The Docker runtime's image (`deploy/images/build-actions.sh` builds it); setting
    /// `docker.images` overrides it per family.
    pub image: &'static str,
    /// Names (last path segment, without tag) of blackbox images whose `/init` takes this
    /// kind's code, so that the process runtime runs such blackbox actions with this launcher.
    pub blackbox_images: &'static [&'static str],
    /// Memory of its prewarmed stems, MB.
    pub memory_mb: u64,
    /// How many prewarmed stems an invoker keeps by default (`invoker.stem_cells` overrides).
    pub stem_cells: usize,
    /// Whether one container runs several activations at once (`limits.concurrency` > 1), as
    /// OpenWhisk's Node.js runtime does; other kinds refuse a concurrency above 1.
    pub concurrent: bool,
}

/// Every kind this platform runs.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "python:3",
        family: "python",
        aliases: &["python:3.9", "python:3.10", "python:3.11", "python:3.12"],
        default: true,
        deprecated: false,
        launcher: Launcher::Python,
        image: "whisk/python3action",
        blackbox_images: &[
            "python3action",
            "action-python-v3.11",
            "action-python-v3.12",
        ],
        memory_mb: 256,
        stem_cells: 2,
        concurrent: false,
    },
    KindSpec {
        kind: "nodejs:20",
        family: "nodejs",
        aliases: &["nodejs:18", "nodejs:22"],
        default: true,
        deprecated: false,
        launcher: Launcher::Node,
        image: "whisk/nodejsaction",
        blackbox_images: &["nodejsaction", "action-nodejs-v20", "action-nodejs-v18"],
        memory_mb: 256,
        stem_cells: 1,
        concurrent: true,
    },
    KindSpec {
        kind: "native",
        family: "native",
        aliases: &[],
        default: true,
        deprecated: false,
        launcher: Launcher::Exec,
        image: "whisk/nativeaction",
        // `wsk action create --native` names this image.
        blackbox_images: &["dockerskeleton"],
        memory_mb: 256,
        stem_cells: 0,
        concurrent: false,
    },
];

/// The kind a client's name stands for: a canonical kind, an alias, `<family>:default` or
/// `<family>`.
pub fn lookup(name: &str) -> Option<&'static KindSpec> {
    if let Some(k) = KINDS
        .iter()
        .find(|k| k.kind == name || k.aliases.contains(&name))
    {
        return Some(k);
    }
    let family = name.strip_suffix(":default").unwrap_or(name);
    default_of(family)
}

/// The default kind of `family`.
pub fn default_of(family: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.family == family && k.default)
}

/// Resolves a kind given by a client to a canonical one, or `None` when unknown.
pub fn resolve(kind: &str) -> Option<String> {
    lookup(kind).map(|k| k.kind.to_string())
}

/// The canonical kinds, comma-separated (for error messages).
pub fn names() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

/// The launcher family of a canonical kind.
pub fn family(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| k.kind == kind).map(|k| k.family)
}

/// The launcher for a family, kind or alias (what the action proxy's `--family` names).
pub fn launcher_of(name: &str) -> Option<Launcher> {
    lookup(name).map(|k| k.launcher)
}

/// The launcher family for a blackbox image whose `/init` takes a kind's code (the project's
/// own images, the seed's, OpenWhisk's dockerskeleton), so the process runtime can run them
/// too.
pub fn family_of_image(image: &str) -> Option<&'static str> {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split(':').next().unwrap_or(base);
    KINDS
        .iter()
        .find(|k| k.blackbox_images.contains(&base))
        .map(|k| k.family)
}

/// Whether actions of `kind` (canonical, or `blackbox` with `image`) may run several
/// activations in one container: the kind's `concurrent` flag; a blackbox image only when it is
/// the image of such a family.
pub fn concurrent(kind: &str, image: Option<&str>) -> bool {
    let family = match kind {
        BLACKBOX => image.and_then(family_of_image),
        k => family(k),
    };
    family.is_some_and(|f| default_of(f).is_some_and(|k| k.concurrent))
}

/// The runtime families, each once.
pub fn families() -> impl Iterator<Item = &'static str> {
    KINDS.iter().filter(|k| k.default).map(|k| k.family)
}

/// The Docker image of each family (its default kind's): the default of `docker.images`.
pub fn images() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS
        .iter()
        .filter(|k| k.default)
        .map(|k| (k.family, k.image))
}

/// The kinds an invoker prewarms by default, with how many and how large.
pub fn stem_cells() -> impl Iterator<Item = &'static KindSpec> {
    KINDS.iter().filter(|k| k.stem_cells > 0)
}

/// The `runtimes` object of `GET /` (OpenWhisk's runtimes manifest): per family, its kinds.
pub fn manifest() -> Map<String, Value> {
    let mut runtimes = Map::new();
    for k in KINDS {
        let list = runtimes.entry(k.family).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!({
                "kind": k.kind,
                "image": k.image,
                "default": k.default,
                "deprecated": k.deprecated,
                "attached": false,
                "requireMain": false,
                "concurrent": k.concurrent,
            }));
        }
    }
    runtimes
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
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn resolves_defaults() {
        assert_eq!(resolve("python:default").as_deref(), Some("python:3"));
        assert_eq!(resolve("nodejs:default").as_deref(), Some("nodejs:20"));
        assert_eq!(resolve("python").as_deref(), Some("python:3"));
        assert_eq!(resolve("python:3.11").as_deref(), Some("python:3"));
        assert_eq!(resolve("native").as_deref(), Some("native"));
        assert_eq!(resolve("native:default").as_deref(), Some("native"));
        assert_eq!(resolve("java:8"), None);
        assert_eq!(resolve(BLACKBOX), None);
        assert_eq!(
            family_of_image("yangzhou1997/python3action:mpi"),
            Some("python")
        );
        assert_eq!(
            family_of_image("openwhisk/dockerskeleton:nightly"),
            Some("native")
        );
        assert_eq!(family_of_image("someone/else"), None);
        assert_eq!(launcher_of("nodejs"), Some(Launcher::Node));
        assert_eq!(launcher_of("native"), Some(Launcher::Exec));
        assert_eq!(launcher_of("ruby"), None);
        assert!(concurrent("nodejs:20", None));
        assert!(!concurrent("python:3", None));
        assert!(!concurrent("native", None));
        assert!(concurrent(BLACKBOX, Some("whisk/nodejsaction")));
        assert!(!concurrent(BLACKBOX, Some("someone/else")));
        assert!(!concurrent(BLACKBOX, None));
    }

    /// The table is consistent: every name a client may give means one kind, every family
    /// has one default kind and one launcher and image, every row is usable as configured.
    #[test]
    fn the_table_is_consistent() {
        let mut owner: HashMap<String, &str> = HashMap::new();
        let mut claim = |name: String, kind: &'static str| {
            if let Some(other) = owner.insert(name.clone(), kind) {
                assert_eq!(other, kind, "'{name}' names both {other} and {kind}");
            }
        };
        for k in KINDS {
            claim(k.kind.to_string(), k.kind);
            for a in k.aliases {
                claim(a.to_string(), k.kind);
            }
        }
        let families: HashSet<&str> = KINDS.iter().map(|k| k.family).collect();
        assert_eq!(self::families().count(), families.len());
        for f in &families {
            let defaults: Vec<_> = KINDS
                .iter()
                .filter(|k| k.family == *f && k.default)
                .collect();
            assert_eq!(
                defaults.len(),
                1,
                "family {f} needs exactly one default kind"
            );
            let d = defaults[0];
            claim(f.to_string(), d.kind);
            claim(format!("{f}:default"), d.kind);
            for k in KINDS.iter().filter(|k| k.family == *f) {
                assert_eq!(
                    k.launcher, d.launcher,
                    "{}: one launcher per family",
                    k.kind
                );
                assert_eq!(k.image, d.image, "{}: one image per family", k.kind);
                assert_eq!(
                    k.concurrent, d.concurrent,
                    "{}: one concurrency per family",
                    k.kind
                );
            }
        }
        for reserved in [BLACKBOX, "sequence"] {
            assert!(
                !owner.contains_key(reserved),
                "'{reserved}' is not a runtime kind"
            );
        }
        // Every name resolves to what it claims, round trip included.
        for (name, kind) in &owner {
            assert_eq!(resolve(name).as_deref(), Some(*kind), "{name}");
        }
        let mut claimed = HashSet::new();
        for k in KINDS {
            assert!(!k.kind.is_empty() && !k.family.is_empty());
            assert_eq!(family(k.kind), Some(k.family));
            assert_eq!(launcher_of(k.kind), Some(k.launcher));
            assert!(
                (crate::limits::MEMORY_MIN_MB..=crate::limits::MEMORY_MAX_MB)
                    .contains(&k.memory_mb),
                "{}: stem memory within the action limits",
                k.kind
            );
            // The platform's own images are blackbox images allowed by default.
            assert!(
                image_allowed(k.image, &["whisk/*".to_string()]),
                "{}",
                k.image
            );
            for b in k.blackbox_images {
                assert!(claimed.insert(*b), "blackbox image {b} claimed twice");
                assert_eq!(family_of_image(b), Some(k.family));
            }
        }
        // The manifest has every kind once, under its family, one default each.
        let m = manifest();
        assert_eq!(m.len(), families.len());
        let listed: Vec<&Value> = m.values().flat_map(|v| v.as_array().unwrap()).collect();
        assert_eq!(listed.len(), KINDS.len());
        for (fam, kinds) in &m {
            let kinds = kinds.as_array().unwrap();
            assert_eq!(kinds.iter().filter(|k| k["default"] == true).count(), 1);
            for k in kinds {
                assert_eq!(family(k["kind"].as_str().unwrap()), Some(fam.as_str()));
            }
        }
        // Image defaults: one per family; stems only of known kinds.
        assert_eq!(images().count(), families.len());
        assert!(stem_cells().all(|k| lookup(k.kind).is_some()));
    }
}
