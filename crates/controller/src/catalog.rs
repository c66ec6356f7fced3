//! The public `/whisk.system` catalog every platform starts with, as OpenWhisk's
//! `openwhisk-catalog` installs it: package `utils` (`echo`, `cat`, `sort`, `head`, `split`,
//! `date`, `smash`, `namespace`, `hosturl`: Node.js actions behaving as upstream's) and the packages of feeds (`alarms`,
//! `messaging`), all published so that every namespace may read, bind and invoke them.
//!
//! [`CATALOG`] is the one table of the packages and their code actions (kind, code,
//! annotations). The feed actions of `alarms` and `messaging` (annotated `feed`, so a
//! package's `GET` lists them among its feeds; answered by the controller itself) are
//! `whisk_feeds::catalog`'s, written by the same installer for each package.
//!
//! [`install_catalog`] runs when a controller starts, after the store is open, in every mode
//! (`whisk-serve` calls [`install_catalog_or_log`] after the first keys):
//! it writes what is missing or differs from the table (code, kind, annotations, publish) and
//! leaves the rest, so a restart changes nothing and an upgrade brings new code. Controllers
//! starting together may race: a write that loses to another's is not an error.

use serde_json::{json, Value};
use whisk_core::entity::{ActionPut, KeyValue};
use whisk_core::package::PackagePut;
use whisk_core::{now_ms, Action, FullyQualifiedName, Package, WhiskError};
use whisk_store::{ActionStore, EntityKind, Store, StoreError};

/// The namespace of the catalog.
pub const CATALOG_NAMESPACE: &str = crate::admin::SYSTEM_NAMESPACE;

/// One action of a catalog package.
#[derive(Debug, Clone, Copy)]
pub struct CatalogAction {
    /// Its name in the package.
    pub name: &'static str,
    /// Runtime kind (`nodejs:default`, `python:default`).
    pub kind: &'static str,
    /// Source code.
    pub code: &'static str,
    /// Annotations, a JSON object (`description`, `parameters`, `sampleInput`, `feed`, ...).
    pub annotations: &'static str,
}

/// One package of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct CatalogPackage {
    /// Its name in `/whisk.system`.
    pub name: &'static str,
    /// Annotations, a JSON object.
    pub annotations: &'static str,
    /// Its actions (and feeds).
    pub actions: &'static [CatalogAction],
}

/// What every platform's `/whisk.system` holds (see the module docs).
pub const CATALOG: &[CatalogPackage] = &[
    CatalogPackage {
        name: "utils",
        annotations: r#"{"description": "Building blocks that format and assemble data"}"#,
        actions: UTILS,
    },
    CatalogPackage {
        name: "alarms",
        annotations: r#"{"description": "Alarms and periodic utility"}"#,
        actions: &[],
    },
    CatalogPackage {
        name: "messaging",
        annotations: r#"{"description": "Messaging services"}"#,
        actions: &[],
    },
];

const UTILS: &[CatalogAction] = &[
    CatalogAction {
        name: "echo",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/echo.js"),
        annotations: r#"{"description": "Returns the input",
            "parameters": [{"name": "payload", "required": false, "description": "Any JSON entity"}],
            "sampleInput": {"payload": "Five fuzzy felines"},
            "sampleOutput": {"payload": "Five fuzzy felines"}}"#,
    },
    CatalogAction {
        name: "cat",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/cat.js"),
        annotations: r#"{"description": "Concatenates input into a string",
            "parameters": [{"name": "lines", "required": true, "type": "array", "description": "An array of strings or numbers"}],
            "sampleInput": {"lines": [4, 2, 3]},
            "sampleOutput": {"lines": [4, 2, 3]}}"#,
    },
    CatalogAction {
        name: "sort",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/sort.js"),
        annotations: r#"{"description": "Sorts an array",
            "parameters": [{"name": "lines", "required": true, "type": "array", "description": "An array of strings"}],
            "sampleInput": {"lines": [4, 2, 3]},
            "sampleOutput": {"lines": [2, 3, 4], "length": 3}}"#,
    },
    CatalogAction {
        name: "head",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/head.js"),
        annotations: r#"{"description": "Extract prefix of an array",
            "parameters": [{"name": "lines", "required": true, "type": "array", "description": "An array of strings"},
                           {"name": "num", "required": false, "type": "integer", "description": "The length of the prefix"}],
            "sampleInput": {"lines": [4, 2, 3], "num": 2},
            "sampleOutput": {"lines": [4, 2], "num": 2}}"#,
    },
    CatalogAction {
        name: "split",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/split.js"),
        annotations: r#"{"description": "Split a string into an array",
            "parameters": [{"name": "payload", "required": true, "description": "A string"},
                           {"name": "separator", "required": false, "description": "The character, or the regular expression, to use for splitting the string"}],
            "sampleInput": {"payload": "one,two,three", "separator": ","},
            "sampleOutput": {"lines": ["one", "two", "three"], "payload": "one,two,three"}}"#,
    },
    CatalogAction {
        name: "date",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/date.js"),
        annotations: r#"{"description": "Current date and time",
            "sampleOutput": {"date": "2016-03-22T00:59:55.961Z"}}"#,
    },
    CatalogAction {
        name: "smash",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/smash.js"),
        annotations: r#"{"description": "Nests all properties under given property",
            "parameters": [{"name": "$fieldName", "required": true, "type": "string", "description": "Name of property to nest object under"}],
            "sampleInput": {"a": 1, "b": {"c": 2, "d": 3}, "$fieldName": "p"},
            "sampleOutput": {"p": {"a": 1, "b": {"c": 2, "d": 3}}}}"#,
    },
    CatalogAction {
        name: "namespace",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/namespace.js"),
        annotations: r#"{"description": "Returns namespace for the authorization key used to invoke this action",
            "sampleOutput": {"namespace": "guest"}}"#,
    },
    CatalogAction {
        name: "hosturl",
        kind: "nodejs:default",
        code: include_str!("catalog/utils/hosturl.js"),
        annotations: r#"{"description": "Returns the URL to activate an action or trigger",
            "parameters": [{"name": "web", "type": "boolean", "description": "True for web actions"},
                           {"name": "ext", "type": "string", "description": "Extension for web action, one of .html, .http, .json, .text"},
                           {"name": "trigger", "type": "boolean", "description": "True to construct path for trigger instead of action."},
                           {"name": "path", "type": "string", "description": "The action name as just <action name> or <package name>/<action name>."}],
            "sampleInput": {"web": true, "path": "pkg/action"},
            "sampleOutput": {"url": "https://openwhisk.ng.bluemix.net/api/v1/web/guest/pkg/action"}}"#,
    },
];

fn key_values(object: &str) -> Result<Vec<KeyValue>, WhiskError> {
    let v: Value = serde_json::from_str(object)
        .map_err(|e| WhiskError::internal(format!("a catalog annotation is not JSON: {e}")))?;
    Ok(v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A store write that lost a race to another controller installing the same entry is fine.
fn tolerate_race(r: Result<String, StoreError>) -> Result<(), WhiskError> {
    match r {
        Ok(_) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Installs [`CATALOG`] in `store` (see the module docs); answers how many entities it
/// wrote (0 when everything was there already).
pub async fn install_catalog(store: &dyn Store) -> Result<usize, WhiskError> {
    let mut written = 0;
    for pkg in CATALOG {
        written += install_package(store, pkg).await?;
        for action in pkg.actions {
            written += install_action(store, pkg.name, action).await?;
        }
        written += whisk_feeds::catalog::install(store, pkg.name).await?;
    }
    if written > 0 {
        store.flush().await?;
        tracing::info!(written, "installed the /whisk.system catalog");
    }
    Ok(written)
}

/// [`install_catalog`] for the composition root: a failure is logged and the platform serves
/// without (the rest of) the catalog rather than not at all; the next start tries again.
pub async fn install_catalog_or_log(store: &dyn Store) {
    if let Err(e) = install_catalog(store).await {
        tracing::error!(error = %e, "installing the /whisk.system catalog failed; the platform serves without it until the next start");
    }
}

async fn install_package(store: &dyn Store, pkg: &CatalogPackage) -> Result<usize, WhiskError> {
    let key = format!("{CATALOG_NAMESPACE}/{}", pkg.name);
    let annotations = key_values(pkg.annotations)?;
    let existing = match store.get_entity(EntityKind::Package, &key).await? {
        None => None,
        Some(r) => match serde_json::from_value::<Package>(r.doc) {
            Ok(p) if p.publish && p.binding.is_none() && p.annotations == annotations => {
                return Ok(0)
            }
            Ok(p) => Some((r.rev, p)),
            Err(e) => {
                tracing::warn!(error = %e, package = %key, "replacing a corrupt catalog package");
                None
            }
        },
    };
    let put = PackagePut {
        publish: Some(true),
        annotations: Some(annotations),
        ..PackagePut::default()
    };
    let doc = put.apply(
        CATALOG_NAMESPACE,
        pkg.name,
        existing.as_ref().map(|(_, p)| p),
        now_ms(),
    )?;
    let doc = serde_json::to_value(&doc).map_err(|e| WhiskError::internal(e.to_string()))?;
    let rev = existing.as_ref().map(|(r, _)| r.as_str());
    tolerate_race(store.put_entity(EntityKind::Package, &key, &doc, rev).await)?;
    Ok(1)
}

async fn install_action(
    store: &dyn Store,
    package: &str,
    spec: &CatalogAction,
) -> Result<usize, WhiskError> {
    let fqn = FullyQualifiedName::parse(
        &format!("/{CATALOG_NAMESPACE}/{package}/{}", spec.name),
        CATALOG_NAMESPACE,
    )?;
    let put_body = json!({
        "exec": {"kind": spec.kind, "code": spec.code},
        "annotations": key_values(spec.annotations)?,
        "publish": true,
    });
    let build = |existing: Option<&Action>| {
        ActionPut::from_json(put_body.to_string().as_bytes())?.apply(&fqn, existing, now_ms())
    };
    let existing = store.get_action(&fqn).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, action = %fqn, "replacing an unreadable catalog action");
        None
    });
    let wanted = build(None)?;
    if let Some(old) = &existing {
        let same = old.doc.exec == wanted.exec
            && old.doc.publish
            && old.doc.annotations == wanted.annotations;
        if same {
            return Ok(0);
        }
    }
    let action = build(existing.as_ref().map(|r| &r.doc))?;
    let doc = serde_json::to_value(&action).map_err(|e| WhiskError::internal(e.to_string()))?;
    let rev = existing.as_ref().map(|r| r.rev.as_str());
    tolerate_race(
        store
            .put_entity(EntityKind::Action, &fqn.to_string(), &doc, rev)
            .await,
    )?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use whisk_store::EmbeddedStore;

    #[tokio::test]
    async fn installs_once_and_keeps_the_table() {
        let store = EmbeddedStore::temporary().unwrap();
        let n = install_catalog(&store).await.unwrap();
        assert_eq!(n, 3 + UTILS.len() + whisk_feeds::Feed::ALL.len());
        assert_eq!(install_catalog(&store).await.unwrap(), 0, "idempotent");
        let utils = store
            .get_entity(EntityKind::Package, "whisk.system/utils")
            .await
            .unwrap()
            .unwrap();
        let p: Package = serde_json::from_value(utils.doc).unwrap();
        assert!(p.publish && p.binding.is_none());
        let fqn = FullyQualifiedName::parse("/whisk.system/utils/echo", "guest").unwrap();
        let echo = store.get_action(&fqn).await.unwrap().unwrap().doc;
        assert_eq!(echo.namespace, "whisk.system/utils");
        assert!(echo.exec.kind.starts_with("nodejs:"));
        assert_eq!(echo.version, "0.0.1");
        // A changed action is brought back to the table's code, with a new version.
        let mut changed = echo.clone();
        changed.exec.code = Some("function main() { return {} }".into());
        let rev = store.get_action(&fqn).await.unwrap().unwrap().rev;
        store
            .put_entity(
                EntityKind::Action,
                "whisk.system/utils/echo",
                &serde_json::to_value(&changed).unwrap(),
                Some(&rev),
            )
            .await
            .unwrap();
        assert_eq!(install_catalog(&store).await.unwrap(), 1);
        let back = store.get_action(&fqn).await.unwrap().unwrap().doc;
        assert_eq!(back.exec, echo.exec);
        assert_eq!(back.version, "0.0.2");
    }
}
