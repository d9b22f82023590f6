#!/usr/bin/env python3
"""scaling_model.py — data-parallel efficiency of N nodes (issue 15, item 7).

Each node runs a step of its own batch in T_step seconds (weak scaling), and
tlcl sums the gradient buffer: read to the host (PCIe), ring all-reduce,
write back, then the update. A ring all-reduce of G bytes over N nodes sends
2 (N-1)/N x G bytes per node and takes 2 (N-1) latency hops:

    T_ar(N)  = 2 (N-1)/N x G / B + 2 (N-1) x alpha
    T_copy   = 2 x G / B_pcie            (device -> host -> device)
    T_comm   = T_ar(N) + T_copy

tlcl sums the gradients in buckets of at least --bucket-mib while the
backward pass still runs (the head's first). A fraction --overlap of the
step (the backward pass after the first bucket is ready) can hide the
sums; what cannot be hidden is the rest, and at least the last bucket's
own share (its sum starts only when the backward pass ends):

    T_exposed = max(T_comm x bucket/G, T_comm - overlap x T_step)
    E(N)      = T_step / (T_step + T_exposed)          speed-up = N x E(N)

--overlap 0 is one bucket after the backward pass (nothing hidden).

With N = 1 there is no all-reduce and no copy (E = 1). Prints E(N) for the
given step times and gradient sizes over 10 and 100 Gb/s links, and the
first N where E falls under the threshold (none: E stays above it for every
N, since T_ar tends to 2 G / B).

usage: bench/scaling_model.py --grad-mib B0=15.5 --grad-mib V2-B0=22.6 \\
           --step-ms B0=2400 --step-ms V2-B0=3900 [--step-ms 50 ...]
"""
import argparse


def efficiency(n, step_s, grad_bytes, link_bps, alpha_s, pcie_bps, overlap=0.0, bucket_bytes=None):
    if n == 1:
        return 1.0
    t_ar = 2.0 * (n - 1) / n * grad_bytes / (link_bps / 8.0) + 2 * (n - 1) * alpha_s
    t_comm = t_ar + 2.0 * grad_bytes / pcie_bps
    tail = t_comm * min(1.0, (bucket_bytes or grad_bytes) / grad_bytes)
    exposed = max(tail, t_comm - overlap * step_s) if overlap > 0 else t_comm
    return step_s / (step_s + exposed)


def first_below(threshold, *args, n_max=4096):
    for n in range(2, n_max + 1):
        if efficiency(n, *args) < threshold:
            return n
    return None


def pairs(values):
    out = []
    for v in values:
        name, _, x = v.rpartition("=")
        out.append((name or x + " ms", float(x)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grad-mib", action="append", required=True, help="NAME=MiB of the gradient buffer")
    ap.add_argument("--step-ms", action="append", required=True,
                    help="[NAME=]ms of one step on one node (NAME matches a --grad-mib; none: every model)")
    ap.add_argument("--alpha-us", type=float, default=10.0, help="latency per ring hop (default 10 us)")
    ap.add_argument("--pcie-gbs", type=float, default=25.0, help="host<->device GB/s (default 25)")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--nodes", default="2,4,8,16,32,64,128")
    ap.add_argument("--overlap", type=float, default=0.0,
                    help="fraction of the step that can hide the bucketed sums (0: one bucket after backward)")
    ap.add_argument("--bucket-mib", type=float, default=4.0, help="least bucket size (train.config.bucket_mb)")
    a = ap.parse_args()
    grads = pairs(a.grad_mib)
    steps = pairs(a.step_ms)
    nodes = [int(x) for x in a.nodes.split(",")]
    print("| model | step ms | link | T_ar(inf) ms | " + " | ".join("E(%d)" % n for n in nodes) +
          " | first N with E < %.0f%% |" % (100 * a.threshold))
    print("| --- " * (5 + len(nodes)) + "|")
    for gname, mib in grads:
        g = mib * 1048576.0
        for sname, ms in steps:
            if not sname.endswith(" ms") and sname != gname:
                continue
            for gbps in (10, 100):
                args = (ms / 1000.0, g, gbps * 1e9, a.alpha_us * 1e-6, a.pcie_gbs * 1e9, a.overlap,
                        a.bucket_mib * 1048576.0)
                row = [efficiency(n, *args) for n in nodes]
                n80 = first_below(a.threshold, *args)
                print("| %s (%.1f MiB) | %.0f | %d Gb/s | %.1f | %s | %s |" % (
                    gname, mib, ms, gbps, 2 * g / (gbps * 1e9 / 8) * 1000,
                    " | ".join("%.2f" % e for e in row), n80 if n80 else "none up to 4096"))


if __name__ == "__main__":
    main()
