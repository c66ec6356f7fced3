//! The catalog's feed actions: [`Feed`] names each one, [`Feed::action`] is its document in
//! `/whisk.system/<package>` (annotated `feed: true`, as OpenWhisk's catalog installs them,
//! so `wsk action get` and `wsk package get --summary` show them), and [`Feed::of`] is how the
//! controller recognises an invoke it answers itself instead of running a container: the
//! action's exec kind is [`FEED_KIND`], which no user action can have (the API's kind
//! validation refuses it), and it lives in the system namespace.

use serde_json::{json, Value};
use whisk_core::entity::KeyValue;
use whisk_core::{now_ms, Action, ActionLimits, Exec};
use whisk_store::{EntityKind, Store, StoreError};

/// The exec kind of the built-in feed actions.
pub const FEED_KIND: &str = "builtin:feed";

/// The system namespace the catalog lives in.
pub const SYSTEM_NAMESPACE: &str = "whisk.system";

/// One feed action of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// `/whisk.system/alarms/alarm`: a cron schedule.
    Alarm,
    /// `/whisk.system/alarms/once`: one date.
    Once,
    /// `/whisk.system/alarms/interval`: every N minutes.
    Interval,
    /// `/whisk.system/messaging/kafkaFeed`: batches of a Kafka topic's messages.
    Kafka,
}

/// The exec of a feed action: its kind only (built from JSON, so fields added to [`Exec`]
/// later keep their defaults).
fn feed_exec() -> Exec {
    serde_json::from_value(json!({ "kind": FEED_KIND }))
        .expect("an exec of a kind alone is well-formed: every other field has a default")
}

/// The providers, by catalog package.
pub const PROVIDERS: [&str; 2] = ["alarms", "messaging"];

impl Feed {
    /// Every feed action.
    pub const ALL: [Feed; 4] = [Feed::Alarm, Feed::Once, Feed::Interval, Feed::Kafka];

    /// The catalog package (and provider) of this feed.
    pub fn package(self) -> &'static str {
        match self {
            Feed::Alarm | Feed::Once | Feed::Interval => "alarms",
            Feed::Kafka => "messaging",
        }
    }

    /// The action's name in its package.
    pub fn name(self) -> &'static str {
        match self {
            Feed::Alarm => "alarm",
            Feed::Once => "once",
            Feed::Interval => "interval",
            Feed::Kafka => "kafkaFeed",
        }
    }

    /// `/whisk.system/<package>/<name>`.
    pub fn path(self) -> String {
        format!("/{SYSTEM_NAMESPACE}/{}/{}", self.package(), self.name())
    }

    /// The feed named `name` in package `package`.
    pub fn named(package: &str, name: &str) -> Option<Feed> {
        Feed::ALL
            .into_iter()
            .find(|f| f.package() == package && f.name() == name)
    }

    /// The feed `action` is, when it is one of the catalog's built-in feed actions.
    pub fn of(action: &Action) -> Option<Feed> {
        if action.exec.kind != FEED_KIND {
            return None;
        }
        let package = action
            .namespace
            .strip_prefix(SYSTEM_NAMESPACE)?
            .strip_prefix('/')?;
        Feed::named(package, &action.name)
    }

    fn description(self) -> &'static str {
        match self {
            Feed::Alarm => "Fire trigger when alarm occurs",
            Feed::Once => "Fire trigger once when alarm occurs",
            Feed::Interval => "Fire trigger at specified interval",
            Feed::Kafka => "Feed to listen to Kafka messages",
        }
    }

    fn parameters(self) -> Value {
        let p = |name: &str, required: bool| json!({"name": name, "required": required});
        Value::Array(match self {
            Feed::Alarm => vec![
                p("cron", true),
                p("trigger_payload", false),
                p("startDate", false),
                p("stopDate", false),
                p("maxTriggers", false),
            ],
            Feed::Once => vec![
                p("date", true),
                p("trigger_payload", false),
                p("deleteAfterFire", false),
            ],
            Feed::Interval => vec![
                p("minutes", true),
                p("trigger_payload", false),
                p("startDate", false),
                p("stopDate", false),
            ],
            Feed::Kafka => vec![
                p("brokers", true),
                p("topic", true),
                p("isJSONData", false),
                p("isBinaryKey", false),
                p("isBinaryValue", false),
            ],
        })
    }

    /// The action document the catalog installs for this feed, updated at `updated`.
    pub fn action(self, updated: i64) -> Action {
        let annotation = |key: &str, value: Value| KeyValue {
            key: key.to_string(),
            value,
        };
        Action {
            namespace: format!("{SYSTEM_NAMESPACE}/{}", self.package()),
            name: self.name().to_string(),
            version: "0.0.1".to_string(),
            publish: true,
            exec: feed_exec(),
            parameters: vec![],
            annotations: vec![
                annotation("feed", json!(true)),
                annotation("description", json!(self.description())),
                annotation("parameters", self.parameters()),
                annotation("exec", json!(FEED_KIND)),
            ],
            limits: ActionLimits::default(),
            updated,
        }
    }
}

/// The catalog's feed actions of `package` (empty for a package without feeds).
pub fn actions_of(package: &str, updated: i64) -> Vec<Action> {
    Feed::ALL
        .into_iter()
        .filter(|f| f.package() == package)
        .map(|f| f.action(updated))
        .collect()
}

/// Writes the feed actions of catalog `package` to `store` where they are missing or differ
/// (exec, annotations, publish); answers how many it wrote. A write that loses a race to
/// another controller installing the same action is not an error. (The catalog's installer
/// calls this for each of its packages: a feed's exec kind is not one a PUT accepts.)
pub async fn install(store: &dyn Store, package: &str) -> Result<usize, StoreError> {
    let mut written = 0;
    for wanted in actions_of(package, now_ms()) {
        let key = format!("{}/{}", wanted.namespace, wanted.name);
        let existing = store.get_entity(EntityKind::Action, &key).await?;
        let mut doc = wanted.clone();
        if let Some(r) = &existing {
            if let Ok(old) = serde_json::from_value::<Action>(r.doc.clone()) {
                if old.exec == wanted.exec
                    && old.annotations == wanted.annotations
                    && old.publish == wanted.publish
                {
                    continue;
                }
                doc.version = whisk_core::entity::bump_patch(&old.version);
            }
        }
        let value = serde_json::to_value(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rev = existing.as_ref().map(|r| r.rev.as_str());
        match store
            .put_entity(EntityKind::Action, &key, &value, rev)
            .await
        {
            Ok(_) => written += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_actions_are_recognised_and_user_lookalikes_are_not() {
        for f in Feed::ALL {
            let a = f.action(1);
            assert_eq!(Feed::of(&a), Some(f));
            assert_eq!(
                f.path(),
                format!("/whisk.system/{}/{}", f.package(), f.name())
            );
            let mut elsewhere = a.clone();
            elsewhere.namespace = format!("guest/{}", f.package());
            assert_eq!(Feed::of(&elsewhere), None);
            let mut code = a.clone();
            code.exec.kind = "nodejs:20".into();
            assert_eq!(Feed::of(&code), None);
        }
        assert_eq!(actions_of("alarms", 0).len(), 3);
        assert_eq!(actions_of("messaging", 0).len(), 1);
        assert!(actions_of("utils", 0).is_empty());
    }

    #[tokio::test]
    async fn install_writes_missing_or_changed_actions_once() {
        let store = whisk_store::EmbeddedStore::temporary().unwrap();
        assert_eq!(install(&store, "alarms").await.unwrap(), 3);
        assert_eq!(install(&store, "alarms").await.unwrap(), 0);
        assert_eq!(install(&store, "messaging").await.unwrap(), 1);
        let got = store
            .get_entity(EntityKind::Action, "whisk.system/alarms/alarm")
            .await
            .unwrap()
            .unwrap();
        let a: Action = serde_json::from_value(got.doc).unwrap();
        assert_eq!(Feed::of(&a), Some(Feed::Alarm));
        assert!(a.publish);
    }
}
