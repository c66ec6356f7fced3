//! The gRPC face of a [`Registry`]: [`DirectoryService`] implements the `Directory` service of
//! `proto/directory.proto`, and [`serve_with`] runs it on a listener until shutdown, over
//! mutual TLS when given [`TlsFiles`] ([`serve`]: plain, for loopback).

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{debug, info};

use crate::error::DirectoryError;
use crate::proto::directory_server::{Directory, DirectoryServer};
use crate::proto::{
    DeregisterRequest, DeregisterResponse, GroupsRequest, GroupsResponse, HeartbeatRequest,
    HeartbeatResponse, PeerMap, RegisterRequest, RegisterResponse, WatchRequest,
};
use crate::registry::Registry;
use crate::tls::TlsFiles;

/// The `Directory` gRPC service over a [`Registry`].
#[derive(Clone)]
pub struct DirectoryService {
    registry: Registry,
    shutdown: CancellationToken,
}

impl DirectoryService {
    /// Serves `registry`; watch streams end when `shutdown` is cancelled (so that a graceful
    /// shutdown is not held up by watchers).
    pub fn new(registry: Registry, shutdown: CancellationToken) -> Self {
        DirectoryService { registry, shutdown }
    }

    /// As a tonic service, to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> DirectoryServer<Self> {
        DirectoryServer::new(self)
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<PeerMap, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Directory for DirectoryService {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let r = request.into_inner();
        let peer = r
            .peer
            .ok_or_else(|| Status::invalid_argument("invalid request: peer is missing"))?;
        let version = self.registry.register(&r.namespace, &r.group, peer).await?;
        Ok(Response::new(RegisterResponse { version }))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let r = request.into_inner();
        let d = self
            .registry
            .deregister(&r.namespace, &r.group, &r.id, &r.activation_id)
            .await?;
        Ok(Response::new(DeregisterResponse {
            version: d.version,
            removed: d.removed,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let lease = self
            .registry
            .heartbeat(r.invoker_id, Duration::from_millis(u64::from(r.ttl_ms)))
            .await?;
        Ok(Response::new(HeartbeatResponse {
            ttl_ms: u32::try_from(lease.ttl.as_millis()).unwrap_or(u32::MAX),
            new_lease: lease.new_lease,
        }))
    }

    async fn groups(
        &self,
        request: Request<GroupsRequest>,
    ) -> Result<Response<GroupsResponse>, Status> {
        let r = request.into_inner();
        let groups = self.registry.groups_of(&r.namespace).await?;
        Ok(Response::new(GroupsResponse { groups }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = request.into_inner();
        let maps = self.registry.watch(&r.namespace, &r.group).await?;
        debug!(namespace = %r.namespace, group = %r.group, "watch started");
        // When the client goes away, tonic drops this stream and with it the channel
        // receiver: nothing else to clean up.
        let stream = maps
            .map(Ok)
            .take_until(self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves the directory without TLS on `listener` (meant for loopback: see
/// [`crate::DirectoryConfig::server_tls`]) until `shutdown` is cancelled, then stops
/// accepting, ends the watch streams and returns once in-flight calls are done.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), DirectoryError> {
    serve_with(listener, registry, shutdown, None).await
}

/// Like [`serve`]; with `tls`, over TLS, refusing every client without a certificate signed
/// by the CA of `tls` (the TLS handshake fails, no call is served).
pub async fn serve_with(
    listener: TcpListener,
    registry: Registry,
    shutdown: CancellationToken,
    tls: Option<&TlsFiles>,
) -> Result<(), DirectoryError> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(crate::tls::server_config(tls)?)
            .map_err(|e| DirectoryError::Config(format!("TLS: {e}")))?;
    }
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, tls = tls.is_some(), "directory listening");
    }
    // Peer maps are small and latency matters: no Nagle delay on pushed changes.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    });
    let service = DirectoryService::new(registry, shutdown.clone()).into_server();
    builder
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
        .map_err(|e| DirectoryError::Unavailable(format!("directory server: {e}")))
}
