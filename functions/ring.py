"""Passes a token around N instances: rank 0 sends 0 to rank 1, each rank adds its own rank
and sends it on, and rank 0 receives the sum 0 + 1 + ... + N-1 after one lap.

    whisk action create ring functions/ring.py
    whisk action invoke ring --instances 8 -b -r
"""
import whisk_peers as wp


def main(args):
    n = wp.size()
    wp.wait_for(n, timeout=float(args.get("timeout", 30)))
    me = wp.rank()
    ids = sorted(wp.peers(), key=lambda i: (0, int(i)) if i.isdigit() else (1, i))
    nxt, prev = ids[(me + 1) % n], ids[(me - 1) % n]
    if n == 1:
        return {"rank": 0, "token": 0}
    if me == 0:
        wp.send(nxt, b"0")
        sender, data = wp.recv()
        assert sender == prev, (sender, prev)
        return {"rank": me, "size": n, "token": int(data)}
    sender, data = wp.recv()
    wp.send(nxt, str(int(data) + me).encode())
    return {"rank": me, "size": n, "passed": int(data) + me}
