//! The in-process bus through the shared conformance suite.

mod common;

#[tokio::test]
async fn conformance_in_process() {
    common::conformance(&whisk_bus::InProcessBus::new(), "mem").await;
}
