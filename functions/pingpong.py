"""Two instances measure peer messaging: round trips of small messages (rank 0 sends, rank 1
echoes) and the bandwidth of large ones, through whisk_peers' framed TCP.

    whisk action invoke pingpong --instances 2 -b -r -p rounds 2000 -p mb 256
"""
import time
import whisk_peers as wp


def main(args):
    rounds = int(args.get("rounds", 2000))
    chunk = int(args.get("chunk_kb", 1024)) * 1024
    total = int(args.get("mb", 256)) * 1024 * 1024
    wp.wait_for(2, timeout=30)
    other = [p for p in wp.peers() if p != wp.me()][0]
    small = b"x" * 64
    if wp.rank() == 0:
        rtts = []
        for _ in range(rounds):
            t = time.perf_counter()
            wp.send(other, small)
            wp.recv(timeout=10)
            rtts.append(time.perf_counter() - t)
        rtts.sort()
        payload = b"y" * chunk
        t = time.perf_counter()
        sent = 0
        while sent < total:
            wp.send(other, payload)
            sent += len(payload)
        wp.recv(timeout=60)  # the receiver's acknowledgement
        secs = time.perf_counter() - t
        return {
            "rtt_p50_us": rtts[len(rtts) // 2] * 1e6,
            "rtt_p99_us": rtts[int(len(rtts) * 0.99)] * 1e6,
            "rounds": rounds,
            "bandwidth_gb_s": sent / secs / 1e9,
            "bytes": sent,
        }
    for _ in range(rounds):
        sender, data = wp.recv(timeout=10)
        wp.send(sender, data)
    got = 0
    while got < total:
        _, data = wp.recv(timeout=60)
        got += len(data)
    wp.send(other, b"done")
    return {"received": got}
