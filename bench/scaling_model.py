#!/usr/bin/env python3
"""Per-iteration cost model of data-parallel Lloyd on R ranks (issue 29), and
its checks against measured runs.

One iteration on R ranks, N points split evenly, K clusters, d dimensions:

  t(R) = compute(N / R) + copy(R) + exchange(R) + fixed(R)

- compute: the rank's assignment, 2 (N/R) K d flops at the measured
  FlashAssign rate, plus its update, (N/R)(d e + 4) bytes at the measured
  update bandwidth (e = bytes per point element).
- exchange: the packet is P = 4 (K d + 2 K) + 24 bytes (cluster sums,
  weight sums, counts, and the objective as 3 doubles: kernels::
  iteration_stats' layout), and the ranks' values are added in rank order,
  so the bits depend only on R (engine/rank_reduce.h). Two exchanges, chosen
  by rank_exchange_rule: an all-gather (one collective, each rank receives
  (R - 1) P) while that is at most 4 MiB more than the other's; otherwise a
  reduce-scatter in rank order (an all-to-all of slices, each rank adding
  its slice) and an all-gather of the sums: two collectives, each rank
  receives 2 (R - 1) / R P, what a ring all-reduce of the issue's
  4 (K d + 2 K + 1) bytes moves.
- copy: packing and unpacking the packet (read + write P each) and the
  rank-order sum (read R P, write P for the all-gather; read P, write P / R
  for the reduce-scatter), at HBM bandwidth.
- fixed: per-iteration launches and the one host sync; a run on several
  ranks replays no CUDA graph (an MPI exchange cannot be recorded), so it
  pays its launches.

  python3 bench/scaling_model.py                 # predicted table, H100 SXM
  python3 bench/scaling_model.py --one-gpu       # R = 1 beside bench_lloyd's recorded H200 rows
  python3 bench/scaling_model.py --measured LOG  # beside bench_ranks lines (bench/multi_gpu.sh)
  python3 bench/scaling_model.py --cpu-check     # MPI CPU runs, 1 to 3 ranks, here

The GPU rates are measured on one H200 (docs/benchmarks.md, session 18:
FlashAssign 500-600 TFLOP/s fp16, update 1.9 TB/s at 1M x 1024 x 128),
taken for an H100 SXM at the same tensor-core rate and the update scaled by
the HBM ratio 3.35 / 4.8; link figures are NCCL's usual bus bandwidths
(NVLink 4 through NVSwitch inside a node; one 400 Gb/s NIC per GPU across
nodes). The multi-GPU run (bench/multi_gpu.sh) replaces them with
measurements.
"""
import argparse
import json
import os
import re
import subprocess
import sys

H100 = dict(
    assign_flops=550e12,   # fp16 FlashAssign, measured on H200 (same SMs as H100 SXM)
    update_bw=1.9e12 * 3.35 / 4.8,
    hbm_bw=3.35e12 * 0.8,  # achievable copy bandwidth
    fixed_one=0.03e-3,     # graph replay + host sync (100000 x 100 x 128 row: 0.09 ms total)
    fixed_many=0.08e-3,    # the same kernels launched one by one, plus the exchange's sync
)
# (bus bandwidth B/s, latency s per collective) of an all-gather / all-reduce
LINKS = {
    "NVLink": (360e9, 20e-6),
    "2 nodes IB": (45e9, 40e-6),
}
ROWS = [  # (name, N, K, d, bytes per element)
    ("1Mx1024x128-fp16", 1 << 20, 1024, 128, 2),
    ("8Mx1024x128-fp16", 8 << 20, 1024, 128, 2),
    ("4Mx4096x128-fp16", 4 << 20, 4096, 128, 2),
    ("1Mx65536x128-fp16", 1 << 20, 65536, 128, 2),
    ("64Mx4096x128-fp16", 64 << 20, 4096, 128, 2),
]
SETUPS = [(1, "NVLink"), (2, "NVLink"), (4, "NVLink"), (8, "NVLink"), (16, "2 nodes IB")]


def packet_bytes(K, d):
    return 4 * (K * d + 2 * K) + 24


def model(N, K, d, e, R, link, hw=H100):
    n = N / R
    compute = 2 * n * K * d / hw["assign_flops"] + n * (d * e + 4) / hw["update_bw"]
    if R == 1:
        return dict(compute=compute, copy=0.0, exchange=0.0, kind="-", allgather=0.0,
                    fixed=hw["fixed_one"])
    P = packet_bytes(K, d)
    bw, lat = LINKS[link]
    if (R - 1) * (1 - 2 / R) * P <= 4 << 20:  # rank_exchange_rule: all-gather
        kind = "all-gather"
        copy = (2 * P + (R + 1) * P) / hw["hbm_bw"]
        exchange = lat + (R - 1) * P / bw
    else:
        kind = "reduce-scatter"
        copy = (4 * P + P + P / R) / hw["hbm_bw"]
        exchange = 2 * lat + 2 * (R - 1) / R * P / bw
    allgather_only = lat + (R - 1) * P / bw
    return dict(compute=compute, copy=copy, exchange=exchange, kind=kind,
                allgather=allgather_only, fixed=hw["fixed_many"])


def total(m, allgather_only=False):
    ex = m["allgather"] if allgather_only else m["exchange"]
    return m["compute"] + m["copy"] + ex + m["fixed"]


def table():
    print("Predicted ms per Lloyd iteration, H100 SXM (model; see the docstring)\n")
    print("| row | GPUs | compute | copy | exchange | total | speed-up | efficiency | "
          "total if always all-gather |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, N, K, d, e in ROWS:
        base = total(model(N, K, d, e, 1, "NVLink"))
        for R, link in SETUPS:
            m = model(N, K, d, e, R, link)
            t = total(m)
            gpus = f"{R} ({link})" if R > 1 else "1"
            print(f"| {name} | {gpus} | {1e3 * m['compute']:.3f} | {1e3 * m['copy']:.3f} | "
                  f"{1e3 * m['exchange']:.3f} ({m['kind']}) | {1e3 * t:.3f} | {base / t:.2f} | "
                  f"{base / t / R:.0%} | {1e3 * total(m, True):.3f} |")


# bench_lloyd, one H200, session 18 (docs/benchmarks.md): ms per iteration
H200_MEASURED = {
    "1Mx1024x128-fp16": 0.687,
    "8Mx1024x128-fp16": 5.276,
    "4Mx4096x128-fp16": 8.552,
    "1Mx65536x128-fp16": 30.628,
}


def one_gpu():
    """The model's one-rank term with H200 rates against what one H200 measured."""
    h200 = dict(H100, update_bw=1.9e12, hbm_bw=4.8e12 * 0.8)
    print("| row | measured ms (H200, bench_lloyd) | model ms (H200 rates) | model / measured |")
    print("|---|---|---|---|")
    for name, N, K, d, e in ROWS:
        if name in H200_MEASURED:
            t = 1e3 * total(model(N, K, d, e, 1, "NVLink", h200))
            ms = H200_MEASURED[name]
            print(f"| {name} | {ms:.3f} | {t:.3f} | {t / ms:.2f} |")


LINE = re.compile(r"bench_ranks ranks=(\d+) comm=(\S+) backend=(\S+) dtype=(\S+) n=(\d+) "
                  r"d=(\d+) k=(\d+) ms_per_iter=([\d.]+)")


def measured(path):
    print("| row | GPUs | measured ms | model ms | measured speed-up | model speed-up |")
    print("|---|---|---|---|---|---|")
    base = {}
    for line in open(path):
        m = LINE.search(line)
        if not m:
            continue
        R, _, _, dtype, N, d, K, ms = m.groups()
        R, N, d, K, ms = int(R), int(N), int(d), int(K), float(ms)
        e = 2 if dtype in ("fp16", "bf16") else 4
        key = (N, K, d, dtype)
        if R == 1:
            base[key] = ms
        link = "NVLink" if R <= 8 else "2 nodes IB"
        pred = 1e3 * total(model(N, K, d, e, R, link))
        pred1 = 1e3 * total(model(N, K, d, e, 1, link))
        b = base.get(key)
        print(f"| {N}x{K}x{d}-{dtype} | {R} | {ms:.3f} | {pred:.3f} | "
              f"{b / ms if b else float('nan'):.2f} | {pred1 / pred:.2f} |")


def cpu_check(build):
    """MPI CPU runs on this machine (1 to 3 ranks, one thread each): the model
    with the compute rate taken from the 1-rank run and the exchange through
    shared memory."""
    exe = os.path.join(build, "bench", "bench_ranks")
    mpirun = ["mpirun", "--oversubscribe", "--allow-run-as-root"]
    N, K, d = 60000, 64, 32
    cores = len(os.sched_getaffinity(0))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    rows = []
    for R in (1, 2, 3):
        out = subprocess.run(mpirun + ["-np", str(R), exe, "--backend", "cpu", "--comm", "mpi",
                                       "--dtype", "fp32", "--n", str(N), "--k", str(K),
                                       "--d", str(d), "--niter", "12"],
                             capture_output=True, text=True, env=env, check=True).stdout
        rows.append((R, float(LINE.search(out).group(8))))
    t1 = rows[0][1]
    P = packet_bytes(K, d)
    shm_bw, shm_lat, host_bw = 5e9, 5e-6, 5e9
    print(f"MPI on the CPU here ({cores} cores), {N} x {K} x {d} fp32, one thread per rank\n")
    print("| ranks | measured ms | model ms | measured speed-up | model speed-up |")
    print("|---|---|---|---|---|")
    for R, ms in rows:
        # R ranks share min(R, cores) cores
        comp = t1 / min(R, cores) if R > 1 else t1
        ex = 0 if R == 1 else 1e3 * (shm_lat * (R - 1) + (R - 1) * P / shm_bw + (R + 2) * P / host_bw)
        print(f"| {R} | {ms:.3f} | {comp + ex:.3f} | {t1 / ms:.2f} | {t1 / (comp + ex):.2f} |")
    for R, ms in rows:
        print(json.dumps(dict(ranks=R, n=N, k=K, d=d, cores=cores, measured_ms=ms)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measured", help="bench_ranks output to set beside the model")
    ap.add_argument("--cpu-check", action="store_true", help="run bench_ranks on the CPU, 1-3 ranks")
    ap.add_argument("--build", default="build", help="build folder (for --cpu-check)")
    ap.add_argument("--one-gpu", action="store_true", help="R = 1 against recorded H200 runs")
    a = ap.parse_args()
    if a.one_gpu:
        one_gpu()
    elif a.measured:
        measured(a.measured)
    elif a.cpu_check:
        cpu_check(a.build)
    else:
        table()


if __name__ == "__main__":
    sys.exit(main())
