//! The gateway's own HTTP/1.x server side (what hyper's `http1` server did, for a proxy that
//! reads every request body whole before forwarding it): `serve` reads a request head with
//! `httparse` within the header timeout and size limits, reads the body whole (Content-Length
//! or chunked, `100 Continue` when the client waits for it; over the body limit, or late, the
//! body is handed on as [`ReqBody`] refused, and the proxy answers 413 or 408), calls the layer
//! stack, and writes the answer (with its Content-Length, chunked, or until the close for
//! HTTP/1.0 clients), one request after another on a keep-alive connection. A head it cannot
//! use gets OpenWhisk's error body (400, 431, 408) and the connection closes. On shutdown an
//! idle connection closes, and a busy one after its answer.

use crate::error::{error_response, Body};
use crate::h1::{decimal, last_token, parse_length, ChunkedDecoder, Decoded, NameCache};
use crate::request_id::{new_id, RequestContext, ResponseFuture, WithContext};
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Frame, SizeHint};
use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower::Service;

/// Free space kept in a connection's read buffer before each read.
const READ_SPACE: usize = 8 * 1024;

/// Header slots on the stack; a larger `max_headers` takes them from the heap.
const STACK_HEADERS: usize = 128;

/// Past the body limit, at most this much more is read and thrown away, so that the client
/// sees the 413 instead of a reset connection; beyond it the connection is just closed.
pub(crate) const DRAIN_CAP: u64 = 64 * 1024 * 1024;

/// After an answer that closes a connection the client may still be sending on, its bytes are
/// read and dropped this long at most (so that the answer is not lost to a reset).
const LINGER: Duration = Duration::from_secs(2);

/// The limits and timeouts of the HTTP/1.x server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Time allowed for a whole request head, counted from when the server waits for it.
    pub header_timeout: Duration,
    /// Longest request head.
    pub max_header_bytes: usize,
    /// Most headers in a request.
    pub max_headers: usize,
    /// Largest request body.
    pub max_body: u64,
    /// Time allowed for a whole request body.
    pub body_timeout: Duration,
}

/// Why a body was not read: the proxy answers for it (see [`ReqBody`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyRefused {
    /// Larger than the limit.
    #[error("request body over the limit")]
    TooLarge,
    /// Not received in time.
    #[error("request body not received in time")]
    Timeout,
}

/// A request body read whole by the server, or refused ([`BodyRefused`] as its one frame's
/// error).
#[derive(Debug)]
pub struct ReqBody {
    data: Option<Bytes>,
    refused: Option<BodyRefused>,
}

impl ReqBody {
    fn full(data: Bytes) -> Self {
        Self {
            data: (!data.is_empty()).then_some(data),
            refused: None,
        }
    }

    fn refused(why: BodyRefused) -> Self {
        Self {
            data: None,
            refused: Some(why),
        }
    }
}

impl hyper::body::Body for ReqBody {
    type Data = Bytes;
    type Error = BodyRefused;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyRefused>>> {
        if let Some(why) = self.refused.take() {
            return Poll::Ready(Some(Err(why)));
        }
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.refused.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// What the stack behind the server is.
pub(crate) trait H1Stack:
    Service<
    Request<WithContext<ReqBody>>,
    Response = Response<Body>,
    Error = Infallible,
    Future = ResponseFuture,
>
{
}

impl<S> H1Stack for S where
    S: Service<
        Request<WithContext<ReqBody>>,
        Response = Response<Body>,
        Error = Infallible,
        Future = ResponseFuture,
    >
{
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head and what the server needs to know about it.
struct Head {
    parts: http::request::Parts,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Why a head is not served: answered with this status (or, for `None`, just closed).
struct Refusal(Option<(StatusCode, &'static str)>);

impl Refusal {
    fn bad(message: &'static str) -> Self {
        Self(Some((StatusCode::BAD_REQUEST, message)))
    }
}

/// One connection's buffers and state.
struct Conn<'a, IO> {
    io: IO,
    buf: BytesMut,
    out: BytesMut,
    names: NameCache,
    /// Value positions (in the head) of the request being parsed, by header.
    values: Vec<(HeaderName, usize, usize)>,
    settings: &'a Settings,
}

/// Serves HTTP/1.x requests on `io` from the client of `ctx` through `stack` until the client
/// closes, a timeout, an error, or `shutdown`.
pub(crate) async fn serve<IO, S>(
    io: IO,
    stack: &mut S,
    ctx: &RequestContext,
    settings: &Settings,
    shutdown: &CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: H1Stack,
{
    let mut conn = Conn {
        io,
        buf: BytesMut::with_capacity(READ_SPACE),
        out: BytesMut::with_capacity(1024),
        names: NameCache::default(),
        values: Vec::new(),
        settings,
    };
    let timer = tokio::time::sleep(settings.header_timeout);
    tokio::pin!(timer);
    loop {
        let head = match conn.read_head(timer.as_mut(), shutdown).await {
            Ok(Some(head)) => head,
            Ok(None) | Err(Refusal(None)) => return,
            Err(Refusal(Some((status, message)))) => {
                let resp = error_response(status, message, &new_id());
                let _ = conn.write_response(resp, false, false, false).await;
                conn.linger().await;
                return;
            }
        };
        let Head {
            parts,
            framing,
            mut keep_alive,
            expect_continue,
        } = head;
        let body = match conn.read_body(framing, expect_continue).await {
            Ok(body) => body,
            Err(()) => return,
        };
        let refused = body.refused.is_some();
        let is_head = parts.method == Method::HEAD;
        let http10 = parts.version == Version::HTTP_10;
        let req = Request::from_parts(
            parts,
            WithContext {
                ctx: ctx.clone(),
                body,
            },
        );
        // The layers are always ready (none of them applies backpressure in `poll_ready`).
        let resp = match stack.call(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        keep_alive &= !refused && !shutdown.is_cancelled() && !closes(resp.headers());
        match conn.write_response(resp, is_head, http10, keep_alive).await {
            Ok(true) if keep_alive => {}
            Ok(_) => {
                conn.linger().await;
                return;
            }
            Err(_) => return,
        }
    }
}

/// Whether `Connection` lists `close`.
fn closes(headers: &HeaderMap) -> bool {
    headers.iter().any(|(name, v)| {
        name == header::CONNECTION
            && v.as_bytes()
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<'_, IO> {
    /// Reads until a whole head is there; `Ok(None)` when the client closed or went quiet
    /// between requests, or on shutdown.
    async fn read_head(
        &mut self,
        mut timer: Pin<&mut Sleep>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Head>, Refusal> {
        // Later than the last deadline: tokio only moves the entry's expiry, no new timer.
        timer
            .as_mut()
            .reset(Instant::now() + self.settings.header_timeout);
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    return Ok(Some(head));
                }
            }
            if self.buf.capacity() - self.buf.len() < READ_SPACE / 4 {
                self.buf.reserve(READ_SPACE);
            }
            let idle = self.buf.is_empty();
            let read = tokio::select! {
                biased;
                r = self.io.read_buf(&mut self.buf) => r,
                _ = timer.as_mut() => {
                    return match idle {
                        true => Ok(None),
                        false => Err(Refusal(Some((
                            StatusCode::REQUEST_TIMEOUT,
                            "The request head was not received in time.",
                        )))),
                    }
                }
                _ = shutdown.cancelled(), if idle => return Ok(None),
            };
            match read {
                Ok(0) if idle => return Ok(None),
                Ok(0) | Err(_) => return Err(Refusal(None)),
                Ok(_) => {}
            }
        }
    }

    /// Parses the head at the start of the buffer (taking it out); `Ok(None)` when more bytes
    /// are needed.
    fn parse_head(&mut self) -> Result<Option<Head>, Refusal> {
        let max = self.settings.max_headers;
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        let mut heap = Vec::new();
        let slots = if max <= STACK_HEADERS {
            &mut stack[..max]
        } else {
            heap.resize_with(max, MaybeUninit::uninit);
            &mut heap[..]
        };
        let too_large = Refusal(Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request head is too large.",
        )));
        let buf = &self.buf[..];
        let mut req = httparse::Request::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut req, buf, slots)
        {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > self.settings.max_header_bytes => {
                return Err(too_large)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Refusal(Some((
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "The request has too many headers.",
                ))))
            }
            Err(_) => return Err(Refusal::bad("The request is not valid HTTP/1.1.")),
        };
        if len > self.settings.max_header_bytes {
            return Err(too_large);
        }
        let http10 = req.version == Some(0);
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| Refusal::bad("The request method is not valid."))?;
        let target = req.path.unwrap_or_default();
        let target_at = offset(buf, target.as_bytes());
        let target_len = target.len();

        let mut length = None;
        let mut chunked = None;
        let mut close = http10;
        let mut keep_alive_10 = false;
        let mut expect_continue = false;
        self.values.clear();
        for (index, h) in req.headers.iter().enumerate() {
            let name = self
                .names
                .name(index, h.name.as_bytes())
                .map_err(|_| Refusal::bad("A request header name is not valid."))?;
            let raw = h.value;
            if name == header::CONTENT_LENGTH {
                let n = parse_length(raw)
                    .map_err(|_| Refusal::bad("The Content-Length header is not valid."))?;
                if length.is_some_and(|m| m != n) {
                    return Err(Refusal::bad("The Content-Length headers disagree."));
                }
                length = Some(n);
            } else if name == header::TRANSFER_ENCODING {
                chunked = Some(last_token(raw).eq_ignore_ascii_case(b"chunked"));
            } else if name == header::CONNECTION {
                for token in raw.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_10 |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name == header::EXPECT {
                expect_continue = !http10 && raw.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            self.values.push((name, offset(buf, raw), raw.len()));
        }
        let framing = match (chunked, length) {
            (Some(_), Some(_)) => {
                return Err(Refusal::bad(
                    "The request has both Transfer-Encoding and Content-Length.",
                ))
            }
            (Some(true), None) if !http10 => Framing::Chunked,
            (Some(_), None) => {
                return Err(Refusal::bad(
                    "The request's Transfer-Encoding is not supported (only chunked, last).",
                ))
            }
            (None, Some(0)) | (None, None) => Framing::None,
            (None, Some(n)) => Framing::Length(n),
        };

        // The head's bytes, shared by the target and the header values.
        let data = self.buf.split_to(len).freeze();
        // Positions within the head (an empty piece may point elsewhere: it is empty then).
        let piece = |at: usize, n: usize| match n {
            0 => Bytes::new(),
            _ => data.slice(at.min(len)..at.saturating_add(n).min(len)),
        };
        let uri = Uri::from_maybe_shared(piece(target_at, target_len))
            .map_err(|_| Refusal::bad("The request target is not valid."))?;
        let mut headers = HeaderMap::with_capacity(self.values.len());
        for (name, at, n) in self.values.drain(..) {
            let value = HeaderValue::from_maybe_shared(piece(at, n))
                .map_err(|_| Refusal::bad("A request header value is not valid."))?;
            headers.append(name, value);
        }
        let mut parts = Request::new(()).into_parts().0;
        parts.method = method;
        parts.uri = uri;
        parts.version = if http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        parts.headers = headers;
        Ok(Some(Head {
            parts,
            framing,
            keep_alive: !close || (http10 && keep_alive_10),
            expect_continue,
        }))
    }

    /// Reads the body whole, or decides it is refused; `Err` when the client went away or sent
    /// a broken chunked body (the connection just closes).
    async fn read_body(&mut self, framing: Framing, expect_continue: bool) -> Result<ReqBody, ()> {
        let max = self.settings.max_body;
        if framing == Framing::None {
            return Ok(ReqBody::full(Bytes::new()));
        }
        if let Framing::Length(n) = framing {
            if n > max && (expect_continue || n > max.saturating_add(DRAIN_CAP)) {
                // Not sent yet (the client waits for `100 Continue`), or too much to drain.
                return Ok(ReqBody::refused(BodyRefused::TooLarge));
            }
        }
        if expect_continue {
            self.io
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(drop)?;
        }
        let deadline = Instant::now() + self.settings.body_timeout;
        match tokio::time::timeout_at(deadline, self.read_body_bytes(framing)).await {
            Err(_) => Ok(ReqBody::refused(BodyRefused::Timeout)),
            Ok(Ok(Some(body))) => Ok(ReqBody::full(body)),
            Ok(Ok(None)) => Ok(ReqBody::refused(BodyRefused::TooLarge)),
            Ok(Err(())) => Err(()),
        }
    }

    /// The body's bytes, or `None` when there are more than the limit (read and dropped up to
    /// [`DRAIN_CAP`] more).
    async fn read_body_bytes(&mut self, framing: Framing) -> Result<Option<Bytes>, ()> {
        let max = self.settings.max_body;
        match framing {
            Framing::None => Ok(Some(Bytes::new())),
            Framing::Length(n) => {
                let want = usize::try_from(n).map_err(drop)?;
                if n > max {
                    let mut left = want;
                    loop {
                        let take = left.min(self.buf.len());
                        let _ = self.buf.split_to(take);
                        left -= take;
                        if left == 0 {
                            return Ok(None);
                        }
                        self.fill().await?;
                    }
                }
                while self.buf.len() < want {
                    self.buf.reserve(want - self.buf.len());
                    self.fill().await?;
                }
                Ok(Some(self.buf.split_to(want).freeze()))
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                let mut body = BytesMut::new();
                let mut total: u64 = 0;
                loop {
                    match decoder.decode(&mut self.buf).map_err(drop)? {
                        Some(Decoded::Data(data)) => {
                            total += data.len() as u64;
                            if total > max.saturating_add(DRAIN_CAP) {
                                return Err(());
                            }
                            if total <= max {
                                body.extend_from_slice(&data);
                            }
                        }
                        Some(Decoded::End) => {
                            return Ok((total <= max).then(|| body.freeze()));
                        }
                        None => self.fill().await?,
                    }
                }
            }
        }
    }

    /// Reads more into the buffer; `Err` at the end of the stream.
    async fn fill(&mut self) -> Result<(), ()> {
        if self.buf.capacity() - self.buf.len() < READ_SPACE / 4 {
            self.buf.reserve(READ_SPACE);
        }
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => Err(()),
            Ok(_) => Ok(()),
        }
    }

    /// Writes `resp` (its head only for a `HEAD` request) to a client speaking HTTP/1.0 or not,
    /// saying whether the connection stays open (`keep_alive`); returns whether it may carry
    /// another request (not when the body runs until the close).
    async fn write_response(
        &mut self,
        resp: Response<Body>,
        is_head: bool,
        http10: bool,
        keep_alive: bool,
    ) -> io::Result<bool> {
        let (parts, mut body) = resp.into_parts();
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(parts.status.as_str().as_bytes());
        out.put_u8(b' ');
        out.extend_from_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        // A controller's header lines as they came, then the map (the gateway's own headers).
        let raw = body.raw_headers();
        let from_controller = raw.is_some();
        let (mut has_length, mut has_date) = match raw {
            Some(raw) => {
                out.extend_from_slice(&raw.lines);
                (raw.has_length, raw.has_date)
            }
            None => (false, false),
        };
        let mut has_connection = false;
        for (name, value) in &parts.headers {
            match *name {
                header::CONTENT_LENGTH => has_length = true,
                header::DATE => has_date = true,
                header::CONNECTION => has_connection = true,
                header::TRANSFER_ENCODING => continue,
                _ => {}
            }
            put_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if !has_date {
            DATE.with_borrow_mut(|d| put_header(out, b"date", d.now()));
        }
        if http10 && keep_alive {
            put_header(out, b"connection", b"keep-alive");
        } else if !http10 && !keep_alive && !has_connection {
            put_header(out, b"connection", b"close");
        }
        let status = parts.status.as_u16();
        let mut reusable = true;
        let mut chunked = false;
        if status == 204 || status == 304 || (100..200).contains(&status) {
            out.extend_from_slice(b"\r\n");
            self.io.write_all(out).await?;
            self.io.flush().await?;
            return Ok(reusable);
        }
        match body.size_hint().exact() {
            // A controller's answer to HEAD has no body here whatever its length: its own
            // Content-Length (if any) stands.
            Some(_) if is_head && from_controller => {}
            Some(n) if !has_length => {
                let mut digits = [0u8; 20];
                put_header(out, b"content-length", decimal(n, &mut digits));
            }
            Some(_) => {}
            None if is_head => {}
            None if http10 => reusable = false,
            None => {
                chunked = true;
                put_header(out, b"transfer-encoding", b"chunked");
            }
        }
        out.extend_from_slice(b"\r\n");
        if is_head {
            self.io.write_all(out).await?;
            self.io.flush().await?;
            return Ok(reusable);
        }
        // Body bytes already here go out with the head, in one write.
        let mut ended = false;
        loop {
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
            match polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        put_data(out, &data, chunked);
                    }
                }
                Poll::Ready(None) => {
                    ended = true;
                    break;
                }
                Poll::Ready(Some(Err(e))) => return Err(io::Error::other(e)),
                Poll::Pending => break,
            }
        }
        if ended {
            if chunked {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            self.io.write_all(out).await?;
            self.io.flush().await?;
            return Ok(reusable);
        }
        self.io.write_all(out).await?;
        self.io.flush().await?;
        // The rest as it arrives.
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(io::Error::other)?;
            if let Ok(data) = frame.into_data() {
                out.clear();
                put_data(out, &data, chunked);
                self.io.write_all(out).await?;
                self.io.flush().await?;
            }
        }
        if chunked {
            self.io.write_all(b"0\r\n\r\n").await?;
            self.io.flush().await?;
        }
        Ok(reusable)
    }

    /// Closes our side, then reads and drops what the client still sends for a while, so that
    /// the last answer reaches it before the connection is gone.
    async fn linger(&mut self) {
        let _ = self.io.shutdown().await;
        let drain = async {
            let mut scratch = vec![0u8; 16 * 1024];
            let mut total = 0usize;
            while let Ok(n) = self.io.read(&mut scratch).await {
                total += n;
                if n == 0 || total > DRAIN_CAP as usize {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    }
}

/// Where `part` starts within `whole` (`part` is a slice of it).
fn offset(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

fn put_header(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn put_data(out: &mut BytesMut, data: &[u8], chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// The `Date` header value, formatted once a second per thread.
struct DateCache {
    second: u64,
    text: Vec<u8>,
}

impl DateCache {
    fn now(&mut self) -> &[u8] {
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now).into_bytes();
        }
        &self.text
    }
}

thread_local! {
    static DATE: RefCell<DateCache> = const {
        RefCell::new(DateCache { second: 0, text: Vec::new() })
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::full;
    use std::net::SocketAddr;
    use tokio::io::duplex;

    /// A stack answering `200` with the request's method, target and body, or what `answer`
    /// gives.
    #[derive(Clone)]
    struct Echo;

    impl Service<Request<WithContext<ReqBody>>> for Echo {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = ResponseFuture;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<WithContext<ReqBody>>) -> ResponseFuture {
            Box::pin(async move {
                let (parts, WithContext { body, .. }) = req.into_parts();
                if let Some(why) = body.refused {
                    let status = match why {
                        BodyRefused::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                        BodyRefused::Timeout => StatusCode::REQUEST_TIMEOUT,
                    };
                    let mut r = error_response(status, "refused", "id");
                    r.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Ok(r);
                }
                let data = body.data.unwrap_or_default();
                let text = format!(
                    "{} {} {}",
                    parts.method,
                    parts.uri,
                    String::from_utf8_lossy(&data)
                );
                Ok(Response::new(full(Bytes::from(text))))
            })
        }
    }

    fn settings() -> Settings {
        Settings {
            header_timeout: Duration::from_secs(5),
            max_header_bytes: 1024,
            max_headers: 8,
            max_body: 16,
            body_timeout: Duration::from_secs(5),
        }
    }

    /// Sends `input` (then closes the write side) and returns all the server wrote.
    async fn exchange(input: &[u8]) -> String {
        let (client, server) = duplex(1 << 20);
        let s = settings();
        let stop = CancellationToken::new();
        let ctx = RequestContext::new(SocketAddr::from(([127, 0, 0, 1], 1)), false);
        let server = tokio::spawn(async move {
            serve(server, &mut Echo, &ctx, &s, &stop).await;
        });
        let (mut rd, mut wr) = tokio::io::split(client);
        wr.write_all(input).await.unwrap();
        wr.shutdown().await.unwrap();
        let mut out = Vec::new();
        rd.read_to_end(&mut out).await.unwrap();
        server.await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn keep_alive_pipelining_and_bodies() {
        let out = exchange(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
              POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n",
        )
        .await;
        let empty = exchange(b"GET /e HTTP/1.1\r\nX-Empty:\r\nX-Blank: \r\n\r\n").await;
        assert!(empty.starts_with("HTTP/1.1 200 OK\r\n"), "{empty}");
        let answers: Vec<&str> = out.split("HTTP/1.1 200 OK\r\n").skip(1).collect();
        assert_eq!(answers.len(), 3, "{out}");
        assert!(answers[0].ends_with("\r\n\r\nGET /a "), "{out}");
        assert!(answers[1].contains("content-length: 11\r\n"), "{out}");
        assert!(answers[1].ends_with("POST /b abc"), "{out}");
        assert!(answers[2].ends_with("POST /c def"), "{out}");
        assert!(answers[0].contains("date: "), "{out}");
    }

    #[tokio::test]
    async fn bad_heads_get_error_bodies_and_a_close() {
        for (input, status) in [
            (&b"nonsense\r\n\r\n"[..], "400"),
            (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
            (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\nI: 1\r\n\r\n", "431"),
        ] {
            let out = exchange(input).await;
            assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{out}");
            assert!(out.contains("\"error\""), "{out}");
            assert_eq!(out.matches("HTTP/1.1 4").count(), 1, "{out}");
        }
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert!(exchange(long.as_bytes()).await.starts_with("HTTP/1.1 431 "));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let out =
            exchange(b"POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n01234567890123456789").await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let out =
            exchange(b"POST / HTTP/1.1\r\nContent-Length: 20\r\nExpect: 100-continue\r\n\r\n")
                .await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        let out =
            exchange(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok")
                .await;
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "),
            "{out}"
        );
        let out = exchange(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    }

    /// Mangled requests never panic the server: each gets an answer or a close.
    #[tokio::test]
    async fn mangled_requests_are_answered_or_closed() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let valid = b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nX-E:\r\nContent-Length: 3\r\n\r\nabc\
                      GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
        let alphabet = b"\r\n :;,\t\x00\x7f\xff0123456789abcdefHTTP/1.01-chunkedContent-Length";
        for _ in 0..500 {
            let input = crate::h1::mangled(&mut rng, valid, alphabet);
            let out = exchange(&input).await;
            assert!(out.is_empty() || out.starts_with("HTTP/1.1 "), "{out}");
        }
    }

    #[tokio::test]
    async fn http10_closes_unless_kept_alive() {
        let out = exchange(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n").await;
        assert_eq!(out.matches("HTTP/1.1 200").count(), 1, "{out}");
        let out =
            exchange(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
                .await;
        assert_eq!(out.matches("HTTP/1.1 200").count(), 2, "{out}");
        assert!(out.contains("connection: keep-alive\r\n"), "{out}");
        let out = exchange(b"HEAD /a HTTP/1.1\r\n\r\n").await;
        assert!(out.ends_with("\r\n\r\n"), "{out}");
        assert!(out.contains("content-length: 8\r\n"), "{out}");
    }
}
