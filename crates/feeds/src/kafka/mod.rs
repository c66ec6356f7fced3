//! The Kafka feed (`/whisk.system/messaging/kafkaFeed`) with openwhisk-package-kafka's
//! semantics: CREATE parameters `brokers` (a list, or a comma-separated string), `topic`,
//! `isJSONData`, `isBinaryKey`, `isBinaryValue`; UPDATE of the three flags only; messages
//! fired in batches `{"messages": [{topic, partition, offset, key, value}]}` of at most
//! [`PAYLOAD_LIMIT`] bytes (a single larger message is skipped, as upstream).
//!
//! - this file: parameters and the mapping of a message to its place in a batch.
//! - [`consumer`]: the consumer a provider runs for a registration it holds.

pub mod consumer;

use crate::FeedError;
use base64::Engine;
use serde_json::{json, Map, Value};

/// Largest fire payload a batch makes (upstream's `PAYLOAD_LIMIT` default).
pub const PAYLOAD_LIMIT: usize = 900_000;

/// True for `true` and any casing of the string `"true"` (upstream's `getBooleanFromArgs`).
fn flag(params: &Map<String, Value>, key: &str) -> bool {
    match params.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The configuration a CREATE registers, checked as upstream does.
pub fn create(params: &Map<String, Value>) -> Result<Map<String, Value>, FeedError> {
    let topic = match params.get("topic") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        _ => return Err(FeedError::bad("You must supply a 'topic' parameter.")),
    };
    let brokers: Vec<String> = match params.get("brokers") {
        None | Some(Value::Null) => {
            return Err(FeedError::bad("You must supply a 'brokers' parameter."))
        }
        Some(Value::String(s)) => s
            .split(',')
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
            .collect(),
        Some(_) => vec![],
    };
    if brokers.is_empty() {
        return Err(FeedError::bad(
            "You must supply a 'brokers' parameter as an array of Kafka brokers.",
        ));
    }
    let json_data = flag(params, "isJSONData");
    let binary_value = flag(params, "isBinaryValue");
    if json_data && binary_value {
        return Err(FeedError::bad(
            "isJSONData and isBinaryValue cannot both be enabled.",
        ));
    }
    let mut c = Map::new();
    c.insert("brokers".into(), json!(brokers));
    c.insert("topic".into(), json!(topic));
    c.insert("isJSONData".into(), json!(json_data));
    c.insert("isBinaryValue".into(), json!(binary_value));
    c.insert("isBinaryKey".into(), json!(flag(params, "isBinaryKey")));
    Ok(c)
}

/// Applies an UPDATE (the three encoding flags only).
pub fn update(
    config: &mut Map<String, Value>,
    params: &Map<String, Value>,
) -> Result<(), FeedError> {
    let keys = ["isJSONData", "isBinaryValue", "isBinaryKey"];
    if !keys.iter().any(|k| params.contains_key(*k)) {
        return Err(FeedError::bad(
            "At least one of isJsonData, isBinaryKey, or isBinaryValue must be supplied.",
        ));
    }
    let mut next = config.clone();
    for k in keys {
        if params.contains_key(k) {
            next.insert(k.into(), json!(flag(params, k)));
        }
    }
    if next.get("isJSONData") == Some(&json!(true))
        && next.get("isBinaryValue") == Some(&json!(true))
    {
        return Err(FeedError::bad(
            "isJSONData and isBinaryValue cannot both be enabled.",
        ));
    }
    *config = next;
    Ok(())
}

/// The settings of one registration's consumer, read from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Bootstrap brokers.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// Parse values as JSON.
    pub json_data: bool,
    /// Base64 values.
    pub binary_value: bool,
    /// Base64 keys.
    pub binary_key: bool,
}

impl Spec {
    /// The spec of a registered configuration (`None` when it is not a Kafka one).
    pub fn of(config: &Map<String, Value>) -> Option<Spec> {
        let b = |k: &str| config.get(k).and_then(Value::as_bool).unwrap_or(false);
        Some(Spec {
            brokers: config
                .get("brokers")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            topic: config.get("topic")?.as_str()?.to_string(),
            json_data: b("isJSONData"),
            binary_value: b("isBinaryValue"),
            binary_key: b("isBinaryKey"),
        })
    }

    /// One message as the batch carries it.
    pub fn message(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Value {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let value = match value {
            None => Value::Null,
            Some(v) if self.json_data => {
                serde_json::from_slice::<Value>(v).unwrap_or_else(|_| Value::String(text(v)))
            }
            Some(v) if self.binary_value => Value::String(b64(v)),
            Some(v) => Value::String(text(v)),
        };
        let key = match key {
            None => Value::Null,
            Some(k) if self.binary_key => Value::String(b64(k)),
            Some(k) => Value::String(text(k)),
        };
        json!({"topic": topic, "partition": partition, "offset": offset, "key": key, "value": value})
    }
}

/// The bytes `message` adds to a batch's payload.
pub fn size_of(message: &Value) -> usize {
    message.to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn parameters_as_upstream() {
        let c = create(&p(
            json!({"brokers": "a:9092, b:9092", "topic": "t", "isJSONData": "TRUE"}),
        ))
        .unwrap();
        assert_eq!(c["brokers"], json!(["a:9092", "b:9092"]));
        assert_eq!(c["isJSONData"], true);
        let s = Spec::of(&c).unwrap();
        assert_eq!(s.topic, "t");
        assert_eq!(
            create(&p(json!({"brokers": ["a"]})))
                .unwrap_err()
                .to_string(),
            "You must supply a 'topic' parameter."
        );
        assert_eq!(
            create(&p(json!({"topic": "t"}))).unwrap_err().to_string(),
            "You must supply a 'brokers' parameter."
        );
        assert!(create(&p(json!({"topic": "t", "brokers": 3}))).is_err());
        assert!(create(&p(
            json!({"topic": "t", "brokers": "a", "isJSONData": true, "isBinaryValue": true})
        ))
        .is_err());
        let mut c = c;
        assert!(update(&mut c, &p(json!({"topic": "other"}))).is_err());
        update(&mut c, &p(json!({"isBinaryKey": true}))).unwrap();
        assert_eq!(c["isBinaryKey"], true);
        assert!(update(&mut c, &p(json!({"isBinaryValue": true}))).is_err());
    }

    #[test]
    fn messages_are_encoded_by_the_flags() {
        let plain = Spec::of(&create(&p(json!({"brokers": "a", "topic": "t"}))).unwrap()).unwrap();
        let m = plain.message("t", 0, 7, Some(b"k"), Some(b"{\"a\":1}"));
        assert_eq!(
            m,
            json!({"topic": "t", "partition": 0, "offset": 7, "key": "k", "value": "{\"a\":1}"})
        );
        let js = Spec {
            json_data: true,
            ..plain.clone()
        };
        assert_eq!(
            js.message("t", 0, 7, None, Some(b"{\"a\":1}"))["value"],
            json!({"a": 1})
        );
        assert_eq!(
            js.message("t", 0, 7, None, Some(b"not json"))["value"],
            "not json"
        );
        let bin = Spec {
            binary_value: true,
            binary_key: true,
            ..plain
        };
        let m = bin.message("t", 1, 2, Some(&[0xff]), Some(&[0, 1]));
        assert_eq!(m["key"], "/w==");
        assert_eq!(m["value"], "AAE=");
        assert_eq!(m["key"], "/w==");
    }
}
