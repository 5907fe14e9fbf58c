"""The GPU's tensor-core ceiling, measured the way our sustained end-to-end
rows run: cuBLAS (torch.matmul) n x n x n GEMM, fp16 with fp32 accumulation
(or fp32 inputs on TF32, --dtype tf32), first in a short burst (median of 10
after a warm-up, as REFERENCE.md's 755 TFLOP/s "fp16 GEMM" ceiling) and then
back to back for --seconds, where a long run sits at the board's power cap
(700 W on the H200) and the clock falls.
FlashAssign runs the same MMAs plus the argmin epilogue, so no assignment can
sustain more than this GEMM does.

    python3 bench/gemm_ceiling.py [--n 8192] [--seconds 8] [--dtype fp16|tf32]

Prints a table row per phase and one JSON line each.
"""
import argparse
import json
import statistics
import time

import torch


def timed(a, b, out):
    """One a @ b into out between two CUDA events (returned, not yet read)."""
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    torch.matmul(a, b, out=out)
    e1.record()
    return e0, e1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--dtype", choices=["fp16", "tf32"], default="fp16")
    args = ap.parse_args()
    # fp32 accumulation, as FlashAssign's
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_tf32 = args.dtype == "tf32"
    dt = torch.float16 if args.dtype == "fp16" else torch.float32
    n = args.n
    g = torch.Generator(device="cuda").manual_seed(1)
    a = torch.randn(n, n, device="cuda", dtype=dt, generator=g)
    b = torch.randn(n, n, device="cuda", dtype=dt, generator=g)
    out = torch.empty(n, n, device="cuda", dtype=dt)
    flop = 2.0 * n * n * n
    for _ in range(3):
        torch.matmul(a, b, out=out)
    torch.cuda.synchronize()

    burst = []
    for _ in range(10):
        e0, e1 = timed(a, b, out)
        e1.synchronize()
        burst.append(e0.elapsed_time(e1))
    # back to back: events recorded for every launch, read in batches so the
    # queue never drains
    sustained = []  # (seconds since start, ms)
    t0 = time.perf_counter()
    pending = []
    while time.perf_counter() - t0 < args.seconds:
        pending.append((time.perf_counter() - t0, timed(a, b, out)))
        if len(pending) >= 16:
            for ts, (e0, e1) in pending[:8]:
                e1.synchronize()
                sustained.append((ts, e0.elapsed_time(e1)))
            pending = pending[8:]
    for ts, (e0, e1) in pending:
        e1.synchronize()
        sustained.append((ts, e0.elapsed_time(e1)))

    last = [ms for ts, ms in sustained if ts >= args.seconds / 2]
    rows = [("burst (median of 10)", statistics.median(burst)),
            ("sustained, 2nd half of %.0f s (median)" % args.seconds, statistics.median(last)),
            ("sustained, 2nd half, slowest 10%", sorted(last)[int(0.9 * (len(last) - 1))])]
    print("| cuBLAS %s GEMM %dx%dx%d on %s | ms | TFLOP/s |"
          % (args.dtype, n, n, n, torch.cuda.get_device_name()))
    print("|---|---|---|")
    for name, ms in rows:
        print("| %s | %.3f | %.1f |" % (name, ms, flop / ms / 1e9))
        print(json.dumps({"bench": "gemm_ceiling", "dtype": args.dtype, "phase": name, "n": n,
                          "ms": round(ms, 4),
                          "tflops": round(flop / ms / 1e9, 1), "launches": len(sustained)}))


if __name__ == "__main__":
    main()
