//! Message headers (the W3C trace context rides there) travel with their message on the
//! in-process bus and on Kafka (a real tansu broker); a message published without headers
//! arrives with none.

mod common;

use bytes::Bytes;
use common::next;
use whisk_bus::{Bus, Headers, InProcessBus, KafkaBus, KafkaConfig};
use whisk_test_support::services::Tansu;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn headers_travel(bus: &dyn Bus, topic: &str) {
    bus.ensure_topic(topic).await.unwrap();
    let mut c = bus.subscribe(topic, topic).await.unwrap();
    let headers: Headers = vec![
        ("traceparent".into(), TP.into()),
        ("tracestate".into(), "k=v".into()),
    ];
    bus.publish_with_headers(topic, Bytes::from_static(b"with"), headers.clone())
        .await
        .unwrap();
    bus.publish(topic, Bytes::from_static(b"without"))
        .await
        .unwrap();
    let d = next(&mut c, "the message with headers").await;
    assert_eq!(&d.payload[..], b"with");
    assert_eq!(d.headers, headers);
    let d = next(&mut c, "the message without headers").await;
    assert_eq!(&d.payload[..], b"without");
    assert!(d.headers.is_empty(), "{:?}", d.headers);
}

#[tokio::test]
async fn headers_in_process() {
    headers_travel(&InProcessBus::new(), "headers").await;
}

#[tokio::test]
async fn headers_over_kafka() {
    let broker = Tansu::start();
    let bus = KafkaBus::new(KafkaConfig {
        brokers: broker.brokers(),
        ..Default::default()
    })
    .unwrap();
    headers_travel(&bus, "headers").await;
}
