//! Rules, the other half of [`Triggers`]: rule documents, and the link each keeps in its
//! trigger's `rules` map (`{"ns/r": {"action", "status"}}`), which is where the rule's status
//! lives — as in OpenWhisk's `Rules.scala`:
//!
//! - a new rule is active; an update keeps the status it had in its old trigger (inactive
//!   when that trigger is gone) and moves the link when the trigger changes; active rules may
//!   be updated and deleted;
//! - `GET` reads the status from the trigger (inactive when the trigger or the link is gone);
//! - a status change is 200 whether or not it changed anything; activating a rule whose
//!   trigger is gone is 404 "Only rules with existing triggers can be activated";
//! - deleting a rule unlinks it from its trigger (when there is one) and answers it inactive.

use super::triggers::{check_size, key, to_doc, Triggers, WRITE_ATTEMPTS};
use serde_json::Value;
use whisk_core::rule::Rule;
use whisk_core::trigger::{EntityRef, RuleStatus};
use whisk_core::{ErrorKind, FullyQualifiedName, WhiskError};
use whisk_store::{EntityKind, Revisioned, StoreError};

/// OpenWhisk's 404 when a rule whose trigger is gone is activated.
pub const RULE_WITHOUT_TRIGGER: &str = "Only rules with existing triggers can be activated";

/// OpenWhisk's 400 when a rule names a trigger or action that does not exist.
pub fn does_not_exist(what: &str, name: &EntityRef) -> WhiskError {
    WhiskError::bad_request(format!("{what} /{name} does not exist"))
}

impl Triggers {
    /// Rule `ns/name` with its revision, if it exists.
    pub async fn find_rule(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Revisioned<Rule>>, WhiskError> {
        self.find(EntityKind::Rule, namespace, name).await
    }

    /// The status of `rule`, from its trigger's `rules` map (inactive without one).
    pub async fn rule_status(&self, rule: &Rule) -> Result<RuleStatus, WhiskError> {
        let (ns, name) = split(&rule.trigger);
        Ok(self
            .find_trigger(ns, name)
            .await?
            .map_or(RuleStatus::Inactive, |t| t.doc.rule_status(&rule.key())))
    }

    /// Rule `fqn` as the API shows it (with its status), or 404.
    pub async fn rule(&self, fqn: &FullyQualifiedName) -> Result<Value, WhiskError> {
        let rule = self
            .find_rule(fqn.namespace.as_str(), fqn.name.as_str())
            .await?
            .ok_or_else(WhiskError::not_found)?
            .doc;
        let status = self.rule_status(&rule).await?;
        Ok(rule.view(status))
    }

    /// The rule documents of `namespace` (without status, as OpenWhisk lists them).
    pub async fn list_rules(
        &self,
        namespace: &str,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<Value>, WhiskError> {
        Ok(self
            .inner
            .store
            .list_entities(EntityKind::Rule, namespace, skip, limit)
            .await?)
    }

    /// Writes `rule` (over `existing`, the document it was built from, or as a new rule) and
    /// links it into its trigger: active when new, else with the status it had. The caller
    /// checked that the action exists and that the trigger existed; answers the rule's view
    /// (its status when `overwrite`, else active, as OpenWhisk answers).
    pub async fn put_rule(
        &self,
        existing: Option<Revisioned<Rule>>,
        rule: Rule,
        overwrite: bool,
    ) -> Result<Value, WhiskError> {
        check_size(&rule.annotations, "Annotations")?;
        let rule_key = rule.key();
        let status = match &existing {
            Some(old) => self.rule_status(&old.doc).await?,
            None => RuleStatus::Active,
        };
        let rev = existing.as_ref().map(|r| r.rev.as_str());
        match self
            .inner
            .store
            .put_entity(
                EntityKind::Rule,
                &key(&rule.namespace, &rule.name),
                &to_doc(&rule)?,
                rev,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict) if rev.is_none() => return Err(WhiskError::conflict()),
            Err(e) => return Err(e.into()),
        }
        if let Some(old) = existing.as_ref().filter(|o| o.doc.trigger != rule.trigger) {
            let (ns, name) = split(&old.doc.trigger);
            self.update_trigger(ns, name, |t| t.remove_rule(&rule_key))
                .await?;
        }
        let (ns, name) = split(&rule.trigger);
        let linked = self
            .update_trigger(ns, name, |t| {
                let unchanged = t
                    .rules
                    .as_ref()
                    .and_then(|r| r.get(&rule_key))
                    .is_some_and(|l| l.action == rule.action && l.status == status);
                t.add_rule(&rule_key, rule.action.clone(), status);
                !unchanged
            })
            .await?;
        if linked.is_none() {
            // The trigger went away while the rule was written: a new rule does not stay.
            if existing.is_none() {
                if let Err(e) = self
                    .inner
                    .store
                    .delete_entity(EntityKind::Rule, &key(&rule.namespace, &rule.name), None)
                    .await
                {
                    tracing::warn!(error = %e, rule = %rule_key, "removing a rule whose trigger vanished failed");
                }
            }
            return Err(does_not_exist("trigger", &rule.trigger));
        }
        Ok(rule.view(if overwrite {
            status
        } else {
            RuleStatus::Active
        }))
    }

    /// Deletes rule `fqn` (404 when absent), active or not: unlinks it from its trigger, then
    /// removes the document; answers the rule, inactive.
    pub async fn delete_rule(&self, fqn: &FullyQualifiedName) -> Result<Value, WhiskError> {
        let (ns, name) = (fqn.namespace.as_str(), fqn.name.as_str());
        for _ in 0..WRITE_ATTEMPTS {
            let existing = self
                .find_rule(ns, name)
                .await?
                .ok_or_else(WhiskError::not_found)?;
            let rule = &existing.doc;
            let (tns, tname) = split(&rule.trigger);
            let rule_key = rule.key();
            self.update_trigger(tns, tname, |t| t.remove_rule(&rule_key))
                .await?;
            match self
                .inner
                .store
                .delete_entity(EntityKind::Rule, &key(ns, name), Some(&existing.rev))
                .await
            {
                Ok(()) => return Ok(rule.view(RuleStatus::Inactive)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(WhiskError::not_found()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(WhiskError::concurrent_modification())
    }

    /// Sets the status of rule `fqn` in its trigger (404 for no such rule, or for a rule
    /// whose trigger is gone that is to become active); nothing to do when it has it already.
    pub async fn set_rule_status(
        &self,
        fqn: &FullyQualifiedName,
        status: RuleStatus,
    ) -> Result<(), WhiskError> {
        let rule = self
            .find_rule(fqn.namespace.as_str(), fqn.name.as_str())
            .await?
            .ok_or_else(WhiskError::not_found)?
            .doc;
        if self.rule_status(&rule).await? == status {
            return Ok(());
        }
        let (ns, name) = split(&rule.trigger);
        let rule_key = rule.key();
        let updated = self
            .update_trigger(ns, name, |t| {
                if t.rule_status(&rule_key) == status {
                    return false;
                }
                t.add_rule(&rule_key, rule.action.clone(), status);
                true
            })
            .await?;
        match updated {
            Some(_) => Ok(()),
            None if status == RuleStatus::Inactive => Ok(()),
            None => Err(WhiskError::new(ErrorKind::NotFound, RULE_WITHOUT_TRIGGER)),
        }
    }
}

/// `(namespace, name)` of a trigger reference (triggers are never in packages).
fn split(r: &EntityRef) -> (&str, &str) {
    (r.path.as_str(), r.name.as_str())
}
