"""Every instance contributes its rank; every instance gets the sum 0 + 1 + ... + N-1.

    whisk action create allreduce functions/allreduce.py
    whisk action invoke allreduce --instances 8 -b -r
"""
import whisk_peers as wp


def main(args):
    rank = wp.rank()
    total = wp.allreduce(rank, "sum", timeout=float(args.get("timeout", 30)))
    wp.barrier()
    return {"rank": rank, "size": wp.size(), "sum": total}
