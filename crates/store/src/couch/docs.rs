//! The pure part of the CouchDB backend: document ids, the shape of stored documents, and
//! the view queries behind listing and counting. No I/O here, so all of it is unit-tested.
//!
//! Document ids (escaped by [`doc_id`] so that none starts with `_`, which CouchDB reserves):
//! - entities (`whisks` database): `"<kind>/<ns>[/<pkg>]/<name>"`, e.g. `actions/guest/hello`,
//!   so the same name under two kinds is two documents;
//! - activations (`activations`): `"<namespace>/<activationId>"`, as OpenWhisk;
//! - identities (`subjects`): the key's uuid.

use crate::{ActivationQuery, EntityKind, StoreError};
use couch_rs::types::query::QueryParams;
use serde_json::{json, Map, Value};
use whisk_core::{Activation, Identity};

/// The design document every database carries; the version in its name changes whenever a
/// view changes, so an old deployment's design document never serves a new query.
pub(super) const DESIGN: &str = "whisk-v1";
/// View of `whisks`: `[kind, root namespace, -updated, name]`, reduce `_count`.
pub(super) const ENTITIES_VIEW: &str = "by_namespace";
/// View of `activations`: `[namespace, start]`, reduce `_count`.
pub(super) const ACTIVATIONS_VIEW: &str = "by_namespace";
/// View of `activations`: `[namespace, name key, start]` (see [`name_keys`]), reduce `_count`.
pub(super) const ACTIVATIONS_BY_NAME_VIEW: &str = "by_name";
/// View of `subjects`: `namespace`.
pub(super) const SUBJECTS_VIEW: &str = "by_namespace";

/// Fields the backend adds to an activation record; removed again when reading.
const ACTIVATION_EXTRA: [&str; 4] = ["_id", "_rev", "entityType", "nameKeys"];

/// The design document of the entity database.
pub(super) fn entities_design() -> Value {
    json!({
        "language": "javascript",
        "views": {
            ENTITIES_VIEW: {
                "map": "function (d) { if (d.kind && typeof d.root === 'string') { emit([d.kind, d.root, -d.updated, d.name], null); } }",
                "reduce": "_count"
            }
        }
    })
}

/// The design document of the activation database.
pub(super) fn activations_design() -> Value {
    json!({
        "language": "javascript",
        "views": {
            ACTIVATIONS_VIEW: {
                "map": "function (d) { if (d.entityType === 'activation') { emit([d.namespace, d.start], null); } }",
                "reduce": "_count"
            },
            ACTIVATIONS_BY_NAME_VIEW: {
                "map": "function (d) { if (d.entityType === 'activation' && d.nameKeys) { for (var i = 0; i < d.nameKeys.length; i++) { emit([d.namespace, d.nameKeys[i], d.start], null); } } }",
                "reduce": "_count"
            }
        }
    })
}

/// The design document of the subject database.
pub(super) fn subjects_design() -> Value {
    json!({
        "language": "javascript",
        "views": {
            SUBJECTS_VIEW: {
                "map": "function (d) { if (typeof d.uuid === 'string') { emit(d.namespace, null); } }"
            }
        }
    })
}

/// Escapes `raw` into a valid CouchDB document id: an id that is empty or starts with `_`
/// (reserved by CouchDB) or `%` (the escape itself) gets a `%` in front. Injective.
pub(super) fn doc_id(raw: &str) -> String {
    if raw.is_empty() || raw.starts_with('_') || raw.starts_with('%') {
        format!("%{raw}")
    } else {
        raw.to_string()
    }
}

/// Id of an entity document.
pub(super) fn entity_id(kind: EntityKind, key: &str) -> String {
    doc_id(&format!("{}/{key}", kind.as_str()))
}

/// Id of an activation document.
pub(super) fn activation_id(namespace: &str, id: &str) -> String {
    doc_id(&format!("{namespace}/{id}"))
}

/// Id of a subject document.
pub(super) fn identity_id(uuid: &str) -> String {
    doc_id(uuid)
}

/// The URL path of document `id` in database `db`: every byte of the id but ASCII letters,
/// digits and `-_~` percent-encoded (so `/`, `+`, space and `.` all survive).
pub(super) fn doc_path(db: &str, id: &str) -> String {
    let mut path = format!("/{db}/");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_~".contains(&b) {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path
}

/// The stored form of an entity: the caller's document under `doc`, beside the fields the
/// view indexes (`kind`, `root` namespace, `updated`, `name`) and the full `key`. Wrapping
/// keeps any field name of the caller's document (even `_id`) out of CouchDB's way.
pub(super) fn entity_envelope(
    kind: EntityKind,
    key: &str,
    doc: &Value,
    rev: Option<&str>,
) -> Value {
    let root = key.split('/').next().unwrap_or_default();
    let updated = doc.get("updated").and_then(Value::as_i64).unwrap_or(0);
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_else(|| key.rsplit('/').next().unwrap_or_default());
    let mut env = json!({
        "_id": entity_id(kind, key),
        "kind": kind.as_str(),
        "root": root,
        "key": key,
        "updated": updated,
        "name": name,
        "doc": doc,
    });
    if let Some(rev) = rev {
        env["_rev"] = json!(rev);
    }
    env
}

/// The caller's document and revision out of a stored entity.
pub(super) fn entity_from_envelope(mut env: Value) -> Result<(String, Value), StoreError> {
    let rev = env
        .get("_rev")
        .and_then(Value::as_str)
        .ok_or_else(|| StoreError::Corrupt("entity without _rev".into()))?
        .to_string();
    let doc = env
        .get_mut("doc")
        .map(Value::take)
        .ok_or_else(|| StoreError::Corrupt("entity without doc".into()))?;
    Ok((rev, doc))
}

/// The keys under which an activation is found by name (`ActivationQuery::name`): its
/// `name` when that has no slash (matches a query without a slash), and every part of its
/// `path` annotation after a `/` that itself contains a slash (matches a query such as
/// `pkg/fib`, which means "path ends with `/pkg/fib`"). Mirrors [`ActivationQuery::matches`].
pub(super) fn name_keys(a: &Activation) -> Vec<String> {
    let mut keys = Vec::new();
    if !a.name.contains('/') {
        keys.push(a.name.clone());
    }
    if let Some(path) = a.path() {
        for (i, _) in path.match_indices('/') {
            let suffix = &path[i + 1..];
            if suffix.contains('/') {
                keys.push(suffix.to_string());
            }
        }
    }
    keys
}

/// The stored form of an activation: the record's own fields (as OpenWhisk stores them)
/// plus `_id`, `entityType: "activation"` and `nameKeys` (see [`name_keys`]).
pub(super) fn activation_doc(a: &Activation) -> Result<Value, StoreError> {
    let mut doc = serde_json::to_value(a)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode activation: {e}")))?;
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| StoreError::Corrupt("activation is not an object".into()))?;
    obj.insert(
        "_id".into(),
        json!(activation_id(&a.namespace, a.activation_id.as_str())),
    );
    obj.insert("entityType".into(), json!("activation"));
    obj.insert("nameKeys".into(), json!(name_keys(a)));
    Ok(doc)
}

/// An activation record out of its stored form.
pub(super) fn activation_from_doc(mut doc: Value) -> Result<Activation, StoreError> {
    if let Some(obj) = doc.as_object_mut() {
        for field in ACTIVATION_EXTRA {
            obj.remove(field);
        }
    }
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt(format!("activation: {e}")))
}

/// The stored form of an identity: its fields plus `_id` (and `_rev` when replacing).
pub(super) fn identity_doc(i: &Identity, rev: Option<&str>) -> Result<Value, StoreError> {
    let mut doc = serde_json::to_value(i)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode identity: {e}")))?;
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| StoreError::Corrupt("identity is not an object".into()))?;
    obj.insert("_id".into(), json!(identity_id(&i.uuid)));
    if let Some(rev) = rev {
        obj.insert("_rev".into(), json!(rev));
    }
    Ok(doc)
}

/// An identity out of its stored form.
pub(super) fn identity_from_doc(mut doc: Value) -> Result<Identity, StoreError> {
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("_id");
        obj.remove("_rev");
    }
    serde_json::from_value(doc).map_err(|e| StoreError::Corrupt(format!("identity: {e}")))
}

/// `{}` sorts after every other JSON value in CouchDB's view collation.
fn high() -> Value {
    Value::Object(Map::new())
}

/// The view query over the entities of `kind` in `namespace`: ascending keys
/// `[kind, ns, -updated, name]` are "most recently updated first, then by name".
/// `page` is `Some((skip, limit))` for a listing, `None` for a count.
pub(super) fn entity_query(
    kind: EntityKind,
    namespace: &str,
    page: Option<(usize, usize)>,
) -> QueryParams<Value> {
    let q = QueryParams::default()
        .start_key(json!([kind.as_str(), namespace]))
        .end_key(json!([kind.as_str(), namespace, high()]));
    paged(q, page)
}

/// The view and query over the activations of `namespace` matching `query`'s name and time
/// filters, newest first (`None` when the time bounds are inverted: nothing matches).
/// `page` is `Some((skip, limit))` for a listing, `None` for a count.
pub(super) fn activation_query(
    namespace: &str,
    query: &ActivationQuery,
    page: Option<(usize, usize)>,
) -> Option<(&'static str, QueryParams<Value>)> {
    if let (Some(since), Some(upto)) = (query.since, query.upto) {
        if since > upto {
            return None;
        }
    }
    let mut prefix = vec![json!(namespace)];
    let view = match &query.name {
        Some(name) => {
            prefix.push(json!(name));
            ACTIVATIONS_BY_NAME_VIEW
        }
        None => ACTIVATIONS_VIEW,
    };
    // Descending: from the upper bound down to the lower one.
    let mut start = prefix.clone();
    start.push(query.upto.map_or_else(high, |u| json!(u)));
    let mut end = prefix;
    if let Some(since) = query.since {
        end.push(json!(since));
    }
    let q = QueryParams::default()
        .descending(true)
        .start_key(Value::Array(start))
        .end_key(Value::Array(end));
    Some((view, paged(q, page)))
}

/// Listing (`reduce=false`, documents included, skip/limit) or counting (`reduce=true`).
fn paged(q: QueryParams<Value>, page: Option<(usize, usize)>) -> QueryParams<Value> {
    match page {
        Some((skip, limit)) => {
            let q = q.reduce(false).include_docs(true).limit(limit as u64);
            if skip > 0 {
                q.skip(skip as u64)
            } else {
                q
            }
        }
        None => q.reduce(true),
    }
}

#[cfg(test)]
mod tests;
