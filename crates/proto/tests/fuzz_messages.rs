//! Property tests of the bus messages (`proto/whisk.proto`): decoding arbitrary bytes never
//! panics, and whatever decodes re-encodes to a message that decodes to the same value.
//!
//! Inputs are raw bytes and protobuf wire records of any field number and wire type, nested
//! and truncated ([`fuzz::protobuf`]), so most cases reach the field decoders rather than
//! failing at the first byte. `WHISK_FUZZ_CASES` multiplies the case counts.

use proptest::prelude::*;
use whisk_proto::{ActivationMessage, CompletionMessage, Message, PingMessage};
use whisk_test_support::fuzz::{self, Xorshift};

/// Decodes `bytes` as `M`; a message that decodes must survive encode → decode unchanged.
fn decode_round_trips<M: Message + Default + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(m) = M::decode(bytes) {
        let again = M::decode(m.encode_to_vec().as_slice()).map_err(|e| {
            TestCaseError::fail(format!(
                "{m:?} re-encoded does not decode: {e} (input {bytes:?})"
            ))
        })?;
        prop_assert_eq!(&again, &m, "input {:?}", bytes);
        prop_assert_eq!(again.encoded_len(), m.encoded_len());
    }
    Ok(())
}

fn all_messages(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_round_trips::<ActivationMessage>(bytes)?;
    decode_round_trips::<CompletionMessage>(bytes)?;
    decode_round_trips::<PingMessage>(bytes)
}

proptest! {
    #![proptest_config(fuzz::cases(40_000))]

    /// The bulk: wire records expanded from a seed, decoded as every message type.
    #[test]
    fn wire_records_decode_without_panic(seed in any::<u64>()) {
        all_messages(&fuzz::protobuf(&mut Xorshift::new(seed), 2))?;
    }
}

proptest! {
    #![proptest_config(fuzz::cases(3_000))]

    /// Raw bytes (shrinking to the shortest failing input).
    #[test]
    fn raw_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        all_messages(&bytes)?;
    }

    /// Messages built field by field round-trip exactly.
    #[test]
    fn built_messages_round_trip(
        ids in (any::<String>(), any::<String>()),
        invoker in any::<u32>(),
        record in proptest::collection::vec(any::<u8>(), 0..128),
        flag in any::<bool>(),
        numbers in (any::<u64>(), any::<u64>(), any::<i32>(), any::<i64>()),
    ) {
        let c = CompletionMessage {
            transaction_id: ids.0.clone(),
            activation_id: ids.1.clone(),
            invoker_id: invoker,
            activation: record,
            system_error: flag,
            memory_mb: numbers.0,
            live_logs: None,
        };
        prop_assert_eq!(CompletionMessage::decode(c.encode_to_vec().as_slice()).ok(), Some(c));
        let p = PingMessage {
            invoker_id: invoker,
            user_memory_mb: numbers.0,
            free_memory_mb: numbers.1,
            status: numbers.2,
            containers: invoker,
            sent_at_ms: numbers.3,
        };
        prop_assert_eq!(PingMessage::decode(p.encode_to_vec().as_slice()).ok(), Some(p));
        let a = ActivationMessage {
            transaction_id: ids.0,
            activation_id: ids.1,
            blocking: flag,
            accepted_at_ms: numbers.3,
            ..Default::default()
        };
        prop_assert_eq!(ActivationMessage::decode(a.encode_to_vec().as_slice()).ok(), Some(a));
    }
}
