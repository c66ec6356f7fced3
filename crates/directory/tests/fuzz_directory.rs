//! Property tests of the directory's messages (`proto/directory.proto`) and of what its gRPC
//! service does with them: decoding arbitrary bytes never panics, whatever decodes round-trips
//! through encode → decode, and the service (over an in-memory registry, called in process)
//! answers every decoded request with success or `InvalidArgument` (a cap may answer
//! `ResourceExhausted`), never an internal error or a panic. A registered instance is in its
//! group's map, and deregistering it removes it.
//!
//! Requests are either protobuf wire records of any shape ([`fuzz::protobuf`]) or messages
//! built from plausible and hostile fields (names with separators and control characters,
//! IPs with zones and spaces, ports past 65535), encoded and decoded like the wire does.

use futures::StreamExt;
use proptest::prelude::*;
use tonic::{Code, Request};
use tonic_prost::prost::Message;
use whisk_directory::proto::directory_server::Directory;
use whisk_directory::proto::{
    DeregisterRequest, HeartbeatRequest, Peer, PeerMap, RegisterRequest, WatchRequest,
};
use whisk_directory::{DirectoryService, Registry, RegistryOptions};
use whisk_test_support::fuzz::{self, Xorshift};

/// Decodes `bytes` as `M`; what decodes must survive encode → decode unchanged.
fn decode<M: Message + Default + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<Option<M>, TestCaseError> {
    let Ok(m) = M::decode(bytes) else {
        return Ok(None);
    };
    let again = M::decode(m.encode_to_vec().as_slice())
        .map_err(|e| TestCaseError::fail(format!("{m:?} re-encoded does not decode: {e}")))?;
    prop_assert_eq!(&again, &m, "input {:?}", bytes);
    Ok(Some(m))
}

fn ip(rng: &mut Xorshift) -> String {
    match rng.below(5) {
        4 => format!("127.0.0.{}", rng.below(256)),
        0 => rng
            .pick(&[
                "127.0.0.1",
                "::1",
                " 10.0.0.7 ",
                "fe80::1%eth0",
                "300.1.1.1",
                "1.2.3",
                "",
                "::ffff:1.2.3.4",
                "10.0.0.1:80",
                "0x7f.1",
            ])
            .to_string(),
        1 => format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            rng.below(300)
        ),
        _ => rng.text(10),
    }
}

/// A request of kind `kind` (0 register, 1 deregister, 2 heartbeat, 3 watch), as bytes.
fn built(rng: &mut Xorshift, kind: u64) -> Vec<u8> {
    match kind {
        0 => RegisterRequest {
            namespace: rng.name(),
            group: rng.name(),
            peer: (!rng.one_in(10)).then(|| Peer {
                id: rng.name(),
                ip: ip(rng),
                port: if rng.one_in(4) {
                    rng.next_u64() as u32
                } else {
                    rng.below(65536) as u32
                },
                invoker_id: rng.below(4) as u32,
                activation_id: if rng.one_in(2) {
                    format!("{:032x}", rng.next_u64())
                } else {
                    rng.text(6)
                },
                since_ms: rng.next_u64() as i64,
            }),
        }
        .encode_to_vec(),
        1 => DeregisterRequest {
            namespace: rng.name(),
            group: rng.name(),
            id: rng.name(),
            activation_id: rng.text(4),
        }
        .encode_to_vec(),
        2 => HeartbeatRequest {
            invoker_id: rng.below(8) as u32,
            ttl_ms: rng.next_u64() as u32 >> rng.below(32),
        }
        .encode_to_vec(),
        _ => WatchRequest {
            namespace: rng.name(),
            group: rng.name(),
        }
        .encode_to_vec(),
    }
}

fn acceptable(status: &tonic::Status) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(
            status.code(),
            Code::InvalidArgument | Code::ResourceExhausted
        ),
        "unexpected status {status:?}"
    );
    prop_assert!(!status.message().is_empty());
    Ok(())
}

async fn ids(registry: &Registry, namespace: &str, group: &str) -> Vec<String> {
    let map: PeerMap = registry
        .snapshot(namespace, group)
        .await
        .expect("a valid group");
    map.peers.into_iter().map(|p| p.id).collect()
}

/// Decodes `bytes` as a request of `kind` and hands it to the service.
async fn serve_one(
    service: &DirectoryService,
    registry: &Registry,
    kind: u64,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    match kind {
        0 => {
            let Some(r) = decode::<RegisterRequest>(bytes)? else {
                return Ok(());
            };
            let (ns, group) = (r.namespace.clone(), r.group.clone());
            let id = r.peer.as_ref().map(|p| p.id.clone());
            match service.register(Request::new(r)).await {
                Ok(_) => {
                    let id = id.expect("registered without a peer");
                    prop_assert!(ids(registry, &ns, &group).await.contains(&id));
                    let d = DeregisterRequest {
                        namespace: ns.clone(),
                        group: group.clone(),
                        id: id.clone(),
                        activation_id: String::new(),
                    };
                    let removed = service
                        .deregister(Request::new(d))
                        .await
                        .map_err(|s| TestCaseError::fail(format!("{s:?}")))?;
                    prop_assert!(removed.into_inner().removed);
                    prop_assert!(!ids(registry, &ns, &group).await.contains(&id));
                }
                Err(s) => acceptable(&s)?,
            }
        }
        1 => {
            let Some(r) = decode::<DeregisterRequest>(bytes)? else {
                return Ok(());
            };
            if let Err(s) = service.deregister(Request::new(r)).await {
                acceptable(&s)?;
            }
        }
        2 => {
            let Some(r) = decode::<HeartbeatRequest>(bytes)? else {
                return Ok(());
            };
            match service.heartbeat(Request::new(r)).await {
                Ok(lease) => prop_assert!(lease.into_inner().ttl_ms > 0),
                Err(s) => acceptable(&s)?,
            }
        }
        _ => {
            let Some(r) = decode::<WatchRequest>(bytes)? else {
                return Ok(());
            };
            let (ns, group) = (r.namespace.clone(), r.group.clone());
            match service.watch(Request::new(r)).await {
                Ok(stream) => {
                    let first = stream.into_inner().next().await.expect("a first map");
                    let map = first.map_err(|s| TestCaseError::fail(format!("{s:?}")))?;
                    prop_assert_eq!((map.namespace, map.group), (ns, group));
                }
                Err(s) => acceptable(&s)?,
            }
        }
    }
    Ok(())
}

/// One runtime, registry and service for every case of a target.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: DirectoryService,
    registry: Registry,
}

impl Fixture {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let registry = runtime.block_on(async { Registry::in_memory(RegistryOptions::default()) });
        let service = DirectoryService::new(registry.clone(), Default::default());
        Fixture {
            runtime,
            service,
            registry,
        }
    }

    fn case(&self, kind: u64, bytes: &[u8]) -> Result<(), TestCaseError> {
        self.runtime
            .block_on(serve_one(&self.service, &self.registry, kind, bytes))
    }
}

#[test]
fn requests_from_wire_records() {
    let f = Fixture::new();
    proptest!(fuzz::cases(12_000), |(seed in any::<u64>())| {
        let mut rng = Xorshift::new(seed);
        let kind = rng.below(4);
        let bytes = fuzz::protobuf(&mut rng, 2);
        f.case(kind, &bytes)?;
        // The map and the response messages decode arbitrary bytes too.
        decode::<PeerMap>(&bytes)?;
        decode::<Peer>(&bytes)?;
    });
}

#[test]
fn requests_built_from_hostile_fields() {
    let f = Fixture::new();
    proptest!(fuzz::cases(12_000), |(seed in any::<u64>())| {
        let mut rng = Xorshift::new(seed);
        let kind = rng.below(4);
        let bytes = built(&mut rng, kind);
        f.case(kind, &bytes)?;
    });
}

/// The invocation's `instanceID` and `group` as the controller accepts them
/// (`whisk_core::peers::instance`) are what the directory accepts: an invoke taken at the API
/// never fails later at registration. Arbitrary parameters never panic the reader.
#[test]
fn accepted_instance_parameters_register() {
    use serde_json::{json, Value};
    use whisk_core::peers::{instance, GROUP_PARAM, INSTANCE_ID_PARAM};
    use whisk_directory::validate::{check_instance_id, check_name};
    proptest!(fuzz::cases(10_000), |(seed in any::<u64>())| {
        let mut rng = Xorshift::new(seed);
        let mut params = serde_json::Map::new();
        let id = match rng.below(4) {
            0 => json!(rng.next_u64() as i64),
            1 => Value::from(rng.next_u64() as f64 / 3.0),
            2 => rng.json(1, &[]),
            _ => json!(rng.name()),
        };
        params.insert(INSTANCE_ID_PARAM.into(), id);
        if rng.one_in(2) {
            let group = if rng.one_in(4) { rng.json(1, &[]) } else { json!(rng.name()) };
            params.insert(GROUP_PARAM.into(), group);
        }
        if let Ok(Some(found)) = instance(&params, "default") {
            prop_assert!(check_instance_id(&found.id).is_ok(), "{:?} accepted, refused by the directory", found.id);
            prop_assert!(check_name("group", &found.group).is_ok(), "{:?} accepted, refused by the directory", found.group);
        }
    });
}
