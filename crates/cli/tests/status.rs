//! `whisk status` against the real services of distributed mode (`scripts/services.sh up`:
//! tansu, pouchdb-server, Redis): each backend is reported up through its seam's probe, and
//! probing leaves the services as they were — no topic appears on the broker, no database in
//! CouchDB.

mod support;

use support::whisk_status;
use whisk_bus::kafka::probe;
use whisk_bus::KafkaConfig;
use whisk_test_support::services::Services;

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_the_services_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let services = Services::up(&tmp.path().join("services"));
    let kafka = services.kafka();
    let couch = services.couchdb();
    let redis = services.redis();
    let brokers = KafkaConfig {
        brokers: kafka.clone(),
        ..Default::default()
    };
    let before = probe(&brokers).await.expect("the broker answers metadata");

    let args = [
        "--controller",
        "http://127.0.0.1:1",
        "--kafka",
        &kafka,
        "--couchdb",
        &couch,
        "--redis",
        &redis,
    ];
    let env = [("WHISK_COUCHDB__DB_PREFIX", "whisk_status_")];
    let (code, checks) = whisk_status(&args, &env);
    // No controller there: exit 1, and every backend still probed.
    assert_eq!(code, 1, "{checks:#?}");
    assert_eq!(checks["controller"]["state"], "down", "{checks:#?}");
    for up in ["kafka", "couchdb", "redis"] {
        assert_eq!(checks[up]["state"], "up", "{checks:#?}");
    }
    assert_eq!(checks["directory"]["state"], "embedded", "{checks:#?}");
    assert_eq!(checks["kafka"]["address"], kafka.as_str());
    let detail = |s: &str| checks[s]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail("kafka").starts_with("1 broker, "), "{checks:#?}");
    assert!(
        detail("couchdb").starts_with("pouchdb-server ")
            && detail("couchdb").contains("no databases whisk_status_* yet"),
        "{checks:#?}"
    );
    assert!(detail("redis").starts_with("redis "), "{checks:#?}");

    // Twice, then the broker still has exactly the topics it had: none created (the probe of
    // the bus is a metadata request, not `ensure_topic`).
    let (again, _) = whisk_status(&args, &env);
    assert_eq!(again, 1);
    let after = probe(&brokers).await.unwrap();
    assert_eq!(after.topics, before.topics, "whisk status created topics");
    assert!(
        !after.topics.iter().any(|t| t == whisk_proto::HEALTH_TOPIC),
        "{:?}",
        after.topics
    );
    // Nor a database.
    let (_, checks) = whisk_status(&args, &env);
    assert!(
        detail("couchdb") == checks["couchdb"]["detail"].as_str().unwrap_or_default(),
        "{checks:#?}"
    );
}
