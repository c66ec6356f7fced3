"""Waits until `n` instances of its group are listed, then returns what it saw: the seed's
addrMap.txt line (read the way the seed's functions read it) and its own id. It stays
`hold` seconds more (as the seed's fib computes), so that every instance overlaps with all
the others and sees the whole group."""
import os
import time
import whisk_peers


def main(args):
    n = int(args.get("n", 4))
    whisk_peers.wait_for(n, timeout=float(args.get("timeout", 20)))
    path = os.path.join(os.environ.get("WHISK_PEERS_DIR", "/addrMap"), "addrMap.txt")
    with open(path) as f:
        line = f.readline().strip("\n")
    entries = dict(e.split("=") for e in line.split("&") if e)
    time.sleep(float(args.get("hold", 1)))
    return {"me": whisk_peers.me(), "addrMap": line, "peers": entries}
