"""Exact bound-based pruning of the assignment (issue 30), on the CPU:
flashkmeans with prune off and on, beside faiss-cpu, scikit-learn (Lloyd and
Elkan) and faiss's SuperKMeans, on data where pruning should pay and on data
where it cannot.

    python3 bench/prune_bench.py [--rows DATASET:N:K[:D] ...] [--niter 25]
        [--impls NAME ...] [--threads T] [--rounds R] [--seed S] [--json FILE]
        [--backend cpu|cuda] [--dtype float32|float16|bfloat16]

--backend cuda runs flashkmeans (prune off and on: the moved-centroid filter)
on the GPU in --dtype, from the same host array; the CPU peers stay on the
CPU (leave them out with --impls at GPU sizes), and 'flash-kmeans' (the
flash_kmeans wheel's batch_kmeans_Euclid, which does not prune) runs on the
GPU in --dtype from the same host array, upload included as in flashkmeans'
call, after one untimed call of the row's shape (Triton compiles per shape).
Flash-KMeans keeps an empty cluster's centroid where FAISS splits it, so its
objective may differ where clusters empty.

Datasets (float32, generated from --seed, the same for every implementation):
- mixture: K Gaussian components, centres N(0, 1) per coordinate, within
  sigma 0.25 (components sqrt(2 d) apart, points 0.25 sqrt(d) from their
  centre), equal weights: well separated, pruning's best case;
- patches: 8x8 RGB patches (d = 192; D = 3 p^2 picks p) of six photographs
  bundled with scikit-image, in [0, 1], at random positions (every position
  of every image equally likely); the row is skipped when scikit-image is
  not installed;
- embeddings: shaped like sentence embeddings (default d = 384): 300 topic
  centres on a random 32-dimensional subspace (variance 1/j along its j-th
  axis), Zipf topic sizes, noise over all d dimensions with variance 1/j on a
  random basis (signal and noise of equal total variance), each row
  normalised to unit length, as sentence-transformers models emit them;
- iid: N(0, 1) in every coordinate, no structure: pruning's worst case.

Every implementation starts from the same K distinct rows of x (--seed),
runs all --niter iterations where it can (early stops off) on every point
(no subsampling), and is timed whole: ms/iter = wall time of the training
call / iterations run, the median of --rounds rounds (implementations
alternate within a round, after one small warm-up call each). scikit-learn
stops once the labels stop changing even at tol=0: its ms/iter divides by
n_iter_, and the table shows "(m it)" where fewer than --niter ran.
SuperKMeans takes no initial centroids (its Python wrapper refuses
init_centroids and the C++ class ignores preset centroids): it seeds itself
with --seed, and its assignment is approximate (ADSampling), so its
objective is not comparable.

flashkmeans' prune=True (issue 30) is probed once: where the installed
flashkmeans refuses it, its columns read n/a. Where it runs, its
iteration_stats[i]['skipped'] (fraction of the point x centroid work skipped
in iteration i) is printed and kept in the JSON, and its final centroids are
checked against prune off with the same kernel: labels (the nearest centroid
of every point, by one evaluator, flashkmeans' exact CPU assignment) and the
largest centroid difference. Objectives are evaluated the same way for every
implementation. flashkmeans runs three ways: the default CPU kernel (faiss's
sgemm blocks, bitwise faiss's results), 'flashkmeans-fused' (cpu_kernel=
'fused', no pruning) and 'flashkmeans-prune' (prune=True, which takes the
fused kernel where the CPU runs it).

The table, printed last: ms/iter per implementation, prune on / off
(speed-up of prune on over prune off with the same kernel: the fused one
where it ran), the speed-up of prune on and of prune off over the fastest
peer (faiss-cpu, scikit-learn, SuperKMeans; Flash-KMeans on a GPU), and the mean skipped fraction
over all iterations. --json keeps everything, with the
per-iteration skipped fractions and times, and the environment.
"""
import argparse
import json
import os
import statistics
import sys
import time
import zlib

import numpy as np
from compare_report import _version, environment

import flashkmeans

try:
    import faiss
except ImportError:  # the FAISS columns read n/a
    faiss = None
try:
    from sklearn.cluster import KMeans as SkKMeans
except ImportError:  # the scikit-learn columns read n/a
    SkKMeans = None
try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:
    threadpool_info = threadpool_limits = None

DEFAULT_ROWS = ["mixture:100000:512:64", "iid:100000:512:64", "patches:100000:512",
                "embeddings:50000:512:384"]
DEFAULT_D = {"mixture": 128, "iid": 128, "patches": 192, "embeddings": 384}
IMPLS = ("flashkmeans", "flashkmeans-fused", "flashkmeans-prune", "faiss-cpu", "sklearn-lloyd",
         "sklearn-elkan", "superkmeans", "flash-kmeans")
PEERS = IMPLS[3:]
SHOWN_VERSIONS = ("flashkmeans", "faiss", "sklearn", "numpy", "skimage", "threadpoolctl")
MIXTURE_SIGMA = 0.25
# retina is left out: its black surround would make 16% of its patches identical
SKIMAGE_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                  "hubble_deep_field")


# --- datasets --------------------------------------------------------------------------


def mixture(n, k, d, rng):
    centres = rng.standard_normal((k, d), dtype=np.float32)
    x = centres[rng.integers(k, size=n)]
    x += MIXTURE_SIGMA * rng.standard_normal((n, d), dtype=np.float32)
    return x


def iid(n, k, d, rng):
    return rng.standard_normal((n, d), dtype=np.float32)


def patch_side(d):
    """p for a p x p RGB patch of d = 3 p^2 values, else None."""
    p = int(round((d / 3) ** 0.5))
    return p if 3 * p * p == d else None


def patches(n, k, d, rng):
    p = patch_side(d)
    from skimage import data  # ImportError: the row is skipped

    images = []
    for name in SKIMAGE_IMAGES:
        try:
            im = getattr(data, name)()
        except Exception:  # an image this scikit-image does not bundle
            continue
        if im.ndim == 3 and im.shape[2] >= 3:
            images.append(im[:, :, :3])
    if not images:
        raise ImportError("no RGB image among " + ", ".join(SKIMAGE_IMAGES))
    # every patch position of every image equally likely
    counts = np.array([(h - p + 1) * (w - p + 1) for h, w, _ in (im.shape for im in images)])
    per_image = rng.multinomial(n, counts / counts.sum())
    off = np.arange(p)
    out = []
    for im, m in zip(images, per_image):
        h, w = im.shape[0] - p + 1, im.shape[1] - p + 1
        pos = rng.choice(h * w, size=m, replace=m > h * w)
        ys, xs = pos // w, pos % w
        block = im[ys[:, None, None] + off[None, :, None], xs[:, None, None] + off[None, None, :]]
        out.append(block.reshape(m, d))
    x = np.concatenate(out)[rng.permutation(n)]
    return x.astype(np.float32) / np.float32(255)


def embeddings(n, k, d, rng, topics=300, rank=32):
    basis = np.linalg.qr(rng.standard_normal((d, rank)))[0]
    axis_var = 1.0 / np.arange(1, rank + 1)
    centres = rng.standard_normal((topics, rank)) * np.sqrt(axis_var / axis_var.sum())
    sizes = 1.0 / np.arange(1, topics + 1)
    topic = rng.choice(topics, size=n, p=sizes / sizes.sum())
    x = (centres @ basis.T).astype(np.float32)[topic]
    noise_var = 1.0 / np.arange(1, d + 1)
    rot = np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32)
    noise = rng.standard_normal((n, d), dtype=np.float32)
    noise *= np.sqrt(noise_var / noise_var.sum()).astype(np.float32)
    x += noise @ rot.T
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


DATASETS = {"mixture": mixture, "iid": iid, "patches": patches, "embeddings": embeddings}


def parse_row(spec):
    parts = spec.split(":")
    if parts[0] not in DATASETS or len(parts) not in (3, 4):
        raise SystemExit(f"--rows: expected DATASET:N:K[:D] with DATASET one of "
                         f"{', '.join(DATASETS)}, got {spec!r}")
    n, k = int(parts[1]), int(parts[2])
    d = int(parts[3]) if len(parts) == 4 else DEFAULT_D[parts[0]]
    if parts[0] == "patches" and patch_side(d) is None:
        raise SystemExit(f"--rows {spec}: patches need d = 3 p^2 for p x p RGB (192 for 8x8)")
    if k > n:
        raise SystemExit(f"--rows {spec}: k > n")
    return parts[0], n, k, d


def make_data(name, n, k, d, seed):
    """(x (n, d) float32, c0 (k, d): k rows of x, no two equal), both from seed.
    Equal initial centroids would leave one empty at once, and implementations
    handle an empty cluster differently (FAISS splits one, scikit-learn moves it)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = np.ascontiguousarray(DATASETS[name](n, k, d, rng), dtype=np.float32)
    order = rng.permutation(n)
    _, first = np.unique(x[order[:min(n, 2 * k)]], axis=0, return_index=True)
    if len(first) < k:
        raise SystemExit(f"{name}: fewer than {k} distinct rows among {min(n, 2 * k)} drawn")
    c0 = x[order[np.sort(first)[:k]]]
    return x, c0


# --- implementations: each returns (wall s, iterations run, centroids, extras) ------------


FK_PLACE = {"backend": "cpu"}  # main() adds --backend and --dtype


def fk_kwargs(n, k, seed, prune, kernel=None):
    kw = dict(niter=0, max_points_per_centroid=n // k + 1, seed=seed, early_stop_threshold=-1.0,
              **FK_PLACE)
    if prune:
        kw["prune"] = True  # cpu_kernel 'auto': the fused kernel where the CPU runs it
    if kernel:
        kw["cpu_kernel"] = kernel
    return kw


def prune_refusal():
    """None when the installed flashkmeans trains with prune=True, else what it said."""
    x = np.random.default_rng(0).standard_normal((512, 8), dtype=np.float32)
    try:
        km = flashkmeans.Kmeans(8, 4, **dict(fk_kwargs(512, 4, 0, True), niter=2))
        km.train(x, init_centroids=x[:4])
    except (ValueError, TypeError, AttributeError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def run_flashkmeans(x, c0, niter, seed, prune=False, kernel=None):
    n, d = x.shape
    k = c0.shape[0]
    km = flashkmeans.Kmeans(d, k, **dict(fk_kwargs(n, k, seed, prune, kernel), niter=niter))
    t0 = time.perf_counter()
    km.train(x, init_centroids=c0)
    wall = time.perf_counter() - t0
    stats = km.iteration_stats
    clock = [s["time"] for s in stats]  # seconds since train() began, cumulative
    extras = {"iter_ms": [1e3 * (b - a) for a, b in zip([0.0] + clock, clock)],
              "obj": [float(s["obj"]) for s in stats], "nsplit": sum(s["nsplit"] for s in stats)}
    if prune:
        skipped = [s.get("skipped") for s in stats]
        extras["skipped"] = None if None in skipped else [float(s) for s in skipped]
    return wall, len(stats), km.centroids, extras


def run_faiss(x, c0, niter, seed):
    n, d = x.shape
    k = c0.shape[0]
    kw = dict(niter=niter, max_points_per_centroid=n // k + 1, seed=seed, verbose=False)
    if hasattr(faiss.ClusteringParameters(), "early_stop_threshold"):
        kw["early_stop_threshold"] = -1.0  # faiss >= 1.14.2 stops at a fixed point otherwise
    km = faiss.Kmeans(d, k, **kw)
    t0 = time.perf_counter()
    km.train(x, init_centroids=c0)
    wall = time.perf_counter() - t0
    nsplit = sum(s["nsplit"] for s in km.iteration_stats)
    return wall, len(km.iteration_stats), km.centroids, {"nsplit": nsplit}


def run_sklearn(x, c0, niter, seed, algorithm):
    km = SkKMeans(n_clusters=c0.shape[0], init=c0, n_init=1, max_iter=niter, tol=0.0,
                  algorithm=algorithm, random_state=seed)
    t0 = time.perf_counter()
    km.fit(x)
    wall = time.perf_counter() - t0
    return wall, int(km.n_iter_), km.cluster_centers_.astype(np.float32), {}


def run_superkmeans(x, c0, niter, seed):
    n, d = x.shape
    k = c0.shape[0]
    cp = faiss.SuperKMeansParameters()
    cp.niter, cp.max_points_per_centroid, cp.seed = niter, n // k + 1, seed
    cp.early_stop_threshold = -1.0
    sc = faiss.SuperKMeans(d, k, cp)
    t0 = time.perf_counter()
    sc.train(x)
    wall = time.perf_counter() - t0
    centroids = faiss.vector_to_array(sc.centroids).reshape(k, d)
    # pairs pruned at the d' boundary per iteration: not the same measure as 'skipped'
    pruned = [float(r) for r in faiss.vector_to_array(sc.gemm_pruning_rates)]
    return wall, sc.iteration_stats.size(), centroids, {"gemm_pruning_rates": pruned}


_FLASH_KMEANS_WARM = set()


def run_flash_kmeans(x, c0, niter, seed):
    import torch
    from flash_kmeans import batch_kmeans_Euclid
    dtype = getattr(torch, FK_PLACE.get("dtype", "float32"))
    k = c0.shape[0]

    def call(iters):
        xd = torch.from_numpy(x).to("cuda").to(dtype)[None]
        cd = torch.from_numpy(c0).to("cuda").to(dtype)[None]
        out = batch_kmeans_Euclid(xd, k, max_iters=iters, tol=-1.0, init_centroids=cd)
        torch.cuda.synchronize()
        return out[1][0]

    if (x.shape, k) not in _FLASH_KMEANS_WARM:
        call(1)
        _FLASH_KMEANS_WARM.add((x.shape, k))
    t0 = time.perf_counter()
    centroids = call(niter)
    wall = time.perf_counter() - t0
    return wall, niter, centroids.float().cpu().numpy(), {}


def unavailable(impl, d, prune_error):
    """None when impl can run at dimension d, else why not."""
    if impl == "flash-kmeans":
        if FK_PLACE["backend"] != "cuda":
            return "Flash-KMeans runs on a GPU: use --backend cuda"
        try:
            import flash_kmeans  # noqa: F401
        except ImportError as e:
            return f"flash_kmeans is not installed ({e})"
    if impl == "flashkmeans-prune" and prune_error:
        return f"flashkmeans refuses prune=True ({prune_error})"
    if impl == "flashkmeans-fused" and FK_PLACE["backend"] != "cpu":
        return "cpu_kernel='fused' is the CPU backend's kernel"
    if impl == "flashkmeans-fused" and not fused_available():
        return "this flashkmeans or CPU has no fused kernel (cpu_kernel='fused')"
    if impl in ("faiss-cpu", "superkmeans") and faiss is None:
        return "faiss is not installed"
    if impl.startswith("sklearn") and SkKMeans is None:
        return "scikit-learn is not installed"
    if impl == "superkmeans":
        if not hasattr(faiss, "SuperKMeans"):
            return f"faiss {faiss.__version__} has no SuperKMeans"
        need = 2 * faiss.SuperKMeansParameters().d_prime_min
        if d < need:
            return f"SuperKMeans needs d >= {need}"
    return None


def fused_available():
    ext = getattr(flashkmeans, "_flashkmeans", None)
    return bool(getattr(ext, "cpu_fused_assign_available", lambda: False)())


def run_impl(impl, x, c0, niter, seed):
    if impl == "flashkmeans-fused":
        return run_flashkmeans(x, c0, niter, seed, kernel="fused")
    if impl in ("flashkmeans", "flashkmeans-prune"):
        return run_flashkmeans(x, c0, niter, seed, prune=impl == "flashkmeans-prune")
    if impl == "faiss-cpu":
        return run_faiss(x, c0, niter, seed)
    if impl.startswith("sklearn"):
        return run_sklearn(x, c0, niter, seed, impl.split("-")[1])
    if impl == "flash-kmeans":
        return run_flash_kmeans(x, c0, niter, seed)
    return run_superkmeans(x, c0, niter, seed)


def evaluate(x, centroids):
    """(labels, objective): every point's nearest centroid by flashkmeans' exact
    assignment (on --backend), and the sum of squared distances (float64)."""
    index = flashkmeans.FlatIndex(x.shape[1], "l2", {"backend": FK_PLACE["backend"]})
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    D, I = index.search(x, 1)
    return I[:, 0], float(D[:, 0].sum(dtype=np.float64))


# --- one row ---------------------------------------------------------------------------------


def fixed_point(obj):
    """The first iteration whose objective equals the one before (float32), or None."""
    for i in range(1, len(obj)):
        if np.float32(obj[i]) == np.float32(obj[i - 1]):
            return i
    return None


def bench_row(spec, impls, args, prune_error):
    name, n, k, d = spec
    row = {"dataset": name, "n": n, "k": k, "d": d, "results": {}}
    try:
        t0 = time.perf_counter()
        x, c0 = make_data(name, n, k, d, args.seed)
        row["data_s"] = time.perf_counter() - t0
    except ImportError as e:
        row["not_run"] = f"{name} needs scikit-image ({e})"
        print(f"# {name}:{n}:{k}:{d} not run: {row['not_run']}", flush=True)
        return row
    res = row["results"]
    for impl in impls:
        why = unavailable(impl, d, prune_error)
        res[impl] = {"available": why is None, "reason": why, "walls_s": []}
    runnable = [i for i in impls if res[i]["available"]]
    for _ in range(args.rounds):
        for impl in runnable:
            wall, iters, centroids, extras = run_impl(impl, x, c0, args.niter, args.seed)
            r = res[impl]
            r["walls_s"].append(wall)
            r.update(iters=iters, extras=extras, _centroids=centroids)
    labels = {}
    for impl in runnable:
        r = res[impl]
        r["ms_per_iter"] = 1e3 * statistics.median(r["walls_s"]) / r["iters"]
        labels[impl], r["objective"] = evaluate(x, r["_centroids"])
    if "flashkmeans" in runnable:
        row["fixed_point_iter"] = fixed_point(res["flashkmeans"]["extras"]["obj"])
    # prune on against prune off with the same kernel (the fused one where it ran)
    off_impl = "flashkmeans-fused" if "flashkmeans-fused" in runnable else "flashkmeans"
    if off_impl in runnable and "flashkmeans-prune" in runnable:
        on, off = res["flashkmeans-prune"], res[off_impl]
        on["compared_with"] = off_impl
        on["labels_differ"] = int((labels["flashkmeans-prune"] != labels[off_impl]).sum())
        on["max_abs_centroid_diff"] = float(np.abs(on["_centroids"] - off["_centroids"]).max())
    for r in res.values():
        r.pop("_centroids", None)
    summarise(row)
    print_details(row, args.niter)
    return row


def summarise(row):
    res = row["results"]
    ms = {i: r["ms_per_iter"] for i, r in res.items() if "ms_per_iter" in r}
    peers = {i: t for i, t in ms.items() if i in PEERS}
    row["fastest_peer"] = min(peers, key=peers.get) if peers else None
    on, off = ms.get("flashkmeans-prune"), ms.get("flashkmeans-fused", ms.get("flashkmeans"))
    best = peers.get(row["fastest_peer"])
    row["speedup_prune_over_off"] = off / on if on and off else None
    row["speedup_prune_over_peer"] = best / on if on and best else None
    row["speedup_off_over_peer"] = best / off if off and best else None
    skipped = res.get("flashkmeans-prune", {}).get("extras", {}).get("skipped")
    row["mean_skipped"] = float(np.mean(skipped)) if skipped else None


def print_details(row, niter):
    head = f"# {row['dataset']}:{row['n']}:{row['k']}:{row['d']}"
    res = row["results"]
    fp = row.get("fixed_point_iter")
    if "fixed_point_iter" in row:
        print(f"{head}: flashkmeans (prune off) reaches "
              + (f"a fixed point at iteration {fp}" if fp is not None else "no fixed point")
              + f" within {niter} iterations")
    for impl, r in res.items():
        if not r["available"]:
            print(f"{head}: {impl} n/a: {r['reason']}")
            continue
        walls = ", ".join(f"{w:.2f}" for w in r["walls_s"])
        splits = r["extras"].get("nsplit")
        print(f"{head}: {impl}: {r['ms_per_iter']:.1f} ms/iter over {r['iters']} iterations "
              f"(wall s per round: {walls}), objective {r['objective']:.6g}"
              + (f", empty clusters split: {splits}" if splits else ""))
    on = res.get("flashkmeans-prune")
    if on and on["available"]:
        skipped = on["extras"].get("skipped")
        print(f"{head}: skipped per iteration: "
              + (" ".join(f"{s:.2f}" for s in skipped) if skipped else "not reported"))
        if "labels_differ" in on:
            m = on["labels_differ"]
            print(f"{head}: prune on vs {on['compared_with']}: labels equal: {'yes' if m == 0 else 'no'} ({m} differ), "
                  f"max abs centroid difference {on['max_abs_centroid_diff']:.3g}")
    print(flush=True)


# --- output ---------------------------------------------------------------------------------


def fmt_ms(r, niter):
    if r is None or "ms_per_iter" not in r:
        return "n/a"
    ms = r["ms_per_iter"]
    return f"{ms:.1f}" + (f" ({r['iters']} it)" if r["iters"] < niter else "")


def fmt_x(v, suffix=""):
    return "n/a" if v is None else f"{v:.2f}x{suffix}"


def table(rows, impls, niter):
    cols = ["dataset", "n", "k", "d"] + [f"{i} ms/it" for i in impls] + [
        "prune on / off", "prune vs fastest peer", "off vs fastest peer", "mean skipped"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        cells = [row["dataset"], str(row["n"]), str(row["k"]), str(row["d"])]
        if "not_run" in row:
            cells += ["not run"] * len(impls) + ["n/a"] * 4
        else:
            peer = f" ({row['fastest_peer']})" if row["fastest_peer"] else ""
            cells += [fmt_ms(row["results"].get(i), niter) for i in impls]
            cells += [fmt_x(row["speedup_prune_over_off"]),
                      fmt_x(row["speedup_prune_over_peer"], peer),
                      fmt_x(row["speedup_off_over_peer"], peer),
                      "n/a" if row["mean_skipped"] is None else f"{row['mean_skipped']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def set_threads(threads):
    """Every loaded OpenMP and BLAS pool to `threads` (flashkmeans' too), and faiss's."""
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    if threadpool_limits is None:
        print("# threadpoolctl is not installed: only faiss's OpenMP is limited; set "
              "OMP_NUM_THREADS and OPENBLAS_NUM_THREADS for the others", flush=True)
        return None
    limits = threadpool_limits(limits=threads)
    return limits, [{"api": p["internal_api"], "threads": p["num_threads"],
                     "library": os.path.basename(p["filepath"]), "version": p.get("version")}
                    for p in threadpool_info()]


def warm_up(impls, prune_error):
    """One small call of each implementation: library loads and thread pools start here."""
    x, c0 = make_data("mixture", 4096, 16, 64, 0)
    for impl in impls:
        if unavailable(impl, 64, prune_error) is None:
            run_impl(impl, x, c0, 2, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=DEFAULT_ROWS, metavar="DATASET:N:K[:D]",
                    help=f"datasets {', '.join(DATASETS)}; default {' '.join(DEFAULT_ROWS)}")
    ap.add_argument("--niter", type=int, default=25)
    ap.add_argument("--impls", nargs="+", default=list(IMPLS), metavar="NAME",
                    help=f"a subset of {', '.join(IMPLS)} (commas work too)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for every library (default: the cores this process may use)")
    ap.add_argument("--rounds", type=int, default=1, help="runs per implementation (median kept)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--json", help="write everything here")
    ap.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                    help="where flashkmeans runs (the peers run on the CPU)")
    ap.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                    help="flashkmeans' compute dtype (CUDA: float16 and bfloat16 too)")
    args = ap.parse_args()
    FK_PLACE.update(backend=args.backend)
    if args.dtype != "float32":
        FK_PLACE.update(dtype=args.dtype)
    impls = [i for spec in args.impls for i in spec.split(",") if i]
    bad = [i for i in impls if i not in IMPLS]
    if bad:
        raise SystemExit(f"--impls: unknown {', '.join(bad)}; choose from {', '.join(IMPLS)}")
    impls = [i for i in IMPLS if i in impls]
    specs = [parse_row(s) for r in args.rows for s in r.split(",") if s]

    prune_error = prune_refusal()
    if prune_error:
        print(f"# prune=True: n/a in this flashkmeans ({prune_error})", flush=True)
    limits = set_threads(args.threads)
    env = environment("cpu", args, None, args.threads)
    env["versions"].update({n: _version(n) for n in SHOWN_VERSIONS if n not in env["versions"]})
    env["thread_pools"] = limits[1] if limits else None
    out = {"bench": "prune", "environment": env, "niter": args.niter, "rounds": args.rounds,
           "seed": args.seed, "impls": impls, "prune_available": prune_error is None,
           "prune_error": prune_error, "rows": []}
    print(f"# {env['host']['cpu']}, {args.threads} threads, {args.niter} iterations, "
          f"commit {env['git_commit']}; versions: "
          + ", ".join(f"{k} {env['versions'][k]}" for k in SHOWN_VERSIONS), flush=True)
    warm_up(impls, prune_error)
    for spec in specs:
        out["rows"].append(bench_row(spec, impls, args, prune_error))
        if args.json:  # after every row, so a cut run keeps what it measured
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    print(table(out["rows"], impls, args.niter))


if __name__ == "__main__":
    sys.exit(main())
