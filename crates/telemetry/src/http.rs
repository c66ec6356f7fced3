//! [`TraceLayer`]: the server span of an HTTP service (a tower layer, for axum routers and
//! hyper services alike). When this process exports, each request runs in a `TRACE` span
//! (`otel.kind = server`, method and path) whose parent is the caller's `traceparent`; when it
//! does not, a request that carries a `traceparent` runs with it as the remote context
//! ([`crate::propagation::with_remote`]) so it passes on unchanged — and a request without one
//! costs a header lookup.

use crate::propagation::{from_headers, set_parent, with_remote};
use futures::future::Either;
use opentelemetry::Context;
use std::task::{Context as TaskContext, Poll};
use tokio::task::futures::TaskLocalFuture;
use tracing::instrument::{Instrument, Instrumented};

/// See the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TraceService<S>;
    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

/// The span of a request served: `TRACE`, `otel.kind = server`, parent from its
/// `traceparent` (disabled when not exporting).
pub fn server_span<B>(req: &http::Request<B>) -> tracing::Span {
    let span = tracing::trace_span!(
        "request",
        otel.name = %format_args!("{} {}", req.method(), req.uri().path()),
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
    );
    set_parent(&span, from_headers(req.headers()).as_ref());
    span
}

type Traced<F> = Either<F, Either<Instrumented<F>, TaskLocalFuture<Context, F>>>;

impl<S, B> tower::Service<http::Request<B>> for TraceService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Traced<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if crate::exporting() {
            let span = server_span(&req);
            let fut = {
                let _entered = span.enter();
                self.inner.call(req)
            };
            return Either::Right(Either::Left(fut.instrument(span)));
        }
        if req.headers().contains_key(crate::TRACEPARENT) {
            if let Some(cx) = from_headers(req.headers()) {
                return Either::Right(Either::Right(with_remote(cx, self.inner.call(req))));
            }
        }
        Either::Left(self.inner.call(req))
    }
}
