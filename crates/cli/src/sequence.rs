//! `whisk action create NAME a,b,c --sequence` (wsk's flag: the artifact is a comma-separated
//! list of actions): the `exec` of a sequence, each component a fully qualified name
//! (`/_/name`, `/_/pkg/name` or `/ns/[pkg/]name` as given; the server resolves `_`).

use crate::action_body::CreateArgs;
use crate::error::Failure;
use crate::params::QualifiedName;
use serde_json::{json, Value};

/// The `exec` of `--sequence`: `{"kind": "sequence", "components": [...]}`.
pub fn exec(args: &CreateArgs) -> Result<Value, Failure> {
    if args.kind.is_some() || args.docker.is_some() || args.native || args.main.is_some() {
        return Err(Failure::usage(
            "--sequence cannot be combined with --kind, --docker, --native or --main",
        ));
    }
    let Some(list) = args.file.as_ref().and_then(|f| f.to_str()) else {
        return Err(Failure::usage(
            "A comma-separated list of actions is required with --sequence.",
        ));
    };
    let components = list
        .split(',')
        .map(|c| QualifiedName::parse(c.trim(), "_").map(|q| q.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({"kind": "sequence", "components": components}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(file: &str) -> CreateArgs {
        CreateArgs {
            name: "s".into(),
            file: Some(file.into()),
            sequence: true,
            ..CreateArgs::default()
        }
    }

    #[test]
    fn components_are_fully_qualified() {
        assert_eq!(
            exec(&args("a, pkg/b,/ns/c,/ns/p/d")).unwrap(),
            json!({"kind": "sequence", "components": ["/_/a", "/_/pkg/b", "/ns/c", "/ns/p/d"]})
        );
        assert!(exec(&args("a,,b")).is_err());
        let mut k = args("a");
        k.kind = Some("python:3".into());
        assert!(exec(&k).is_err());
        let none = CreateArgs {
            sequence: true,
            ..CreateArgs::default()
        };
        assert!(exec(&none).is_err());
    }
}
