"""Out-of-core streaming benchmark (issue 28): flashkmeans streamed, flashkmeans
resident and Flash-KMeans' own out-of-core path (flash_kmeans.kmeans_large.
kmeans_largeN on a pinned CPU tensor), on the same host data and the same
initial centroids, fixed iterations, in one run; the H2D bandwidth is measured
in the same run.

Each row is reported against the bound max(streamed bytes / H2D bandwidth,
resident compute time per iteration), where the streamed bytes are the N d
bytes less the share the plan keeps resident under the budget: `of bound` = bound / streamed time
(target >= 0.9), `vs Flash-KMeans` = streamed time / Flash-KMeans' time
(target <= 0.6). `default budget` is the same run without memory_budget (all
free GPU memory: as many points kept resident as fit, the rest streamed), as a
user runs it, beside Flash-KMeans, which streams every point. Rows whose points do not fit the GPU time the resident
compute on the largest prefix that does and scale it by N. A cost model for
1B x 128 fp16 at K = 32768 on this GPU follows, from the measured bandwidth
and the K = 32768 row's compute rate, beside the published 41.4 s/iteration.

    python3 bench/stream_bench.py [--rows 100M:1024,100M:8192,max:32768]
        [--iters 5] [--budget 4G] [--pageable] [--skip-ref] [--out FILE.md]

The host points are pinned (as Flash-KMeans pins them); --pageable keeps them
in pageable memory, so flashkmeans stages them through its pinned slots.
Needs torch, the flashkmeans package (CUDA build) and flash-kmeans.
"""
import argparse
import datetime
import json
import os
import re
import time

import numpy as np
import torch

import flashkmeans

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_count(s, decimal=True):
    """100M -> 100_000_000 (decimal for point counts), 4G -> 4 GiB (bytes)."""
    if s[-1].upper() in UNITS:
        mult = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[s[-1].upper()] if decimal \
            else UNITS[s[-1].upper()]
        return int(float(s[:-1]) * mult)
    return int(s)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def host_points(n, d, pinned, seed=7):
    """n x d fp16 uniform in [-1, 1), made on the GPU a block at a time."""
    x = torch.empty((n, d), dtype=torch.float16, pin_memory=pinned)
    g = torch.Generator(device="cuda").manual_seed(seed)
    block = 1 << 22
    for i0 in range(0, n, block):
        m = min(block, n - i0)
        x[i0:i0 + m].copy_((torch.rand((m, d), device="cuda", generator=g) * 2 - 1).half())
    torch.cuda.synchronize()
    return x


def h2d_bandwidth(x):
    """Bytes per second host -> device for x, 256 MiB copies (pinned if x is)."""
    flat = x.view(-1).view(torch.uint8)
    block = 256 << 20
    dev = torch.empty(block, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for off in range(0, flat.numel(), block):
        m = min(block, flat.numel() - off)
        dev[:m].copy_(flat[off:off + m], non_blocking=True)
    torch.cuda.synchronize()
    return flat.numel() / (time.perf_counter() - t0)


def flashkmeans_per_iter(x, k, c0, iters, budget):
    """Seconds per iteration (iterations 2..iters) and the run's memory plan."""
    km = flashkmeans.Kmeans(x.shape[1], k, niter=iters, backend="cuda", dtype="float16",
                            max_points_per_centroid=1 << 30, memory_budget=budget)
    km.train(x, init_centroids=c0)
    t = [s["time"] for s in km.iteration_stats]
    return (t[-1] - t[0]) / (len(t) - 1), km.memory_plan


def flash_kmeans_per_iter(x, k, c0, iters):
    from flash_kmeans.kmeans_large import kmeans_largeN

    c = torch.from_numpy(c0).cuda().half()

    def run(n_it):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        kmeans_largeN(x, k, max_iters=n_it, tol=-1.0, init_centroids=c.clone())
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    run(1)
    return (run(iters) - run(1)) / (iters - 1)


def resident_compute(x, k, c0, iters):
    """flashkmeans resident seconds per iteration on the largest prefix of x that
    fits the GPU, scaled to all of x."""
    free, _ = torch.cuda.mem_get_info()
    row = x.shape[1] * 2 + 16  # the point, its norm, label and distance
    fit = min(x.shape[0], int(0.8 * (free - (1 << 30)) / row))
    t, plan = flashkmeans_per_iter(x[:fit], k, c0, iters, budget=0)
    if plan != "resident":
        raise RuntimeError(f"the resident run streamed: {plan}")
    return t * x.shape[0] / fit, fit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="100M:1024,100M:8192,max:32768")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--budget", default="4G", help="flashkmeans' memory_budget when streamed")
    ap.add_argument("--pageable", action="store_true")
    ap.add_argument("--skip-ref", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    d, budget = args.d, parse_count(args.budget, decimal=False)
    device = torch.cuda.get_device_name()
    lines = [f"# Streaming benchmark on {device}, {datetime.date.today()}", "",
             f"fp16, d = {d}, {args.iters} iterations (per-iteration time over iterations 2..), "
             f"host points {'pageable' if args.pageable else 'pinned'}, flashkmeans streamed "
             f"with memory_budget {args.budget}.", "",
             "| N | K | H2D GB/s | copy s | resident compute s | bound s | streamed s | of bound "
             "| Flash-KMeans s | vs Flash-KMeans | streamed plan | default budget s "
             "| default vs Flash-KMeans | default plan |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    records, rate_32k, bw_seen = [], None, None
    for spec in args.rows.split(","):
        n_s, k_s = spec.split(":")
        k = int(k_s)
        # the largest N the host holds: the points plus room for the rest
        n = int(0.6 * mem_available() / (d * 2)) if n_s == "max" else parse_count(n_s)
        x = host_points(n, d, pinned=not args.pageable)
        rng = np.random.default_rng(1234)
        c0 = x[torch.from_numpy(rng.choice(n, k, replace=False))].float().numpy()
        bw = h2d_bandwidth(x)
        bw_seen = bw
        compute, fit = resident_compute(x, k, c0, args.iters)
        streamed, plan = flashkmeans_per_iter(x, k, c0, args.iters, budget)
        # only the rows past the resident share cross the bus each iteration
        kept = re.search(r"([0-9.]+)% resident", plan)
        copy = n * d * 2 / bw * (1 - (float(kept.group(1)) / 100 if kept else 0.0))
        # what a user gets without memory_budget: as much kept on the GPU as fits
        default, default_plan = flashkmeans_per_iter(x, k, c0, args.iters, 0)
        ref = None if args.skip_ref else flash_kmeans_per_iter(x, k, c0, args.iters)
        bound = max(copy, compute)
        if k == 32768:
            rate_32k = 2.0 * n * k * d / compute
        rec = {"bench": "stream", "device": device, "n": n, "k": k, "d": d,
               "h2d_gbps": bw / 1e9, "copy_s": copy, "resident_compute_s": compute,
               "resident_measured_on": fit, "bound_s": bound, "streamed_s": streamed,
               "of_bound": bound / streamed, "flash_kmeans_s": ref,
               "vs_flash_kmeans": None if ref is None else streamed / ref, "plan": plan,
               "default_budget_s": default, "default_plan": default_plan,
               "default_vs_flash_kmeans": None if ref is None else default / ref}
        records.append(rec)
        row = (f"| {n / 1e6:.0f}M | {k} | {bw / 1e9:.1f} | {copy:.3f} | {compute:.3f}"
               f"{'' if fit == n else f' (from {fit / 1e6:.0f}M)'} | {bound:.3f} | {streamed:.3f} "
               f"| {bound / streamed:.2f} | {'-' if ref is None else f'{ref:.3f}'} | "
               f"{'-' if ref is None else f'{streamed / ref:.2f}'} | {plan} | {default:.3f} | "
               f"{'-' if ref is None else f'{default / ref:.2f}'} | {default_plan} |")
        lines.append(row)
        print(row, flush=True)
        print(json.dumps(rec), flush=True)
        del x
        torch.cuda.empty_cache()
        flashkmeans.empty_cache()
    # cost model: 1B x 128 fp16 at K = 32768, one GPU of this kind
    n, k = 10**9, 32768
    model = ["", "Cost model, 1B x 128 fp16, K = 32768, this GPU:"]
    copy = n * 128 * 2 / bw_seen
    model.append(f"- copy: 256 GB at the measured {bw_seen / 1e9:.1f} GB/s = {copy:.1f} s")
    if rate_32k:
        comp = 2.0 * n * k * 128 / rate_32k
        model.append(f"- compute: 2 N K d = {2.0 * n * k * 128:.3g} FLOP at the K = 32768 row's "
                     f"{rate_32k / 1e12:.0f} TFLOP/s (assignment and update together) = {comp:.1f} s")
        model.append(f"- bound max(copy, compute) = {max(copy, comp):.1f} s per iteration, against "
                     f"the published 41.4 s (H200)")
    print("\n".join(model))
    lines += model
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n\n```\n" +
                    "\n".join(json.dumps(r) for r in records) + "\n```\n")


if __name__ == "__main__":
    main()
