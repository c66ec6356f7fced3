"""whisk_peers: direct messaging between the instances of a whisk-rs action (MPI-style).

Every instance started with an `instanceID` (or by a gang invoke) sees its group's live peer
map in the folder named by WHISK_PEERS_DIR (`/addrMap` in Docker): `addrMap.txt` in the
seed's format `id=ip&id=ip`, and `peers.json` with versions and ports. This module reads that
map and moves bytes between instances over plain TCP, framed as the seed's functions frame
them: a 4-byte big-endian length, then the payload.

Every connection is authenticated with the group's secret, which the invoker writes to
`group.key` in that folder (and gives no one else). The listener speaks first:
`WHISK2 <16-byte nonce>`; the connecting instance answers `WHISK2 <its nonce><tag><group>\n
<its id>\n<listener's id>`, where tag = HMAC-SHA256(secret, "client", the three names, both
nonces); the listener checks it (and that group and listener id are its own), then proves
itself with the tag of "server" over the same fields. Anything else is refused before a byte of
it is read as a message, so an action of another group or namespace that reaches the port
cannot inject a message or claim an instance's id.

    import whisk_peers as wp
    wp.wait_for(4, timeout=10)          # until 4 instances are listed
    wp.send("1", b"hello")              # to instance "1"
    sender, data = wp.recv(timeout=5)
    wp.barrier()
    total = wp.allreduce(rank, "sum")

The listening socket (port 65432 by default, or the port published in peers.json) is bound
only when first needed, so a function that opens its own socket on that port still can.
"""

import hashlib
import hmac
import json
import os
import pickle
import queue
import socket
import struct
import threading
import time

__all__ = [
    "PeerError", "PeerTimeout", "PeerGone", "me", "peers", "rank", "size", "wait_for",
    "send", "recv", "barrier", "broadcast", "allreduce", "DEFAULT_PORT",
]

DEFAULT_PORT = 65432
_HELLO = b"WHISK2 "
_USER, _COLL = 0, 1
_KEY_FILE = "group.key"
_NONCE = 16
_TAG = 32
_HELLO_MAX = 4096          # longest handshake frame read from a stranger
_HANDSHAKE_TIMEOUT = 5.0   # a stranger's handshake holds a thread at most this long
_PENDING_MAX = 64          # handshakes in progress at once; more are closed at once


class PeerError(Exception):
    """A peer operation failed."""


class PeerTimeout(PeerError):
    """A peer operation did not complete in time."""


class PeerGone(PeerError):
    """A peer left the group (its activation ended or its container died)."""


def _dir():
    return os.environ.get("WHISK_PEERS_DIR", "/addrMap")


def me():
    """This instance's id (the invocation's `instanceID`, as text)."""
    v = os.environ.get("__OW_INSTANCE_ID")
    if not v:
        raise PeerError("this activation has no instanceID: invoke it with -p instanceID NAME")
    return v


def _read_map():
    try:
        with open(os.path.join(_dir(), "peers.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"version": 0, "peers": []}
    except ValueError:
        # Files are replaced atomically, so this only happens with a foreign writer.
        return {"version": 0, "peers": []}


def peers():
    """The live peers of this group: {id: (ip, port)}, this instance included."""
    return {p["id"]: (p["ip"], int(p.get("port") or DEFAULT_PORT)) for p in _read_map()["peers"]}


def _sort_key(i):
    return (0, int(i), i) if i.lstrip("-").isdigit() else (1, 0, i)


def _members():
    return sorted(peers(), key=_sort_key)


def size():
    """Expected group size: the gang size for gang invokes, else the peers listed now."""
    n = os.environ.get("__OW_GANG_SIZE")
    return int(n) if n else len(peers())


def rank(timeout=30.0):
    """This instance's position among the sorted ids of the group (numeric ids sort
    numerically); waits until the group is complete (gangs) or this instance is listed."""
    deadline = time.monotonic() + timeout
    wait_for(size() or 1, timeout)
    while me() not in peers():
        if time.monotonic() > deadline:
            raise PeerTimeout("this instance %r is not listed in its peer map" % me())
        time.sleep(0.001)
    return _members().index(me())


def wait_for(n, timeout=30.0):
    """Waits until at least `n` instances are listed; returns {id: (ip, port)}."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        p = peers()
        if len(p) >= n:
            return p
        if time.monotonic() > deadline:
            raise PeerTimeout("only %d of %d peers appeared within %.1f s: %s" % (len(p), n, timeout, sorted(p)))
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


# ---- transport -----------------------------------------------------------------------------

_lock = threading.Lock()
_inbox = {}        # (group, kind, sender or None) -> queue.Queue
_conns = {}        # (my group, my id, peer id) -> socket
_listener = None


def _group_name():
    return os.environ.get("__OW_PEER_GROUP", "")


_PREALLOC = 1 << 20  # bytes of a message allocated before any of it arrives


def _recvall(sock, n):
    # The buffer grows (doubling) as bytes arrive: a length alone, say 4 GB from a broken or
    # hostile sender, allocates at most _PREALLOC.
    buf = bytearray(min(n, _PREALLOC))
    got = 0
    while got < n:
        if got == len(buf):
            buf.extend(bytes(min(n - got, len(buf))))
        with memoryview(buf) as view:
            k = sock.recv_into(view[got:], len(buf) - got)
        if not k:
            raise ConnectionError("connection closed")
        got += k
    return bytes(buf)


def _read_frame(sock, limit=None):
    (n,) = struct.unpack(">I", _recvall(sock, 4))
    if limit is not None and n > limit:
        raise ConnectionError("frame of %d bytes, at most %d expected" % (n, limit))
    return _recvall(sock, n)


def _secret():
    """This group's secret (written by the invoker for this activation)."""
    try:
        with open(os.path.join(_dir(), _KEY_FILE), "rb") as f:
            key = f.read().strip()
    except OSError:
        key = b""
    if not key:
        raise PeerError("no group secret in %s: is this a peer instance (-p instanceID)?" % _dir())
    return key


def _tag(secret, role, group, sender, receiver, nonce_s, nonce_c):
    msg = [b"whisk-rs peers v2", role]
    for name in (group, sender, receiver):
        b = name.encode()
        msg.append(struct.pack(">I", len(b)) + b)
    msg += [nonce_s, nonce_c]
    return hmac.new(secret, b"\n".join(msg), hashlib.sha256).digest()


class _Refused(OSError):
    """The other side failed the handshake."""


_pending = threading.BoundedSemaphore(_PENDING_MAX)


def _accept_handshake(sock):
    """The listener's side: returns (group, sender) of an authenticated peer, else raises."""
    sock.settimeout(_HANDSHAKE_TIMEOUT)
    nonce_s = os.urandom(_NONCE)
    _write_frame(sock, _HELLO + nonce_s)
    hello = _read_frame(sock, _HELLO_MAX)
    if not hello.startswith(_HELLO) or len(hello) < len(_HELLO) + _NONCE + _TAG:
        raise _Refused("not a whisk_peers handshake")
    rest = hello[len(_HELLO):]
    nonce_c, tag, names = rest[:_NONCE], rest[_NONCE:_NONCE + _TAG], rest[_NONCE + _TAG:]
    group, sender, receiver = names.decode("utf-8").split("\n")
    secret = _secret()
    want = _tag(secret, b"client", group, sender, receiver, nonce_s, nonce_c)
    if not hmac.compare_digest(tag, want) or group != _group_name() or receiver != me():
        raise _Refused("handshake refused")
    _write_frame(sock, _tag(secret, b"server", group, sender, receiver, nonce_s, nonce_c))
    sock.settimeout(None)
    return group, sender


def _connect_handshake(c, peer_id, timeout):
    """The connecting side: proves this instance belongs to the group, checks the listener."""
    c.settimeout(max(timeout, 1.0))
    first = _read_frame(c, 64)
    if not first.startswith(_HELLO) or len(first) != len(_HELLO) + _NONCE:
        raise _Refused("peer %r did not start a whisk_peers handshake" % peer_id)
    nonce_s, nonce_c = first[len(_HELLO):], os.urandom(_NONCE)
    group, sender, secret = _group_name(), me(), _secret()
    tag = _tag(secret, b"client", group, sender, peer_id, nonce_s, nonce_c)
    names = ("%s\n%s\n%s" % (group, sender, peer_id)).encode()
    _write_frame(c, _HELLO + nonce_c + tag + names)
    try:
        reply = _read_frame(c, 64)
    except (OSError, ConnectionError, struct.error):
        raise _Refused("peer %r refused the handshake" % peer_id)
    if not hmac.compare_digest(reply, _tag(secret, b"server", group, sender, peer_id, nonce_s, nonce_c)):
        raise _Refused("the listener at peer %r's address is not of this group" % peer_id)
    c.settimeout(None)


def _write_frame(sock, payload):
    header = struct.pack(">I", len(payload))
    if len(payload) < 65536:
        sock.sendall(header + payload)
    else:
        # No copy of large payloads: the header, then the payload itself.
        sock.sendall(header)
        sock.sendall(payload)


def _write_kind_frame(sock, kind, data):
    """One frame whose payload is the kind byte, then `data` (not copied when large)."""
    header = struct.pack(">IB", len(data) + 1, kind)
    if len(data) < 65536:
        sock.sendall(header + data)
    else:
        sock.sendall(header)
        sock.sendall(data)


def _queue(group, kind, sender):
    """Messages are kept per (group, kind, sender): an instance reused by a later activation
    (warm container) never mixes them up, and one that starts late loses none. User messages
    of a group share one queue, in arrival order."""
    key = (group, kind, None if kind == _USER else sender)
    with _lock:
        q = _inbox.get(key)
        if q is None:
            q = _inbox[key] = queue.Queue()
        return q


def _serve_conn(sock):
    try:
        try:
            group, sender = _accept_handshake(sock)
        finally:
            _pending.release()
    except Exception:  # a stranger, a bad handshake, a wrong secret: refused, nothing read
        sock.close()
        return
    try:
        while True:
            (n,) = struct.unpack(">I", _recvall(sock, 4))
            if n == 0:
                continue
            kind = _recvall(sock, 1)[0]
            payload = _recvall(sock, n - 1)
            if kind == _USER:
                _queue(group, _USER, None).put((sender, payload))
            else:
                _queue(group, kind, sender).put(payload)
    except (OSError, ConnectionError, struct.error):
        sock.close()


def _ensure_listening():
    global _listener
    with _lock:
        if _listener is not None:
            return
        ip, port = peers().get(me(), ("0.0.0.0", DEFAULT_PORT))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(128)
        _listener = s

    def accept_loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            if not _pending.acquire(blocking=False):
                c.close()  # too many handshakes in progress: a flood, not the group
                continue
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_serve_conn, args=(c,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()


def _connect(peer_id, timeout):
    key = (_group_name(), me(), peer_id)
    with _lock:
        c = _conns.get(key)
    if c is not None:
        return c
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        addr = peers().get(peer_id)
        if addr is None:
            if time.monotonic() > deadline:
                raise PeerGone("peer %r is not in the group" % peer_id)
        else:
            try:
                c = socket.create_connection(addr, timeout=max(0.05, deadline - time.monotonic()))
                try:
                    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    _connect_handshake(c, peer_id, deadline - time.monotonic())
                except BaseException:
                    c.close()
                    raise
                with _lock:
                    _conns[key] = c
                return c
            except (OSError, ConnectionError, struct.error) as e:
                # Not listening yet (it binds on first use), or not authenticated (yet): retry
                # until the deadline.
                if time.monotonic() > deadline:
                    why = str(e) if isinstance(e, _Refused) else "not reachable"
                    raise PeerTimeout("cannot connect to peer %r at %s:%d: %s" % (peer_id, addr[0], addr[1], why))
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _send(peer_id, kind, data, timeout):
    _ensure_listening()
    c = _connect(peer_id, timeout)
    try:
        _write_kind_frame(c, kind, data)
    except OSError:
        with _lock:
            _conns.pop((_group_name(), me(), peer_id), None)
        raise PeerGone("peer %r closed the connection" % peer_id)


def send(peer_id, data, timeout=30.0):
    """Sends bytes to the instance `peer_id`."""
    if isinstance(data, str):
        data = data.encode()
    _send(str(peer_id), _USER, bytes(data), timeout)


def _wait(q, timeout, who):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            if who is not None and who not in peers():
                raise PeerGone("peer %r left the group" % who)
            if time.monotonic() >= deadline:
                raise PeerTimeout("nothing received within %.1f s" % timeout)


def recv(timeout=30.0):
    """Waits for the next message from any peer: returns (sender id, bytes)."""
    _ensure_listening()
    return _wait(_queue(_group_name(), _USER, None), timeout, None)


def _coll_send(peer_id, obj, timeout):
    _send(peer_id, _COLL, pickle.dumps(obj), timeout)


def _coll_recv(peer_id, timeout):
    _ensure_listening()
    return pickle.loads(_wait(_queue(_group_name(), _COLL, peer_id), timeout, peer_id))


def _group(timeout):
    n = size()
    wait_for(n, timeout)
    return _members()[:n] if os.environ.get("__OW_GANG_SIZE") else _members()


def broadcast(root, obj=None, timeout=30.0):
    """Sends `obj` from instance `root` to every instance; returns it everywhere."""
    root = str(root)
    group = _group(timeout)
    if me() == root:
        for p in group:
            if p != root:
                _coll_send(p, obj, timeout)
        return obj
    return _coll_recv(root, timeout)


_OPS = {
    "sum": lambda a, b: a + b,
    "max": max,
    "min": min,
    "prod": lambda a, b: a * b,
}


def allreduce(value, op="sum", timeout=30.0):
    """Combines `value` of every instance with `op` ("sum", "max", "min", "prod" or a
    two-argument function); every instance gets the result."""
    fn = _OPS.get(op, op) if isinstance(op, str) else op
    if not callable(fn):
        raise PeerError("unknown reduction %r" % (op,))
    group = _group(timeout)
    root = group[0]
    if me() == root:
        acc = value
        for p in group[1:]:
            acc = fn(acc, _coll_recv(p, timeout))
        for p in group[1:]:
            _coll_send(p, acc, timeout)
        return acc
    _coll_send(root, value, timeout)
    return _coll_recv(root, timeout)


def barrier(timeout=30.0):
    """Returns once every instance of the group has called barrier()."""
    allreduce(0, "sum", timeout)
