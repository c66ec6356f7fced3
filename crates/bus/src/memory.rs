//! In-process bus: one unbounded multi-consumer channel per (topic, group). Messages
//! published before any group joined are kept and handed to the first group that joins.
//! Headers travel with their message.

use crate::{Bus, BusError, Consumer, Delivery, Headers};
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

type Message = (Bytes, Headers);
type Channel = (
    async_channel::Sender<Message>,
    async_channel::Receiver<Message>,
);

#[derive(Default)]
struct Topic {
    groups: HashMap<String, Channel>,
    backlog: Vec<Message>,
}

/// A bus whose topics live in this process's memory.
#[derive(Default, Clone)]
pub struct InProcessBus {
    topics: Arc<Mutex<HashMap<String, Topic>>>,
}

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        self.topics.lock().entry(topic.to_string()).or_default();
        Ok(())
    }

    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_with_headers(topic, payload, Headers::new())
            .await
    }

    async fn publish_with_headers(
        &self,
        topic: &str,
        payload: Bytes,
        headers: Headers,
    ) -> Result<(), BusError> {
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.to_string()).or_default();
        if t.groups.is_empty() {
            t.backlog.push((payload, headers));
            return Ok(());
        }
        for (tx, _) in t.groups.values() {
            tx.try_send((payload.clone(), headers.clone()))
                .map_err(|_| BusError::Closed)?;
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Consumer>, BusError> {
        let mut topics = self.topics.lock();
        let t = topics.entry(topic.to_string()).or_default();
        let first = t.groups.is_empty();
        let (tx, rx) = t
            .groups
            .entry(group.to_string())
            .or_insert_with(async_channel::unbounded)
            .clone();
        if first {
            for m in t.backlog.drain(..) {
                tx.try_send(m).map_err(|_| BusError::Closed)?;
            }
        }
        Ok(Box::new(InProcessConsumer { rx, offset: 0 }))
    }
}

struct InProcessConsumer {
    rx: async_channel::Receiver<Message>,
    offset: i64,
}

#[async_trait]
impl Consumer for InProcessConsumer {
    async fn recv(&mut self) -> Result<Delivery, BusError> {
        let (payload, headers) = self.rx.recv().await.map_err(|_| BusError::Closed)?;
        self.offset += 1;
        Ok(Delivery {
            payload,
            offset: self.offset,
            partition: 0,
            headers,
        })
    }

    async fn commit(&mut self, _delivery: &Delivery) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_each_get_every_message_and_members_share() {
        let bus = InProcessBus::new();
        bus.publish("t", Bytes::from_static(b"early"))
            .await
            .unwrap();
        let mut a1 = bus.subscribe("t", "a").await.unwrap();
        let mut a2 = bus.subscribe("t", "a").await.unwrap();
        let mut b = bus.subscribe("t", "b").await.unwrap();
        assert_eq!(&a1.recv().await.unwrap().payload[..], b"early");
        for i in 0..4u8 {
            bus.publish("t", Bytes::from(vec![i])).await.unwrap();
        }
        let mut seen_a = vec![];
        for _ in 0..2 {
            seen_a.push(a1.recv().await.unwrap().payload[0]);
            seen_a.push(a2.recv().await.unwrap().payload[0]);
        }
        seen_a.sort();
        assert_eq!(seen_a, vec![0, 1, 2, 3]);
        for i in 0..4u8 {
            assert_eq!(b.recv().await.unwrap().payload[0], i);
        }
    }
}
