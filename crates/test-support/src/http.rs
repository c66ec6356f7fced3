//! Raw HTTP/1.1 clients for the edge tests (the gateway, the controller's listener): requests
//! written by hand or slowly ([`slow_request`], [`plain_pieces`], [`chunked_pieces`]), an
//! answer's head ([`read_head`]), a whole exchange up to the server's close ([`exchange`]),
//! stalled bodies ([`stalled_post`]), clients that stop reading ([`unread_get`], [`drain`],
//! [`assert_let_go`]). Every read is bounded by [`ANSWER_WITHIN`].

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for an answer (or the close) before it fails.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(20);

/// A connection to `addr` on which `bytes` were written.
pub async fn send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.write_all(bytes)
        .await
        .unwrap_or_else(|e| panic!("writing to {addr}: {e}"));
    s
}

/// Reads until the end of an answer's head (or the end of the stream); fails the test after
/// [`ANSWER_WITHIN`].
pub async fn read_head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(ANSWER_WITHIN, async {
        while !out.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {ANSWER_WITHIN:?}");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads everything until the server closes the connection; fails the test when it does not
/// within [`ANSWER_WITHIN`].
pub async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server did not close the connection within {ANSWER_WITHIN:?}"
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `request` and reads everything until the server closes the connection.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    read_to_close(&mut send(addr, request).await).await
}

/// Sends `head`, then `pieces` in turn with `pause` after each (every write must succeed: an
/// early answer must not cost the client its connection), then reads the answer's head.
pub async fn slow_request(
    addr: SocketAddr,
    head: &str,
    pieces: impl IntoIterator<Item = Vec<u8>>,
    pause: Duration,
) -> String {
    let mut s = send(addr, head.as_bytes()).await;
    let mut sent = 0;
    for piece in pieces {
        if let Err(e) = s.write_all(&piece).await {
            panic!("writing the body failed after {sent} bytes: {e}");
        }
        sent += piece.len();
        tokio::time::sleep(pause).await;
    }
    read_head(&mut s).await
}

/// A body of `len` bytes `x` in pieces of at most `piece` bytes.
pub fn plain_pieces(len: usize, piece: usize) -> Vec<Vec<u8>> {
    (0..len.div_ceil(piece))
        .map(|i| vec![b'x'; piece.min(len - i * piece)])
        .collect()
}

/// The same body chunk-encoded: a chunk per piece, then the last chunk.
pub fn chunked_pieces(len: usize, piece: usize) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = plain_pieces(len, piece)
        .into_iter()
        .map(|p| {
            let mut c = format!("{:x}\r\n", p.len()).into_bytes();
            c.extend_from_slice(&p);
            c.extend_from_slice(b"\r\n");
            c
        })
        .collect();
    pieces.push(b"0\r\n\r\n".to_vec());
    pieces
}

/// A body that stalls: `POST path` announcing 100 bytes, then only 10 of them.
pub async fn stalled_post(addr: SocketAddr, path: &str) -> TcpStream {
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    send(addr, head.as_bytes()).await
}

/// `GET path` from a client that then reads nothing of the answer.
pub async fn unread_get(addr: SocketAddr, path: &str) -> TcpStream {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await
}

/// Asserts that the server let a client that stopped reading go (its send timeout): after 2 s
/// of not reading, less than the whole answer of `whole` bytes arrives before the connection
/// ends (read for at most 10 s).
pub async fn assert_let_go(s: &mut TcpStream, whole: usize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = drain(s, Duration::from_secs(10)).await;
    assert!(
        got < whole,
        "the send timeout ended the answer ({got} of {whole} bytes)"
    );
}

/// Reads what arrives on `s` until it ends or `within` passes; how many bytes came.
pub async fn drain(s: &mut TcpStream, within: Duration) -> usize {
    let mut got = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    let _ = tokio::time::timeout(within, async {
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    got
}

/// An `Authorization` header value: `Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_add_up_to_the_body() {
        let plain = plain_pieces(150, 64);
        assert_eq!(plain.iter().map(Vec::len).collect::<Vec<_>>(), [64, 64, 22]);
        let chunked: Vec<u8> = chunked_pieces(70, 64).concat();
        let expected = format!(
            "40\r\n{}\r\n6\r\n{}\r\n0\r\n\r\n",
            "x".repeat(64),
            "x".repeat(6)
        );
        assert_eq!(String::from_utf8(chunked).unwrap(), expected);
    }

    #[tokio::test]
    async fn a_request_head_and_an_exchange() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let head = read_head(&mut s).await;
            assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
        });
        let answer = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(answer, "HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(basic_auth("u", "p"), "Basic dTpw");
    }
}
