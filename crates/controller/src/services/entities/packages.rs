//! Packages and bindings in the store, with OpenWhisk's rules (upstream `Packages.scala`):
//! create or update (`overwrite`; a binding's package must exist and be readable, and may not
//! be a binding), read (a binding shows the bound package's actions, its parameters merged
//! under the binding's), delete (a package with actions only with `force`, which deletes them
//! first), and lists (another namespace's list shows its published packages only).

use super::Entities;
use serde_json::Value;
use std::sync::Arc;
use whisk_core::package::{messages, PackagePut};
use whisk_core::{now_ms, Action, ErrorKind, Identity, Package, WhiskError};
use whisk_store::{EntityKind, Revisioned, StoreError};

/// Page size when a listing must read a whole collection.
const PAGE: usize = 500;

impl Entities {
    /// The stored package or binding `ns/name`, if any.
    pub async fn stored_package(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Revisioned<Package>>, WhiskError> {
        let key = format!("{ns}/{name}");
        Ok(whisk_store::get_typed(&*self.inner.store, EntityKind::Package, &key).await?)
    }

    /// The package or binding `ns/name` from the store, or through the package cache when
    /// `cached` (the invoke path).
    pub(super) async fn load_package(
        &self,
        ns: &str,
        name: &str,
        cached: bool,
    ) -> Result<Option<Arc<Revisioned<Package>>>, WhiskError> {
        if !cached {
            return Ok(self.stored_package(ns, name).await?.map(Arc::new));
        }
        self.inner
            .packages
            .get_with(format!("{ns}/{name}"), || self.stored_package(ns, name))
            .await
    }

    /// Every document of `kind` in namespace `ns` (packaged ones included), read page by page.
    pub(super) async fn all_of(
        &self,
        kind: EntityKind,
        ns: &str,
    ) -> Result<Vec<Value>, WhiskError> {
        let mut out = Vec::new();
        loop {
            let page = self.list(kind, ns, out.len(), PAGE).await?;
            let n = page.len();
            out.extend(page);
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// The actions of package `package` (not of a binding: pass its provider).
    pub async fn actions_of(&self, package: &Package) -> Result<Vec<Action>, WhiskError> {
        let path = package.key();
        let docs = self.all_of(EntityKind::Action, &package.namespace).await?;
        Ok(docs
            .into_iter()
            .filter(|d| d.get("namespace").and_then(Value::as_str) == Some(path.as_str()))
            .filter_map(|d| match serde_json::from_value::<Action>(d) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, package = %path, "skipping a corrupt action document");
                    None
                }
            })
            .collect())
    }

    /// `GET .../packages/{name}`: the package with its `actions` and `feeds`; a binding with
    /// the bound package's parameters under its own and the bound package's actions.
    pub async fn package_view(
        &self,
        caller: &Identity,
        ns: &str,
        name: &str,
    ) -> Result<Value, WhiskError> {
        let readable = self.readable_package(caller, ns, name).await?;
        let mut shown = readable.package.doc.clone();
        shown.parameters = readable.parameters();
        let actions = self.actions_of(readable.provider()).await?;
        Ok(shown.view_with_actions(&actions))
    }

    /// Creates `ns/name` from `put` (the caller's own namespace), or updates it when it exists
    /// and `overwrite` (else 409); answers the stored document.
    pub async fn put_package(
        &self,
        caller: &Identity,
        ns: &str,
        name: &str,
        mut put: PackagePut,
        overwrite: bool,
    ) -> Result<Package, WhiskError> {
        put.resolve_binding(ns)?;
        // As upstream: the caller must be able to read the bound package, then the usual
        // create-or-update checks, then the bound package must be a package.
        let bound = match &put.binding {
            Some(b) => Some(self.check_bindable(caller, &b.namespace, &b.name).await?),
            None => None,
        };
        let existing = self.stored_package(ns, name).await?;
        if existing.is_some() && !overwrite {
            return Err(WhiskError::conflict());
        }
        let old = existing.as_ref().map(|r| &r.doc);
        let becomes_binding = old.is_some_and(|p| p.binding.is_none()) && bound.is_some();
        if !becomes_binding && bound.is_some_and(|b| b.binding.is_some()) {
            return Err(WhiskError::bad_request(
                messages::BINDING_CANNOT_REFERENCE_BINDING,
            ));
        }
        let package = put.apply(ns, name, old, now_ms())?;
        let doc =
            serde_json::to_value(&package).map_err(|e| WhiskError::internal(e.to_string()))?;
        let rev = existing.as_ref().map(|r| r.rev.as_str());
        match self
            .inner
            .store
            .put_entity(EntityKind::Package, &package.key(), &doc, rev)
            .await
        {
            Ok(_) => {
                self.invalidate_key(package.key());
                Ok(package)
            }
            Err(StoreError::Conflict) if rev.is_none() => Err(WhiskError::conflict()),
            Err(e) => Err(e.into()),
        }
    }

    /// The package a binding names, if the caller may read it: 400 when it does not exist in
    /// the caller's namespace, 403 when it is another namespace's and not published (or
    /// missing, or a binding there).
    async fn check_bindable(
        &self,
        caller: &Identity,
        ns: &str,
        name: &str,
    ) -> Result<Package, WhiskError> {
        match self.readable_package(caller, ns, name).await {
            Ok(r) => Ok(r.package.doc.clone()),
            Err(e) if e.kind == ErrorKind::NotFound => {
                Err(WhiskError::bad_request(messages::BINDING_DOES_NOT_EXIST))
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes package `ns/name` (404 when absent). A package with actions is refused (409)
    /// unless `force`, which deletes them first; a binding always goes. Answers the deleted
    /// document.
    pub async fn delete_package(
        &self,
        ns: &str,
        name: &str,
        force: bool,
    ) -> Result<Package, WhiskError> {
        let existing = self
            .stored_package(ns, name)
            .await?
            .ok_or_else(WhiskError::not_found)?;
        if existing.doc.binding.is_none() {
            let actions = self.actions_of(&existing.doc).await?;
            if !actions.is_empty() && !force {
                return Err(WhiskError::new(
                    ErrorKind::Conflict,
                    messages::not_empty(actions.len()),
                ));
            }
            for a in &actions {
                match self.delete_action(&a.fqn()?).await {
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.inner
            .store
            .delete_entity(
                EntityKind::Package,
                &existing.doc.key(),
                Some(&existing.rev),
            )
            .await?;
        self.invalidate_key(existing.doc.key());
        Ok(existing.doc)
    }

    /// The package summaries of `ns` as `caller` may list them: all of its own namespace's,
    /// only the published packages (no bindings) of another's; `skip`/`limit` over those.
    pub async fn list_packages(
        &self,
        caller: &Identity,
        ns: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        let docs = if ns == caller.namespace {
            self.list(EntityKind::Package, ns, skip, limit).await?
        } else {
            let public = self.public_packages(ns).await?;
            public.into_iter().skip(skip).take(limit).collect()
        };
        Ok(docs
            .into_iter()
            .filter_map(|d| match serde_json::from_value::<Package>(d) {
                Ok(p) => Some(p.summary()),
                Err(e) => {
                    tracing::warn!(error = %e, %ns, "skipping a corrupt package document");
                    None
                }
            })
            .collect())
    }

    /// How many packages [`Entities::list_packages`] would show `caller` in `ns`.
    pub async fn count_packages(&self, caller: &Identity, ns: &str) -> Result<usize, WhiskError> {
        if ns == caller.namespace {
            self.count(EntityKind::Package, ns).await
        } else {
            Ok(self.public_packages(ns).await?.len())
        }
    }

    async fn public_packages(&self, ns: &str) -> Result<Vec<Value>, WhiskError> {
        let all = self.all_of(EntityKind::Package, ns).await?;
        Ok(all
            .into_iter()
            .filter(|d| {
                let published = d.get("publish").and_then(Value::as_bool) == Some(true);
                let binding = d
                    .get("binding")
                    .and_then(Value::as_object)
                    .is_some_and(|b| !b.is_empty());
                published && !binding
            })
            .collect())
    }

    /// 404 unless the package of a packaged action `fqn` exists; 400 when it is a binding
    /// (actions are written in packages, never through bindings).
    pub(super) async fn check_writable_package(
        &self,
        fqn: &whisk_core::FullyQualifiedName,
    ) -> Result<(), WhiskError> {
        let Some(pkg) = &fqn.package else {
            return Ok(());
        };
        match self
            .stored_package(fqn.namespace.as_str(), pkg.as_str())
            .await?
        {
            None => Err(WhiskError::not_found()),
            Some(p) if p.doc.binding.is_some() => {
                Err(WhiskError::bad_request(messages::NOT_ALLOWED_ON_BINDING))
            }
            Some(_) => Ok(()),
        }
    }
}
