"""Times Flash-KMeans (the `flash-kmeans` wheel, Triton) on the reference rows
(docs/benchmarks.md), the way bench_lloyd times flashkmeans: points already on the
GPU, fixed iterations (tol < 0 never stops early), per-iteration time =
(t(22) - t(2)) / 20, median of 5 after a warm-up (its API has no hook per
iteration; bench_lloyd times the ends of flashkmeans' iterations directly). Also times its assignment and
update kernels alone with CUDA events (median of 10).

    python3 bench/flash_kmeans_ref.py [--only NAME]
"""
import argparse
import json
import statistics
import time

import torch
from timing import event_ms
from flash_kmeans import batch_kmeans_Euclid
from flash_kmeans.assign_euclid_triton import euclid_assign_triton
from flash_kmeans.centroid_update_triton import triton_centroid_update_sorted_euclid

M = 1 << 20
CONFIGS = [
    ("32x65536x1024x128-fp16", 32, 65536, 1024, 128, torch.float16),
    ("1Mx1024x128-fp16", 1, M, 1024, 128, torch.float16),
    ("1Mx8192x128-fp16", 1, M, 8192, 128, torch.float16),
    ("8Mx1024x128-fp16", 1, 8 * M, 1024, 128, torch.float16),
    ("4Mx4096x128-fp16", 1, 4 * M, 4096, 128, torch.float16),
    ("100000x100x128-fp16", 1, 100000, 100, 128, torch.float16),
    ("1Mx1024x128-fp32", 1, M, 1024, 128, torch.float32),
    ("1Mx4096x768-fp16", 1, M, 4096, 768, torch.float16),
    ("1Mx65536x128-fp16", 1, M, 65536, 128, torch.float16),
]


def wall_ms(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    args = ap.parse_args()
    print(f"# flash-kmeans on {torch.cuda.get_device_name()}")
    print("| config | ms/iter | assign ms | assign TFLOP/s | update ms |")
    print("|---|---|---|---|---|")
    g = torch.Generator(device="cuda").manual_seed(7)
    for name, B, N, K, d, dt in CONFIGS:
        if args.only and args.only not in name:
            continue
        try:
            x = (torch.rand((B, N, d), device="cuda", generator=g) * 2 - 1).to(dt)
            idx = torch.randint(0, N, (B, K), device="cuda", generator=g)
            c0 = torch.gather(x, 1, idx[..., None].expand(-1, -1, d)).contiguous()

            def run(iters):
                return wall_ms(lambda: batch_kmeans_Euclid(x, K, max_iters=iters, tol=-1.0,
                                                           init_centroids=c0.clone()))

            run(2)
            per_iter = statistics.median((run(22) - run(2)) / 20 for _ in range(5))
            x_sq = (x.float() ** 2).sum(-1).to(dt)
            assign = event_ms(lambda: euclid_assign_triton(x, c0, x_sq))
            labels = euclid_assign_triton(x, c0, x_sq)
            update = event_ms(lambda: triton_centroid_update_sorted_euclid(x, labels, c0))
            tflops = 2 * B * N * K * d / assign / 1e9
            print(f"| {name} | {per_iter:.3f} | {assign:.3f} | {tflops:.0f} | {update:.3f} |")
            print(json.dumps({"bench": "flash-kmeans", "config": name, "ms_per_iter": per_iter,
                              "assign_ms": assign, "update_ms": update}))
        except Exception as e:  # record and continue
            print(f"| {name} | error: {type(e).__name__}: {str(e)[:120]} | | | |")
        finally:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
