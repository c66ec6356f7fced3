"""whisk_peers: direct messaging between the instances of a whisk-rs action (MPI-style).

Every instance started with an `instanceID` (or by a gang invoke) sees its group's live peer
map in the folder named by WHISK_PEERS_DIR (`/addrMap` in Docker): `addrMap.txt` in the
seed's format `id=ip&id=ip`, and `peers.json` with versions and ports. This module reads that
map and moves bytes between instances over plain TCP, framed as the seed's functions frame
them: a 4-byte big-endian length, then the payload. A connection opens with one frame
`WHISK1 <group>\n<sender id>` so that the receiver knows who is talking.

    import whisk_peers as wp
    wp.wait_for(4, timeout=10)          # until 4 instances are listed
    wp.send("1", b"hello")              # to instance "1"
    sender, data = wp.recv(timeout=5)
    wp.barrier()
    total = wp.allreduce(rank, "sum")

The listening socket (port 65432 by default, or the port published in peers.json) is bound
only when first needed, so a function that opens its own socket on that port still can.
"""

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
_HELLO = b"WHISK1 "
_USER, _COLL = 0, 1


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


def _recvall(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if not k:
            raise ConnectionError("connection closed")
        got += k
    return bytes(buf)


def _read_frame(sock):
    (n,) = struct.unpack(">I", _recvall(sock, 4))
    return _recvall(sock, n)


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
        hello = _read_frame(sock)
        if not hello.startswith(_HELLO):
            sock.close()
            return
        group, _, sender = hello[len(_HELLO):].decode().partition("\n")
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
                c.settimeout(None)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _write_frame(c, _HELLO + ("%s\n%s" % (_group_name(), me())).encode())
                with _lock:
                    _conns[key] = c
                return c
            except OSError:
                # Not listening yet (it binds on first use): retry until the deadline.
                if time.monotonic() > deadline:
                    raise PeerTimeout("cannot connect to peer %r at %s:%d" % (peer_id, addr[0], addr[1]))
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
