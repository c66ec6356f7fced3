//! Protobuf messages exchanged between services (generated from `proto/whisk.proto`), and the
//! names of the topics that carry them.

#![allow(missing_docs)]

/// Generated message types of package `whisk.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/whisk.v1.rs"));
}

pub use prost::Message;
pub use v1::{
    ActivationMessage, CompletionMessage, InvokerStatus, LiveLogsMessage, LogFollowMessage,
    PingMessage,
};

/// Topic an invoker consumes its activations from.
pub fn invoker_topic(invoker_id: u32) -> String {
    format!("invoker{invoker_id}")
}

/// Topic a controller consumes completions from.
pub fn completion_topic(controller_id: u32) -> String {
    format!("completed{controller_id}")
}

/// Topic of invoker health pings.
pub const HEALTH_TOPIC: &str = "health";

/// Topic of live-log follow requests ([`LogFollowMessage`]), read by every invoker (group
/// [`log_follow_group`]).
pub const LOG_FOLLOW_TOPIC: &str = "logFollow";

/// The consumer group an invoker reads [`LOG_FOLLOW_TOPIC`] with (every invoker gets every
/// request).
pub fn log_follow_group(invoker_id: u32) -> String {
    format!("logFollow{invoker_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let m = ActivationMessage {
            activation_id: "a".repeat(32),
            blocking: true,
            ..Default::default()
        };
        let bytes = m.encode_to_vec();
        assert_eq!(ActivationMessage::decode(bytes.as_slice()).unwrap(), m);
        assert!(ActivationMessage::decode(&b"\xff\xff\xff"[..]).is_err());
    }
}
