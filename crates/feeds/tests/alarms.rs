//! The alarms provider against a real (embedded) store and a stand-in of the controller's
//! fire route: every-second cron alarms fire with their payload and the owner's key; two
//! providers never fire one scheduled time twice and hand a registration over when its
//! holder stops; a restarted provider (or one finding a crashed holder's lease) keeps firing;
//! a refused fire disables the registration with its reason; once alarms fire once; the
//! lifecycle's refusals.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use whisk_core::{now_ms, Identity};
use whisk_feeds::registration::{self, Lease};
use whisk_feeds::{Feed, FeedError};
use whisk_test_support::{eventually, wait_until};

const KEY: &str = "alarms/guest/tick";

fn gaps_ok(fires: &[Fire]) {
    for w in fires.windows(2) {
        assert!(
            w[1].at - w[0].at >= 500,
            "two fires {} ms apart: one scheduled time fired twice? {fires:?}",
            w[1].at - w[0].at
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_alarm_fires_its_payload_with_the_owners_key_until_deleted() {
    let api = Api::start().await;
    let store = store_with(&["tick"]).await;
    let r = lifecycle(
        &store,
        Feed::Alarm,
        "CREATE",
        "tick",
        json!({"cron": "* * * * * *", "trigger_payload": {"n": 1}}),
    )
    .await
    .unwrap();
    assert_eq!(r, json!({"status": "success"}));
    let (p, token) = provider("p1", &api, &store).await;
    wait_until("three fires", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= 3
    })
    .await;
    let fires = api.fires_of("/guest/tick");
    gaps_ok(&fires);
    assert_eq!(fires[0].body, json!({"n": 1}));
    let guest = Identity::guest();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(guest.api_key());
    assert_eq!(fires[0].auth, format!("Basic {basic}"));

    let read = lifecycle(&store, Feed::Alarm, "READ", "tick", json!({}))
        .await
        .unwrap();
    assert_eq!(read["config"]["cron"], "* * * * * *");
    assert_eq!(read["config"]["payload"], json!({"n": 1}));
    assert_eq!(read["status"]["active"], true);
    let doc = registration(&store, KEY).await;
    assert_eq!(doc.owner.uuid, guest.uuid);
    assert!(
        !serde_json::to_string(&doc).unwrap().contains(&guest.key),
        "the key is never stored"
    );

    // UPDATE changes the payload of the next fires.
    lifecycle(
        &store,
        Feed::Alarm,
        "UPDATE",
        "tick",
        json!({"trigger_payload": "hello"}),
    )
    .await
    .unwrap();
    wait_until(
        "a fire with the new payload",
        Duration::from_secs(10),
        || {
            api.fires_of("/guest/tick")
                .last()
                .is_some_and(|f| f.body == json!({"payload": "hello"}))
        },
    )
    .await;

    lifecycle(&store, Feed::Alarm, "DELETE", "tick", json!({}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let n = api.fires_of("/guest/tick").len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(api.fires_of("/guest/tick").len(), n, "no fire after DELETE");
    assert!(p.held().is_empty());
    let e = lifecycle(&store, Feed::Alarm, "READ", "tick", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, FeedError::Refused { status: 404, .. }), "{e}");
    stop(p, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_fire_each_time_once_and_hand_over_when_the_holder_stops() {
    let api = Api::start().await;
    let store = store_with(&["tick"]).await;
    every_second(&store, "tick").await;
    let (a, ta) = provider("a", &api, &store).await;
    let (b, tb) = provider("b", &api, &store).await;
    wait_until("four fires", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= 4
    })
    .await;
    let holder = registration(&store, KEY).await.lease.unwrap().holder;
    wait_until("one provider runs it", Duration::from_secs(10), || {
        a.held().len() + b.held().len() == 1
    })
    .await;
    let fires = api.fires_of("/guest/tick");
    gaps_ok(&fires);
    let doc = registration(&store, KEY).await;
    assert!(
        doc.fired.count as usize >= fires.len(),
        "every fire was claimed once"
    );

    // The holder stops (releasing its lease): the other takes over at once.
    let ((gone, gone_token), (other, other_token)) = if holder == "a" {
        ((a, ta), (b, tb))
    } else {
        ((b, tb), (a, ta))
    };
    stop(gone, gone_token).await;
    let before = api.fires_of("/guest/tick").len();
    wait_until("fires after the handover", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= before + 2
    })
    .await;
    gaps_ok(&api.fires_of("/guest/tick"));
    assert_eq!(
        registration(&store, KEY).await.lease.unwrap().holder,
        other.id()
    );
    stop(other, other_token).await;
}

/// The same with CouchDB as the store: its revisions are the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_on_couchdb_fire_each_time_once() {
    let api = Api::start().await;
    let (_couch, store) = couch_with(&["tick"]).await;
    every_second(&store, "tick").await;
    let (a, ta) = provider("a", &api, &store).await;
    let (b, tb) = provider("b", &api, &store).await;
    wait_until("four fires", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= 4
    })
    .await;
    gaps_ok(&api.fires_of("/guest/tick"));
    wait_until("one provider runs it", Duration::from_secs(10), || {
        a.held().len() + b.held().len() == 1
    })
    .await;
    stop(a, ta).await;
    stop(b, tb).await;
    let fires = api.fires_of("/guest/tick").len() as u64;
    assert_eq!(
        registration(&store, KEY).await.fired.count,
        fires,
        "one fire per claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_provider_keeps_firing_and_a_crashed_holders_lease_lapses() {
    let api = Api::start().await;
    let store = store_with(&["tick"]).await;
    every_second(&store, "tick").await;
    let (p, token) = provider("first", &api, &store).await;
    wait_until("two fires", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= 2
    })
    .await;
    stop(p, token).await;
    assert!(
        registration(&store, KEY).await.lease.is_none(),
        "a clean stop releases the lease"
    );
    let before = api.fires_of("/guest/tick").len();
    let (p, token) = provider("second", &api, &store).await;
    wait_until("fires after the restart", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() >= before + 2
    })
    .await;
    stop(p, token).await;

    // A holder that died without releasing: its lease lapses, then another provider fires.
    registration::modify(&store, KEY, |r| {
        r.lease = Some(Lease {
            holder: "dead".into(),
            until: now_ms() + 2000,
        });
        Ok(true)
    })
    .await
    .unwrap();
    let before = api.fires_of("/guest/tick").len();
    let started = now_ms();
    let (p, token) = provider("third", &api, &store).await;
    wait_until("a fire after the lapse", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() > before
    })
    .await;
    assert!(
        now_ms() - started >= 1500,
        "the dead holder's lease was respected"
    );
    stop(p, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fire_disables_the_registration_and_a_failing_one_does_not() {
    let api = Api::start().await;
    let store = store_with(&["tick"]).await;
    every_second(&store, "tick").await;
    api.status.store(503, std::sync::atomic::Ordering::Relaxed);
    let (p, token) = provider("p", &api, &store).await;
    eventually(
        "claimed fires while the API fails",
        Duration::from_secs(10),
        || {
            let store = store.clone();
            async move { (registration(&store, KEY).await.fired.count >= 2).then_some(()) }
        },
    )
    .await;
    assert!(
        registration(&store, KEY).await.status.active,
        "a 503 is retried, not a reason to disable"
    );

    api.status.store(404, std::sync::atomic::Ordering::Relaxed);
    let doc = disabled(&store, KEY).await;
    let reason = doc.status.reason.unwrap();
    assert_eq!(
        (reason.kind.as_str(), reason.status_code),
        ("AUTO", Some(404))
    );
    assert!(
        reason.message.starts_with("Trigger automatically disabled"),
        "{}",
        reason.message
    );
    let read = lifecycle(&store, Feed::Alarm, "READ", "tick", json!({}))
        .await
        .unwrap();
    assert_eq!(read["status"]["active"], false);
    assert_eq!(read["status"]["reason"]["statusCode"], 404);
    wait_until("the task ended", Duration::from_secs(10), || {
        p.held().is_empty()
    })
    .await;

    // UPDATE re-enables an alarm (as upstream), and it fires again.
    api.status.store(202, std::sync::atomic::Ordering::Relaxed);
    lifecycle(
        &store,
        Feed::Alarm,
        "UPDATE",
        "tick",
        json!({"cron": "* * * * * *"}),
    )
    .await
    .unwrap();
    wait_until("fires again", Duration::from_secs(10), || {
        !api.fires_of("/guest/tick").is_empty()
    })
    .await;
    stop(p, token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_fires_once_then_is_disabled_and_pause_stops_an_alarm() {
    let api = Api::start().await;
    let store = store_with(&["once", "tick"]).await;
    // The provider runs first: a once date that passed before any provider looked at it
    // disables the registration instead of firing (as upstream), so a slow start must not
    // eat the date.
    let (p, token) = provider("p", &api, &store).await;
    create(
        &store,
        Feed::Once,
        "once",
        json!({"date": now_ms() + 2500, "trigger_payload": {"x": 1}}),
    )
    .await;
    every_second(&store, "tick").await;
    wait_until("the once fire", Duration::from_secs(10), || {
        api.fires_of("/guest/once").len() == 1
    })
    .await;
    let doc = eventually("once disabled", Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let d = registration(&store, "alarms/guest/once").await;
            (!d.status.active).then_some(d)
        }
    })
    .await;
    assert_eq!(
        doc.status.reason.unwrap().message,
        "Automatically disabled after firing once"
    );
    assert_eq!(api.fires_of("/guest/once")[0].body, json!({"x": 1}));

    wait_until("tick fires", Duration::from_secs(10), || {
        !api.fires_of("/guest/tick").is_empty()
    })
    .await;
    lifecycle(&store, Feed::Alarm, "PAUSE", "tick", json!({}))
        .await
        .unwrap();
    // A fire already under way when PAUSE landed may still arrive; then none.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let n = api.fires_of("/guest/tick").len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(api.fires_of("/guest/tick").len(), n, "paused");
    let read = lifecycle(&store, Feed::Alarm, "READ", "tick", json!({}))
        .await
        .unwrap();
    assert_eq!(read["status"]["reason"]["kind"], "USER");
    lifecycle(&store, Feed::Alarm, "UNPAUSE", "tick", json!({}))
        .await
        .unwrap();
    wait_until("fires after UNPAUSE", Duration::from_secs(10), || {
        api.fires_of("/guest/tick").len() > n
    })
    .await;
    assert_eq!(api.fires_of("/guest/once").len(), 1, "once fired once");
    stop(p, token).await;
}

#[tokio::test]
async fn the_lifecycle_refuses_what_upstream_refuses() {
    let store = store_with(&["tick"]).await;
    let status = |r: Result<serde_json::Value, FeedError>| match r {
        Err(FeedError::Refused { status, .. }) => status,
        other => panic!("{other:?}"),
    };
    // No such trigger.
    assert_eq!(
        status(
            lifecycle(
                &store,
                Feed::Alarm,
                "CREATE",
                "nope",
                json!({"cron": "* * * * *"})
            )
            .await
        ),
        404
    );
    // A bad cron, an unknown event.
    assert_eq!(
        status(lifecycle(&store, Feed::Alarm, "CREATE", "tick", json!({"cron": "x"})).await),
        400
    );
    assert_eq!(
        status(lifecycle(&store, Feed::Alarm, "EXPLODE", "tick", json!({})).await),
        400
    );
    // DELETE without a registration.
    assert_eq!(
        status(lifecycle(&store, Feed::Alarm, "DELETE", "tick", json!({})).await),
        404
    );

    let guest = Identity::guest();
    let run = |params: serde_json::Value| {
        let store = store.clone();
        let guest = guest.clone();
        async move {
            let p = params.as_object().cloned().unwrap();
            whisk_feeds::lifecycle::run(&store, &guest, Feed::Alarm, &p)
                .await
                .map(|d| d.result)
        }
    };
    // A wrong key, another namespace's trigger, no trigger name.
    let wrong = format!("{}:{}", guest.uuid, "x".repeat(64));
    assert_eq!(status(run(json!({"lifecycleEvent": "CREATE", "triggerName": "/guest/tick", "authKey": wrong, "cron": "* * * * *"})).await), 401);
    assert_eq!(status(run(json!({"lifecycleEvent": "CREATE", "triggerName": "/other/tick", "cron": "* * * * *"})).await), 403);
    assert_eq!(
        status(run(json!({"lifecycleEvent": "CREATE", "cron": "* * * * *"})).await),
        400
    );
    // `_` is the owner's namespace.
    run(json!({"lifecycleEvent": "CREATE", "triggerName": "/_/tick", "cron": "* * * * *"}))
        .await
        .unwrap();
    assert!(registration::read(store.as_ref(), KEY)
        .await
        .unwrap()
        .is_some());
}
