//! Property tests of `whisk_peers`' socket framing (`python/whisk_peers.py`): the listener's
//! side of a connection, `_serve_conn`, fed arbitrary byte streams through an in-memory socket
//! in one long-lived `python3` process (a few hundred microseconds a case).
//!
//! - A stranger's stream (arbitrary bytes where the handshake belongs): the connection is
//!   refused and closed, nothing reaches any inbox, no exception escapes, and the handshake
//!   slot is given back.
//! - An authenticated peer's stream (a valid handshake under the group's secret, then frames
//!   built here — 4-byte big-endian length, kind byte, payload — mixed with arbitrary bytes and
//!   cut anywhere): the inbox holds exactly the messages a model decoder written here finds in
//!   the same bytes, in order (user messages by sender, collective ones by kind and sender),
//!   and the connection ends cleanly.
//!
//! `WHISK_FUZZ_CASES` multiplies the case counts.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use base64::Engine;
use proptest::prelude::*;
use serde_json::Value;
use whisk_test_support::fuzz::{self, Xorshift};

/// Reads cases from stdin (`<mode byte><u32 length><bytes>`), answers one JSON line each.
const HARNESS: &str = r#"
import base64, json, os, resource, struct, sys, tempfile
d = tempfile.mkdtemp()
with open(os.path.join(d, "group.key"), "wb") as f:
    f.write(b"s" * 64)
os.environ.update(WHISK_PEERS_DIR=d, __OW_PEER_GROUP="g", __OW_INSTANCE_ID="0")
import whisk_peers as wp

NONCE_S, NONCE_C = b"S" * 16, b"C" * 16
wp.os.urandom = lambda n: NONCE_S[:n]

class Sock:
    def __init__(self, data):
        self.data, self.pos, self.sent, self.closed = data, 0, b"", False
    def settimeout(self, t):
        pass
    def recv_into(self, view, n):
        k = min(n, len(self.data) - self.pos, 1 + self.pos % 977)
        view[:k] = self.data[self.pos:self.pos + k]
        self.pos += k
        return k
    def sendall(self, b):
        self.sent += b
    def close(self):
        self.closed = True

def hello(sender):
    tag = wp._tag(b"s" * 64, b"client", "g", sender, "0", NONCE_S, NONCE_C)
    names = ("g\n%s\n0" % sender).encode()
    b = wp._HELLO + NONCE_C + tag + names
    return struct.pack(">I", len(b)) + b

inp, out = sys.stdin.buffer, sys.stdout
while True:
    head = inp.read(5)
    if len(head) < 5:
        break
    mode, n = head[0], struct.unpack(">I", head[1:])[0]
    data = inp.read(n)
    if mode == 1:
        data = hello("1") + data
    wp._inbox.clear()
    sock = Sock(data)
    if not wp._pending.acquire(blocking=False):
        print(json.dumps({"error": "no handshake slot left"}), flush=True)
        continue
    try:
        wp._serve_conn(sock)
        error = None
    except BaseException as e:
        error = "%s: %s" % (type(e).__name__, e)
    messages = []
    for (group, kind, sender), q in wp._inbox.items():
        while not q.empty():
            item = q.get()
            if kind == wp._USER:
                sender, item = item
            messages.append([group, kind, sender, base64.b64encode(item).decode()])
    print(json.dumps({"error": error, "closed": sock.closed, "messages": messages,
                      "read": sock.pos, "sent": len(sock.sent),
                      "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"#;

struct Harness {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

static HARNESS_PROCESS: Mutex<Option<Harness>> = Mutex::new(None);

/// Runs one stream through `_serve_conn`; its answer.
fn serve(mode: u8, bytes: &[u8]) -> Value {
    let mut guard = HARNESS_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let h = guard.get_or_insert_with(|| {
        let python_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(HARNESS)
            .env("PYTHONPATH", python_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Harness {
            _child: child,
            stdin,
            stdout,
        }
    });
    let mut msg = vec![mode];
    msg.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    msg.extend_from_slice(bytes);
    h.stdin.write_all(&msg).expect("the harness reads");
    h.stdin.flush().unwrap();
    let mut line = String::new();
    h.stdout.read_line(&mut line).expect("the harness answers");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("harness answered {line:?}: {e}"))
}

/// What the framing says is in `bytes` after the handshake: (kind, payload) in order.
fn model(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let n = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
        if n == 0 {
            continue;
        }
        if rest.len() < n {
            break;
        }
        out.push((rest[0], rest[1..n].to_vec()));
        rest = &rest[n..];
    }
    out
}

/// Frames, as `whisk_peers` writes them, mixed with arbitrary bytes, sometimes cut short.
fn stream(rng: &mut Xorshift) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(6) {
        match rng.below(8) {
            0 => out.extend(rng.bytes(12)),
            1 => out.extend_from_slice(&[0, 0, 0, 0]),
            2 => {
                // A length that promises more than follows (at most 1 MB).
                out.extend_from_slice(&(1 + rng.below(1 << 20) as u32).to_be_bytes());
            }
            _ => {
                let kind = if rng.one_in(2) {
                    0
                } else {
                    rng.below(256) as u8
                };
                let payload = if rng.one_in(20) {
                    vec![7; 70_000]
                } else {
                    rng.bytes(40)
                };
                out.extend_from_slice(&(payload.len() as u32 + 1).to_be_bytes());
                out.push(kind);
                out.extend(payload);
            }
        }
    }
    if rng.one_in(4) && !out.is_empty() {
        out.truncate(rng.below(out.len() as u64) as usize);
    }
    out
}

fn check_stranger(bytes: &[u8]) -> Result<(), TestCaseError> {
    let v = serve(0, bytes);
    prop_assert!(v["error"].is_null(), "{v} for {bytes:?}");
    prop_assert_eq!(&v["closed"], &Value::Bool(true), "{} for {:?}", v, bytes);
    prop_assert_eq!(
        v["messages"].as_array().map(Vec::len),
        Some(0),
        "{} for {:?}",
        v,
        bytes
    );
    // Nothing past the longest handshake frame is read from a stranger.
    prop_assert!(v["read"].as_u64().unwrap() <= 4 + 4096, "{v}");
    Ok(())
}

fn check_peer(bytes: &[u8]) -> Result<(), TestCaseError> {
    let v = serve(1, bytes);
    prop_assert!(v["error"].is_null(), "{v}");
    prop_assert_eq!(&v["closed"], &Value::Bool(true));
    let got: Vec<(u8, String, Vec<u8>)> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let payload = base64::engine::general_purpose::STANDARD
                .decode(m[3].as_str().unwrap())
                .unwrap();
            (
                m[1].as_u64().unwrap() as u8,
                m[2].as_str().unwrap_or("").to_string(),
                payload,
            )
        })
        .collect();
    let mut want: Vec<(u8, String, Vec<u8>)> = model(bytes)
        .into_iter()
        .map(|(k, p)| (k, "1".to_string(), p))
        .collect();
    // The harness lists the inbox queue by queue: compare as multisets, order within a kind.
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|m| m.0);
    want.sort_by_key(|m| m.0);
    prop_assert_eq!(got_sorted, want, "stream {:?}", bytes);
    Ok(())
}

proptest! {
    #![proptest_config(fuzz::cases(6_000))]

    #[test]
    fn a_strangers_bytes_are_refused(seed in any::<u64>()) {
        let mut rng = Xorshift::new(seed);
        let bytes = match rng.below(3) {
            0 => rng.bytes(64),
            // A handshake-looking frame: the hello prefix, then anything.
            1 => {
                let mut b = b"WHISK2 ".to_vec();
                b.extend(rng.bytes(80));
                if rng.one_in(2) {
                    b.extend(rng.text(8).into_bytes());
                    b.push(b'\n');
                    b.extend(rng.text(4).into_bytes());
                }
                let mut framed = (b.len() as u32).to_be_bytes().to_vec();
                framed.extend(b);
                framed
            }
            _ => stream(&mut rng),
        };
        check_stranger(&bytes)?;
    }

    #[test]
    fn a_peers_frames_decode_as_written(seed in any::<u64>()) {
        check_peer(&stream(&mut Xorshift::new(seed)))?;
    }
}

/// Found by `a_peers_frames_decode_as_written`: a frame's length was allocated (and zeroed)
/// before any of its bytes arrived, so 4 bytes saying "4 GB" made the receiver take 4 GB.
#[test]
fn a_huge_length_allocates_nothing_big() {
    let mut bytes = 0xFFFF_FFF0u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(b"\x00only a few bytes follow");
    let v = serve(1, &bytes);
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(v["messages"], serde_json::json!([]));
    let rss_mb = v["max_rss_kb"].as_u64().unwrap() / 1024;
    assert!(rss_mb < 512, "the harness grew to {rss_mb} MB");
}
