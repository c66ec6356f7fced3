//! [`DirectoryClient`]: the gRPC client of a directory service, as a [`PeerDirectory`].
//! Connecting retries with backoff; unary calls retry briefly when the directory is
//! unreachable (all of them are idempotent); a watch reconnects by itself and resumes with a
//! fresh snapshot. With [`TlsFiles`] it speaks TLS and presents its client certificate (a
//! directory served with TLS refuses clients without one).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::time::{sleep, timeout, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::api::PeerDirectory;
use crate::api::{Deregistered, Lease, PeerMapStream};
use crate::error::DirectoryError;
use crate::proto::directory_client::DirectoryClient as GrpcClient;
use crate::proto::{
    DeregisterRequest, GroupsRequest, HeartbeatRequest, Peer, PeerMap, RegisterRequest,
    WatchRequest,
};
use crate::tls::TlsFiles;
use whisk_core::health::error_chain;

/// How long one unary call may take before it counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of a unary call while the directory is unavailable.
const CALL_ATTEMPTS: u32 = 3;
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A client of a directory service (cheap to clone: one shared HTTP/2 connection).
#[derive(Clone)]
pub struct DirectoryClient {
    grpc: GrpcClient<Channel>,
    addr: String,
}

impl DirectoryClient {
    /// Connects to the directory at `addr` (`host:port` or `http://host:port`), retrying with
    /// backoff for up to 10 s.
    pub async fn connect(addr: &str) -> Result<DirectoryClient, DirectoryError> {
        Self::connect_within(addr, Duration::from_secs(10)).await
    }

    /// Connects to `addr`, retrying with backoff for up to `patience`.
    pub async fn connect_within(
        addr: &str,
        patience: Duration,
    ) -> Result<DirectoryClient, DirectoryError> {
        Self::connect_within_tls(addr, patience, None).await
    }

    /// Connects to `addr` (over TLS with `tls`), retrying with backoff for up to `patience`.
    /// A TLS failure (the server refused the certificate) is retried like any other until
    /// `patience` runs out, then reported.
    pub async fn connect_within_tls(
        addr: &str,
        patience: Duration,
        tls: Option<&TlsFiles>,
    ) -> Result<DirectoryClient, DirectoryError> {
        let endpoint = endpoint(addr, tls)?;
        let deadline = Instant::now() + patience;
        let mut backoff = MIN_BACKOFF;
        loop {
            match endpoint.connect().await {
                Ok(channel) => {
                    return Ok(DirectoryClient {
                        grpc: GrpcClient::new(channel),
                        addr: addr.to_string(),
                    })
                }
                Err(e) if Instant::now() + backoff < deadline => {
                    debug!(addr, "directory not reachable yet: {e}");
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    return Err(DirectoryError::Unavailable(format!(
                        "cannot connect to the directory at {addr} within {patience:?}: {}",
                        error_chain(&e)
                    )))
                }
            }
        }
    }

    /// A client that connects on first use (and reconnects whenever needed).
    pub fn connect_lazy(addr: &str) -> Result<DirectoryClient, DirectoryError> {
        Self::connect_lazy_tls(addr, None)
    }

    /// Like [`DirectoryClient::connect_lazy`], over TLS with `tls`.
    pub fn connect_lazy_tls(
        addr: &str,
        tls: Option<&TlsFiles>,
    ) -> Result<DirectoryClient, DirectoryError> {
        Ok(DirectoryClient {
            grpc: GrpcClient::new(endpoint(addr, tls)?.connect_lazy()),
            addr: addr.to_string(),
        })
    }

    /// The address this client talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs a unary call, retrying while the directory is unavailable.
    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T, DirectoryError>
    where
        F: Fn(GrpcClient<Channel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let mut backoff = MIN_BACKOFF;
        let mut attempt = 1;
        loop {
            let err = match timeout(CALL_TIMEOUT, f(self.grpc.clone())).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(s)) if s.code() == tonic::Code::Unavailable => DirectoryError::from(s),
                Ok(Err(s)) => return Err(s.into()),
                Err(_) => DirectoryError::Unavailable(format!(
                    "{what} at {} took longer than {CALL_TIMEOUT:?}",
                    self.addr
                )),
            };
            if attempt >= CALL_ATTEMPTS {
                return Err(err);
            }
            attempt += 1;
            sleep(backoff).await;
            backoff = (backoff * 4).min(MAX_BACKOFF);
        }
    }

    async fn open_watch(
        &self,
        namespace: &str,
        group: &str,
    ) -> Result<Streaming<PeerMap>, DirectoryError> {
        let req = WatchRequest {
            namespace: namespace.to_string(),
            group: group.to_string(),
        };
        self.call("watch", |mut c| {
            let req = req.clone();
            async move { c.watch(req).await }
        })
        .await
    }
}

fn endpoint(addr: &str, tls: Option<&TlsFiles>) -> Result<Endpoint, DirectoryError> {
    let bare = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    if addr.starts_with("https://") && tls.is_none() {
        return Err(DirectoryError::Config(format!(
            "directory address {addr:?} asks for TLS, but no CA, certificate and key are given"
        )));
    }
    let uri = format!("{scheme}://{bare}");
    let mut ep = Endpoint::from_shared(uri)
        .map_err(|e| DirectoryError::Invalid(format!("directory address {addr:?}: {e}")))?;
    if let Some(tls) = tls {
        let host = ep
            .uri()
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        ep = ep
            .tls_config(tls.client_config(&host)?)
            .map_err(|e| DirectoryError::Config(format!("TLS: {e}")))?;
    }
    Ok(ep
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

struct WatchState {
    client: DirectoryClient,
    namespace: String,
    group: String,
    current: Option<Streaming<PeerMap>>,
    backoff: Duration,
    warned: bool,
}

#[async_trait]
impl PeerDirectory for DirectoryClient {
    async fn register(
        &self,
        namespace: &str,
        group: &str,
        peer: Peer,
    ) -> Result<u64, DirectoryError> {
        let req = RegisterRequest {
            namespace: namespace.to_string(),
            group: group.to_string(),
            peer: Some(peer),
        };
        let r = self
            .call("register", |mut c| {
                let req = req.clone();
                async move { c.register(req).await }
            })
            .await?;
        Ok(r.version)
    }

    async fn deregister(
        &self,
        namespace: &str,
        group: &str,
        id: &str,
        activation_id: &str,
    ) -> Result<Deregistered, DirectoryError> {
        let req = DeregisterRequest {
            namespace: namespace.to_string(),
            group: group.to_string(),
            id: id.to_string(),
            activation_id: activation_id.to_string(),
        };
        let r = self
            .call("deregister", |mut c| {
                let req = req.clone();
                async move { c.deregister(req).await }
            })
            .await?;
        Ok(Deregistered {
            version: r.version,
            removed: r.removed,
        })
    }

    async fn groups(&self, namespace: &str) -> Result<Vec<PeerMap>, DirectoryError> {
        let req = GroupsRequest {
            namespace: namespace.to_string(),
        };
        let mut r = self
            .call("groups", |mut c| {
                let req = req.clone();
                async move { c.groups(req).await }
            })
            .await?;
        r.groups.truncate(crate::api::GROUPS_LIST_MAX);
        Ok(r.groups)
    }

    async fn heartbeat(&self, invoker_id: u32, ttl: Duration) -> Result<Lease, DirectoryError> {
        let req = HeartbeatRequest {
            invoker_id,
            ttl_ms: u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX),
        };
        let r = self
            .call("heartbeat", |mut c| async move { c.heartbeat(req).await })
            .await?;
        Ok(Lease {
            ttl: Duration::from_millis(u64::from(r.ttl_ms)),
            new_lease: r.new_lease,
        })
    }

    /// The first snapshot is awaited before this returns (so a bad request fails here); after
    /// that the stream never ends by itself: when the directory goes away it reconnects with
    /// backoff and resumes with a fresh snapshot. Drop it to stop watching.
    async fn watch(&self, namespace: &str, group: &str) -> Result<PeerMapStream, DirectoryError> {
        let first = self.open_watch(namespace, group).await?;
        let state = WatchState {
            client: self.clone(),
            namespace: namespace.to_string(),
            group: group.to_string(),
            current: Some(first),
            backoff: MIN_BACKOFF,
            warned: false,
        };
        Ok(futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(s) = st.current.as_mut() {
                    match s.message().await {
                        Ok(Some(map)) => {
                            st.backoff = MIN_BACKOFF;
                            return Some((map, st));
                        }
                        Ok(None) => debug!(addr = %st.client.addr, "watch ended by the directory"),
                        Err(e) => debug!(addr = %st.client.addr, "watch broken: {e}"),
                    }
                    st.current = None;
                } else {
                    sleep(st.backoff).await;
                    st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
                }
                match st.client.open_watch(&st.namespace, &st.group).await {
                    Ok(s) => {
                        if st.warned {
                            info!(addr = %st.client.addr, "watch resumed");
                            st.warned = false;
                        }
                        st.current = Some(s);
                    }
                    Err(e) => {
                        if !st.warned {
                            warn!(addr = %st.client.addr, group = %st.group,
                                  "watch lost, reconnecting: {e}");
                            st.warned = true;
                        }
                    }
                }
            }
        })
        .boxed())
    }
}
