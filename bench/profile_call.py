"""One whole `batch_kmeans` call under torch.profiler: the kernels it ran with
their device time, then the host-side calls with their host time, and a
Chrome trace. One profiled call per process (a second profiler session in the
same process has crashed it).

    python3 bench/profile_call.py D [--n N] [--k K] [--niter I] [--trace FILE]

Points: N x D fp16 on the GPU (default 1M x D), the first K of them as the
initial centroids; three unprofiled calls first, so the profiled one is a
repeated call (kept CUDA graph, warm caches).
"""
import argparse

import torch
from torch.profiler import ProfilerActivity, profile

import flashkmeans


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("d", type=int)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--trace")
    args = ap.parse_args()
    g = torch.Generator(device="cuda").manual_seed(args.d)
    x = torch.randn(1, args.n, args.d, device="cuda", dtype=torch.float16, generator=g)
    c0 = x[:, : args.k].float().contiguous()

    def call():
        flashkmeans.batch_kmeans(x, args.k, niter=args.niter, init_centroids=c0)

    for _ in range(3):
        call()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        call()
        torch.cuda.synchronize()
    shape = f"{args.n} x {args.k} x {args.d}, {args.niter} iterations"
    for key, what in (("cuda_time_total", "device"), ("cpu_time_total", "host")):
        print(f"## one batch_kmeans call, {shape}: by {what} time")
        print(p.key_averages().table(sort_by=key, row_limit=14, max_name_column_width=60))
    if args.trace:
        p.export_chrome_trace(args.trace)


if __name__ == "__main__":
    main()
