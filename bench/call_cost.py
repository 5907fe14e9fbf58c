"""What a user's call costs: whole calls from Python, flashkmeans beside
Flash-KMeans (the flash-kmeans wheel) in one process, on the same CUDA
tensors, with the same initial centroids and a fixed number of iterations.

    python3 bench/call_cost.py [--rows a,b,...] [--profile] [--json FILE]

Batch rows (`batch_kmeans` on device tensors): each call is timed whole
(CUDA events around it, median of 3 after a warm-up call) at 1, 5, 10 and 30
iterations; per iteration = (t(30) - t(10)) / 20 and fixed = t(10) - 10 x per
iteration. Train rows (`Kmeans.train`, 20 iterations): host numpy with and
without FAISS's subsampling, with precision='tf32' (the arithmetic of
Flash-KMeans on fp32 input: Triton's default tf32 dot products) and with
dtype='float16', a CUDA tensor, and a memory-mapped .npy file; Flash-KMeans'
`FlashKMeans.fit` on the same host data. The first call in the process
(library load, CUDA context, module load) is reported on its own.

--profile prints, for one 10-iteration call of each batch row and one train
call on a CUDA tensor and on host numpy, the CUDA runtime calls it made
(torch.profiler), which is where fixed costs show, and the verbose output of
a train call (its preprocessing time).
--dsweep times flashkmeans' 10-iteration calls of 1M x 1024 fp16 for d = 1..16
and for 100, 200, 300, 1000 beside their neighbours that are multiples of 8
(the batch rows above hold Flash-KMeans at d = 100 and 104).
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
from timing import event_ms

import flashkmeans

try:
    from flash_kmeans import FlashKMeans, batch_kmeans_Euclid
except ImportError:  # the peer is optional: its columns are left empty
    FlashKMeans = batch_kmeans_Euclid = None

M = 1 << 20
BATCH_ROWS = {  # name: (B, n, k, d)
    "32x65536x1024x128": (32, 65536, 1024, 128),
    "1Mx1024x128": (1, M, 1024, 128),
    "1000003x1000x100": (1, 1000003, 1000, 100),
    "1000003x1000x104": (1, 1000003, 1000, 104),
    "1Mx1024x100": (1, M, 1024, 100),
}
ITERS = (1, 5, 10, 30)
DSWEEP = list(range(1, 17)) + [100, 104, 200, 208, 300, 304, 1000, 1008]


def call_ms(fn):
    """Median whole-call time (CUDA events around it) of 3 calls after a warm-up."""
    return event_ms(fn, reps=3)


def split(t):
    """(fixed, per iteration) from the 10- and 30-iteration calls."""
    per_iter = (t[30] - t[10]) / 20
    return t[10] - 10 * per_iter, per_iter


def batch_row(name, profile):
    B, n, k, d = BATCH_ROWS[name]
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, n, d, device="cuda", dtype=torch.float16, generator=g)
    idx = torch.randperm(n, device="cuda", generator=g)[:k].expand(B, k)
    c0 = torch.gather(x, 1, idx[..., None].expand(-1, -1, d)).float().contiguous()
    # both get the initial centroids on the device, as a model's forward pass has them
    graphs = flashkmeans._flashkmeans.graph_stats()
    ours = {it: call_ms(lambda: flashkmeans.batch_kmeans(x, k, niter=it, init_centroids=c0))
            for it in ITERS}
    row = {"row": name, "flashkmeans_ms": ours}
    # the row's calls, warm-ups included: the steady path updates kept graphs
    after = flashkmeans._flashkmeans.graph_stats()
    row["graphs"] = {key: after[key] - graphs[key] for key in ("instantiated", "updated", "refused")}
    row["graphs"]["last_refusal"] = after["last_refusal"]
    print(f"# {name}: CUDA graphs over its calls {row['graphs']}", flush=True)
    row["flashkmeans_fixed_ms"], row["flashkmeans_per_iter_ms"] = split(ours)
    if batch_kmeans_Euclid is not None:
        c0h = c0.half()
        theirs = {it: call_ms(lambda: batch_kmeans_Euclid(x, k, max_iters=it, tol=-1.0,
                                                           init_centroids=c0h.clone()))
                  for it in ITERS}
        row["flash_kmeans_ms"] = theirs
        row["flash_kmeans_fixed_ms"], row["flash_kmeans_per_iter_ms"] = split(theirs)
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            flashkmeans.batch_kmeans(x, k, niter=10, init_centroids=c0)
            torch.cuda.synchronize()
        print(f"## CUDA runtime calls of one 10-iteration call, {name}")
        print(p.key_averages().table(sort_by="cpu_time_total", row_limit=18))
    return row


def dsweep_rows():
    rows = []
    for d in DSWEEP:
        g = torch.Generator(device="cuda").manual_seed(d)
        x = torch.randn(1, M, d, device="cuda", dtype=torch.float16, generator=g)
        c0 = x[:, :1024].float().contiguous()
        ms = call_ms(lambda: flashkmeans.batch_kmeans(x, 1024, niter=10, init_centroids=c0))
        rows.append({"d": d, "flashkmeans_ms": ms})
        del x
    return rows


def train_rows(profile):
    n, d, k, niter = M, 128, 1024, 20
    x = np.random.RandomState(0).standard_normal((n, d)).astype(np.float32)
    xt = torch.from_numpy(x).cuda()
    rows = []
    everything = 1 << 20  # max_points_per_centroid: no subsampling

    def ours(data, **kw):
        return lambda: flashkmeans.Kmeans(d, k, niter=niter, backend="cuda", **kw).train(data)

    rows.append({"row": "train host numpy (subsampled)", "flashkmeans_ms": call_ms(ours(x))})
    rows.append({"row": "train host numpy (all points)",
                 "flashkmeans_ms": call_ms(ours(x, max_points_per_centroid=everything))})
    # Flash-KMeans computes fp32 input with Triton's default tf32 dot
    # products; flashkmeans' default is exact fp32
    rows.append({"row": "train host numpy (all points, precision='tf32')",
                 "flashkmeans_ms": call_ms(ours(x, max_points_per_centroid=everything,
                                                precision="tf32"))})
    rows.append({"row": "train host numpy (all points, dtype='float16')",
                 "flashkmeans_ms": call_ms(ours(x, max_points_per_centroid=everything,
                                                dtype="float16"))})
    rows.append({"row": "train CUDA tensor (all points)",
                 "flashkmeans_ms": call_ms(ours(xt, max_points_per_centroid=everything))})
    if profile:
        from torch.profiler import ProfilerActivity, profile as prof

        ours(xt, max_points_per_centroid=everything, verbose=True)()
        # (CUDA tensor only: the profiler has crashed the process during
        # host-numpy uploads, whose staging threads it traces)
        with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            ours(xt, max_points_per_centroid=everything)()
            torch.cuda.synchronize()
        print("## CUDA runtime calls of one train call (CUDA tensor, all points)")
        print(p.key_averages().table(sort_by="cpu_time_total", row_limit=18))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.npy")
        np.save(path, x)
        mm = np.load(path, mmap_mode="r")
        rows.append({"row": "train memory-mapped .npy (all points)",
                     "flashkmeans_ms": call_ms(ours(mm, max_points_per_centroid=1 << 20))})
    if FlashKMeans is not None:
        fit = lambda: FlashKMeans(d=d, k=k, niter=niter, tol=-1.0).fit(torch.from_numpy(x))
        theirs = call_ms(fit)
        for r in rows[:4]:
            r["flash_kmeans_ms"] = theirs
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default=",".join(BATCH_ROWS) + ",train")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--dsweep", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    names = args.rows.split(",")

    torch.cuda.init()
    x = torch.randn(1, 4096, 64, device="cuda")
    t0 = time.perf_counter()
    flashkmeans.batch_kmeans(x, 16, niter=2)
    first_ms = (time.perf_counter() - t0) * 1e3

    results = {"device": torch.cuda.get_device_name(), "first_call_ms": first_ms, "rows": []}
    for name in names:
        if name in BATCH_ROWS:
            results["rows"].append(batch_row(name, args.profile))
        elif name == "train":
            results["rows"].extend(train_rows(args.profile))
        # each row as it is done: a run cut short keeps what it measured
        print(json.dumps(results["rows"][-1] if name in BATCH_ROWS else
                         [r for r in results["rows"] if r["row"].startswith("train")]), flush=True)
    print(f"# whole calls on {results['device']}; first call in the process {first_ms:.1f} ms")
    print("| call | flashkmeans ms (1/5/10/30 it) | fixed | per it "
          "| Flash-KMeans ms (1/5/10/30 it) | fixed | per it | 10 it ours/theirs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["rows"]:
        o, t = r["flashkmeans_ms"], r.get("flash_kmeans_ms")
        if isinstance(o, dict):
            ratio = f"{o[10] / t[10]:.2f}x" if t else ""
            peer = (f"{'/'.join(f'{t[i]:.2f}' for i in ITERS)} | {r['flash_kmeans_fixed_ms']:.2f} | "
                    f"{r['flash_kmeans_per_iter_ms']:.3f}" if t else " | | ")
            print(f"| {r['row']} | {'/'.join(f'{o[i]:.2f}' for i in ITERS)} | "
                  f"{r['flashkmeans_fixed_ms']:.2f} | {r['flashkmeans_per_iter_ms']:.3f} | {peer} | {ratio} |")
        else:
            ratio = f"{o / t:.2f}x" if t else ""
            print(f"| {r['row']} (20 it) | {o:.1f} | | | {t:.1f} | | | {ratio} |" if t else
                  f"| {r['row']} (20 it) | {o:.1f} | | | | | | |")
    if args.dsweep:
        results["dsweep"] = dsweep_rows()
        print("| d (1M x 1024 fp16, 10 it) | flashkmeans ms |")
        print("|---|---|")
        for r in results["dsweep"]:
            print(f"| {r['d']} | {r['flashkmeans_ms']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
