//! The HTTP/1.1 wire format of the gateway's requests to the controllers (what [`pool`]
//! speaks on its connections): [`RequestWriter`] writes a request head and body in one buffer,
//! [`parse_head`] reads an answer's head with `httparse`, says how its body is delimited
//! ([`Framing`]) and whether the connection may carry another request, and keeps its header
//! lines to pass on ([`RawHeaders`]); [`ChunkedDecoder`] decodes a chunked body (answers', and
//! requests' in [`h1_server`]), and [`NameCache`] saves parsing the same header names again.
//! Pure functions over buffers: no I/O here.
//!
//! [`pool`]: crate::pool
//! [`h1_server`]: crate::h1_server

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use std::mem::MaybeUninit;

/// Largest answer head accepted (status line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most headers accepted in an answer.
const MAX_HEADERS: usize = 128;

/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Why a controller's answer is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The head is longer than [`MAX_HEAD_BYTES`].
    #[error("answer head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// The head is not HTTP/1.x.
    #[error("invalid answer head: {0}")]
    Head(httparse::Error),
    /// A header the gateway must understand has a value it cannot use.
    #[error("invalid {0} header in the answer")]
    Header(&'static str),
    /// The controller switched protocols, which the gateway never asks for.
    #[error("unexpected 101 Switching Protocols")]
    Upgrade,
    /// A chunked body is malformed.
    #[error("invalid chunked body")]
    Chunked,
}

/// How the body of an answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// There is none (`HEAD`, 204, 304, `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the controller closes the connection.
    Close,
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// HTTP/1.0 or 1.1.
    pub version: Version,
    /// The header lines to pass on.
    pub headers: RawHeaders,
    /// How the body ends.
    pub framing: Framing,
    /// Whether the connection may carry another request once the body is read.
    pub keep_alive: bool,
}

/// Writes a request head, then its body, into a buffer: the request line at [`start`], each
/// header with [`header`], and [`finish`] the blank line and the body.
///
/// [`start`]: RequestWriter::start
/// [`header`]: RequestWriter::header
/// [`finish`]: RequestWriter::finish
pub struct RequestWriter<'a> {
    out: &'a mut BytesMut,
}

impl<'a> RequestWriter<'a> {
    /// Clears `out` and writes `method target HTTP/1.1` (the target in pieces).
    pub fn start(out: &'a mut BytesMut, method: &Method, target: &[&str]) -> Self {
        out.clear();
        out.reserve(256);
        out.extend_from_slice(method.as_str().as_bytes());
        out.extend_from_slice(b" ");
        for part in target {
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        Self { out }
    }

    /// Writes `name: value` (the value in pieces).
    pub fn header(&mut self, name: &str, value: &[&[u8]]) {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        for part in value {
            self.out.extend_from_slice(part);
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Writes the end of the head and `body`.
    pub fn finish(self, body: &[u8]) {
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
    }
}

/// Header names of a client's last request by position, so that the same names in the same
/// order (the usual case) cost a comparison instead of a parse (and, for names outside the
/// standard set, an allocation) each time.
#[derive(Debug, Default)]
pub struct NameCache {
    names: Vec<HeaderName>,
}

/// Most names a [`NameCache`] keeps.
const CACHED_NAMES: usize = 32;

impl NameCache {
    /// The name `raw` of the header at `index` in an answer.
    pub(crate) fn name(&mut self, index: usize, raw: &[u8]) -> Result<HeaderName, ParseError> {
        if let Some(name) = self.names.get(index) {
            if name.as_str().as_bytes() == raw {
                return Ok(name.clone());
            }
        }
        let name = HeaderName::from_bytes(raw)
            .map_err(|_| ParseError::Head(httparse::Error::HeaderName))?;
        // Only names sent in lower case, as they are then found by a plain comparison.
        if index < CACHED_NAMES && name.as_str().as_bytes() == raw {
            if index < self.names.len() {
                self.names[index] = name.clone();
            } else if index == self.names.len() {
                self.names.push(name.clone());
            }
        }
        Ok(name)
    }
}

/// Parses the answer head at the start of `data` (to a request made with `method`); returns
/// it with its length (the body starts there), or `Ok(None)` when more bytes are needed.
/// Interim answers (1xx but 101) are skipped. The header lines are kept as they came
/// ([`RawHeaders`], sharing `data`'s bytes when none is dropped): the gateway passes them on
/// without building a header map.
pub fn parse_head(data: &Bytes, method: &Method) -> Result<Option<(Head, usize)>, ParseError> {
    let mut offset = 0;
    loop {
        let buf = &data[offset..];
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(ParseError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ParseError::Head(e)),
        };
        if len > MAX_HEAD_BYTES {
            return Err(ParseError::HeadTooLarge);
        }
        let code = resp.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| ParseError::Head(httparse::Error::Status))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(ParseError::Upgrade);
        }
        if status.is_informational() {
            offset += len;
            continue;
        }
        let http10 = resp.version == Some(0);
        let mut length = None;
        let mut chunked = false;
        let mut has_te = false;
        let mut close = http10;
        let mut keep_alive_10 = false;
        let mut has_date = false;
        // Whether a line must go (then the lines are copied without it).
        let mut drop_any = false;
        // Names listed in `Connection` besides close and keep-alive (they go too).
        let mut listed: Vec<&[u8]> = Vec::new();
        // Bytes of the lines written as `name: value\r\n`, and whether each came so.
        let mut canonical = 0;
        let mut tidy = true;
        // (An empty value might not point into `buf`: then the sum below is off and the lines are
        // written out again.)
        let at = |part: &[u8]| (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        for h in resp.headers.iter() {
            let (name, raw) = (h.name.as_bytes(), h.value);
            canonical += name.len() + raw.len() + 4;
            tidy &= at(raw) == at(name) + name.len() + 2
                && buf.get(at(raw) + raw.len()) == Some(&b'\r');
            match Known::of(name) {
                Known::ContentLength => {
                    let n = parse_length(raw)?;
                    if length.is_some_and(|m| m != n) {
                        return Err(ParseError::Header("Content-Length"));
                    }
                    length = Some(n);
                }
                Known::TransferEncoding => {
                    // Only the last coding matters: chunked there, else the body runs to the
                    // close.
                    chunked = last_token(raw).eq_ignore_ascii_case(b"chunked");
                    close |= !chunked;
                    has_te = true;
                    drop_any = true;
                }
                Known::Connection => {
                    for token in raw.split(|&b| b == b',') {
                        let token = token.trim_ascii();
                        if token.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                            keep_alive_10 = true;
                        } else if !token.is_empty() {
                            listed.push(token);
                        }
                    }
                    drop_any = true;
                }
                Known::Date => has_date = true,
                Known::Dropped => drop_any = true,
                Known::Other => {}
            }
        }
        // Both: Transfer-Encoding wins (Content-Length goes), and the connection cannot be
        // trusted afterwards.
        let has_length = length.is_some() && !has_te;
        close |= has_te && length.is_some();
        let headers: &[httparse::Header<'_>] = resp.headers;
        let lines = match (headers.first(), headers.last()) {
            (Some(first), Some(last)) => {
                if !drop_any && tidy {
                    let end = at(last.value) + last.value.len() + 2;
                    data.slice(offset + at(first.name.as_bytes())..offset + end)
                } else {
                    let mut out = BytesMut::with_capacity(canonical);
                    for h in resp.headers.iter() {
                        let name = h.name.as_bytes();
                        let gone = match Known::of(name) {
                            Known::TransferEncoding | Known::Connection | Known::Dropped => true,
                            Known::ContentLength => !has_length,
                            _ => listed.iter().any(|l| l.eq_ignore_ascii_case(name)),
                        };
                        if !gone {
                            out.extend_from_slice(name);
                            out.extend_from_slice(b": ");
                            out.extend_from_slice(h.value);
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    out.freeze()
                }
            }
            _ => Bytes::new(),
        };
        let framing = if *method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::Empty
        } else if has_te {
            if chunked {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::Close,
            }
        };
        let keep_alive = framing != Framing::Close && !(close && !(http10 && keep_alive_10));
        let head = Head {
            status,
            version: if http10 {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
            headers: RawHeaders {
                lines,
                has_date,
                has_length,
            },
            framing,
            keep_alive,
        };
        return Ok(Some((head, offset + len)));
    }
}

/// Header names the parser of answers looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    ContentLength,
    TransferEncoding,
    Connection,
    Date,
    /// Hop-by-hop, or `X-Request-ID` (the gateway sends its own).
    Dropped,
    Other,
}

impl Known {
    fn of(name: &[u8]) -> Self {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        match name.len() {
            2 if is(b"te") => Known::Dropped,
            4 if is(b"date") => Known::Date,
            7 if is(b"trailer") || is(b"upgrade") => Known::Dropped,
            10 if is(b"connection") => Known::Connection,
            10 if is(b"keep-alive") => Known::Dropped,
            12 if is(b"x-request-id") => Known::Dropped,
            14 if is(b"content-length") => Known::ContentLength,
            16 if is(b"proxy-connection") => Known::Dropped,
            17 if is(b"transfer-encoding") => Known::TransferEncoding,
            _ => Known::Other,
        }
    }
}

/// An answer's header lines as they came, without the hop-by-hop ones (and those `Connection`
/// names), `X-Request-ID`, and `Content-Length` when `Transfer-Encoding` overrides it.
#[derive(Debug, Clone, Default)]
pub struct RawHeaders {
    /// `name: value\r\n` lines.
    pub lines: Bytes,
    /// Whether a `Date` line is among them.
    pub has_date: bool,
    /// Whether a `Content-Length` line is among them.
    pub has_length: bool,
}

impl RawHeaders {
    /// The lines added to `map` (for a client that needs a header map: HTTP/2).
    pub fn append_to(&self, map: &mut HeaderMap) {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        // The lines passed the answer's parser already; the blank line ends them.
        let mut text = BytesMut::with_capacity(self.lines.len() + 2);
        text.extend_from_slice(&self.lines);
        text.extend_from_slice(b"\r\n");
        let text = text.freeze();
        if let Ok(httparse::Status::Complete((_, headers))) =
            httparse::parse_headers(&text, &mut slots)
        {
            for h in headers.iter() {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_maybe_shared(text.slice_ref(h.value)),
                ) else {
                    continue;
                };
                map.append(name, value);
            }
        }
    }
}

/// The first value of `name` in `headers`: a scan of the few headers a request usually has (no
/// hashing), a lookup when there are many.
pub fn find_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    if headers.len() > 16 {
        return headers.get(name);
    }
    headers.iter().find_map(|(n, v)| (n == name).then_some(v))
}

/// `n` in decimal, written at the end of `buf`.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A `Content-Length` value: digits, possibly a list of the same number.
pub(crate) fn parse_length(raw: &[u8]) -> Result<u64, ParseError> {
    let bad = ParseError::Header("Content-Length");
    let mut result = None;
    for part in raw.split(|&b| b == b',') {
        let digits = part.trim_ascii();
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if result.is_some_and(|m| m != n) {
            return Err(bad);
        }
        result = Some(n);
    }
    result.ok_or(bad)
}

pub(crate) fn last_token(raw: &[u8]) -> &[u8] {
    raw.rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// What [`ChunkedDecoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The last chunk and the trailers have been read (trailers are dropped).
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// Decodes a chunked body from a buffer that fills as bytes arrive.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self {
            state: ChunkState::Size,
        }
    }
}

impl ChunkedDecoder {
    /// The next piece of the body at the start of `buf` (consumed from it); `Ok(None)` when
    /// more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ParseError> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(Some(Decoded::End)),
                ChunkState::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        buf.advance(len);
                        self.state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                        return Err(ParseError::Chunked)
                    }
                    Ok(httparse::Status::Partial) => return Ok(None),
                    Err(_) => return Err(ParseError::Chunked),
                },
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Some(Decoded::Data(data)));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(ParseError::Chunked);
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(ParseError::Chunked);
                        }
                        return Ok(None);
                    };
                    let empty = buf[..eol].iter().all(|&b| b == b'\r');
                    buf.advance(eol + 1);
                    if empty {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

/// A test input: `valid` with a few bytes replaced by bytes of `alphabet`, inserted, or cut off.
#[cfg(test)]
pub(crate) fn mangled(rng: &mut impl rand::Rng, valid: &[u8], alphabet: &[u8]) -> Vec<u8> {
    let mut input = valid.to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = rng.random_range(0..input.len());
        let byte = alphabet[rng.random_range(0..alphabet.len())];
        match rng.random_range(0..3) {
            0 => input[at] = byte,
            1 => input.truncate(at.max(1)),
            _ => input.insert(at, byte),
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, method: Method) -> Result<Option<Head>, ParseError> {
        let data = Bytes::copy_from_slice(text.as_bytes());
        Ok(parse_head(&data, &method)?.map(|(head, _)| head))
    }

    fn lines(head: &Head) -> &str {
        std::str::from_utf8(&head.headers.lines).unwrap()
    }

    #[test]
    fn request_encoded() {
        let mut out = BytesMut::from(&b"old"[..]);
        let mut w = RequestWriter::start(&mut out, &Method::POST, &["/base", "/x?y=1"]);
        w.header("host", &[b"c:1"]);
        w.header("x-forwarded-for", &[b"a", b", ", b"b"]);
        w.finish(b"{}");
        assert_eq!(
            &out[..],
            b"POST /base/x?y=1 HTTP/1.1\r\nhost: c:1\r\nx-forwarded-for: a, b\r\n\r\n{}"
        );
    }

    /// Mangled answers never panic the parser, and what it passes on is tidy lines.
    #[test]
    fn mangled_heads_never_panic() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let valid = b"HTTP/1.1 200 OK\r\nDate: d\r\nx-e:\r\nConnection: x-a, close\r\nx-a: 1\r\n\
                      Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        let alphabet = b"\r\n :,\t\x00\x7f\xff0123456789HTTP/1.01-chunkedkeep-alive";
        for _ in 0..5000 {
            let data = Bytes::from(mangled(&mut rng, valid, alphabet));
            if let Ok(Some((head, len))) = parse_head(&data, &Method::GET) {
                assert!(len <= data.len());
                let text = &head.headers.lines[..];
                assert!(text.is_empty() || text.ends_with(b"\r\n"));
                let mut map = HeaderMap::new();
                head.headers.append_to(&mut map);
            }
        }
    }

    #[test]
    fn names_cached_by_position() {
        let mut names = NameCache::default();
        assert_eq!(names.name(0, b"X-A").unwrap(), "x-a");
        // Only names sent in lower case are kept, at their position.
        assert!(names.names.is_empty());
        assert_eq!(names.name(0, b"x-b").unwrap(), "x-b");
        assert_eq!(names.name(1, b"x-a").unwrap(), "x-a");
        assert_eq!(names.names, ["x-b", "x-a"]);
        assert_eq!(names.name(0, b"x-a").unwrap(), "x-a");
        assert_eq!(names.names, ["x-a", "x-a"]);
        assert!(names.name(2, b"bad name").is_err());
    }

    #[test]
    fn heads() {
        let text = &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-a: b\r\n\r\nokNEXT"[..];
        let data = Bytes::from_static(text);
        let (head, len) = parse_head(&data, &Method::GET).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
        assert_eq!(lines(&head), "Content-Length: 2\r\nx-a: b\r\n");
        assert!(head.headers.has_length && !head.headers.has_date);
        assert_eq!(&data[len..], b"okNEXT");
        let mut map = HeaderMap::new();
        head.headers.append_to(&mut map);
        assert_eq!(map["x-a"], "b");
        assert_eq!(map["content-length"], "2");

        // Hop-by-hop lines, those `Connection` names and X-Request-ID go; untidy lines are
        // written out again.
        let head = parse(
            "HTTP/1.1 200 OK\r\nDate: d\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\n\
             Keep-Alive: 5\r\nx-request-id: theirs\r\nx-b:  spaced \r\nContent-Length: 0\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            lines(&head),
            "Date: d\r\nx-b: spaced\r\nContent-Length: 0\r\n"
        );
        assert!(head.headers.has_date && head.headers.has_length);
        let head = parse("HTTP/1.1 200 OK\r\nx-e:\r\nx-f: \r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(lines(&head), "x-e: \r\nx-f: \r\n");
        let head = parse("HTTP/1.1 200 OK\nx-a: 1\n\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(lines(&head), "x-a: 1\r\n");

        // Split reads: partial until the blank line.
        let mut text = b"HTTP/1.1 200 OK\r\nContent-Len".to_vec();
        assert!(parse(std::str::from_utf8(&text).unwrap(), Method::GET)
            .unwrap()
            .is_none());
        text.extend_from_slice(b"gth: 0\r\n\r");
        assert!(parse(std::str::from_utf8(&text).unwrap(), Method::GET)
            .unwrap()
            .is_none());
        text.extend_from_slice(b"\n");
        let head = parse(std::str::from_utf8(&text).unwrap(), Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, Framing::Empty);

        let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::HEAD);
        assert_eq!(head.unwrap().unwrap().framing, Framing::Empty);
        for status in ["204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            let head = parse(&text, Method::GET).unwrap().unwrap();
            assert_eq!(head.framing, Framing::Empty);
            assert!(head.keep_alive);
        }

        let head = parse(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            Method::GET,
        );
        let head = head.unwrap().unwrap();
        assert_eq!(head.framing, Framing::Length(1));
        assert!(!head.keep_alive);

        let head = parse("HTTP/1.1 200 OK\r\n\r\n", Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, Framing::Close);
        assert!(!head.keep_alive);

        let head = parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::GET);
        assert!(!head.unwrap().unwrap().keep_alive);
        let text = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n";
        assert!(parse(text, Method::GET).unwrap().unwrap().keep_alive);

        let text =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n";
        let head = parse(text, Method::GET).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive);
        assert_eq!(lines(&head), "");
        assert!(!head.headers.has_length);
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(
            parse(text, Method::GET).unwrap().unwrap().framing,
            Framing::Close
        );

        // Interim answers are skipped.
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse(text, Method::POST).unwrap().unwrap().status, 201);
    }

    #[test]
    fn bad_heads() {
        let cases = [
            "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 999999 Weird\r\n\r\n",
        ];
        for text in cases {
            assert!(parse(text, Method::GET).is_err(), "{text:?}");
        }
        let same = "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n";
        assert_eq!(
            parse(same, Method::GET).unwrap().unwrap().framing,
            Framing::Length(3)
        );
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(
            parse(&long, Method::GET).unwrap_err(),
            ParseError::HeadTooLarge
        );
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x{i}: 1\r\n"))
            .collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert!(parse(&many, Method::GET).is_err());
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool), ParseError> {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in pieces {
            buf.extend_from_slice(piece);
            while let Some(x) = d.decode(&mut buf)? {
                match x {
                    Decoded::Data(b) => body.extend_from_slice(&b),
                    Decoded::End => return Ok((body, buf.is_empty())),
                }
            }
        }
        Ok((body, false))
    }

    #[test]
    fn chunked() {
        let whole: &[u8] = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(decode_all(&[whole]).unwrap(), (b"Wikipedia".to_vec(), true));
        // Every split point, byte by byte.
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(decode_all(&bytes).unwrap(), (b"Wikipedia".to_vec(), true));
        assert_eq!(decode_all(&[b"0\r\n\r\n"]).unwrap(), (Vec::new(), true));
        // Not finished yet.
        assert_eq!(decode_all(&[b"4\r\nWi"]).unwrap(), (b"Wi".to_vec(), false));
        for bad in [&b"x\r\n"[..], b"4\r\nWikiXX", b"fffffffffffffffff\r\n"] {
            assert!(decode_all(&[bad]).is_err(), "{bad:?}");
        }
        let long_ext = [b"4;".as_slice(), &[b'a'; MAX_CHUNK_LINE]].concat();
        assert!(decode_all(&[&long_ext]).is_err());
    }
}
