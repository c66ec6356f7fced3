"""Reports the wall-clock time at which this instance first saw its whole gang."""
import time
import whisk_peers as wp


def main(args):
    wp.wait_for(wp.size(), timeout=float(args.get("timeout", 60)))
    seen = time.time()
    wp.barrier(timeout=60)
    return {"seen_at": seen}
