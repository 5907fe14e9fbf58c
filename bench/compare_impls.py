"""The implementations bench/compare.py times, behind one interface (the
measuring tools they share are in bench/compare_measure.py).

Every implementation: available() -> None or the reason it is not;
estimate_s(cfg, niter) -> seconds the whole measurement takes (for skips and
--dry-run); run(prob, niter) -> Result (centroids (B, K, d) float32 on the
host, ms_per_iter, train_s, peak_mem_bytes, notes).

Timing methods (documented in bench/compare.py's docstring):
- GPU implementations that take device-resident points (flashkmeans-gpu-*,
  flash-kmeans*, torch-lloyd): ms/iter = (t(niter + 2) - t(2)) / niter with
  torch.cuda.synchronize around each call, median of 3, after a warm-up call:
  the method of bench/flash_kmeans_ref.py and bench_lloyd.
- FAISS and flashkmeans-cpu: ms/iter from a training run's own clock
  (iteration_stats[i].time, cumulative seconds since train() began; checked
  to be non-decreasing): the median of time[i] - time[i-1] over iterations
  3..niter, so the first two iterations (setup, first touch) are left out as
  on the GPU and a burst of load from another process on a shared machine
  moves it little. The CPU implementations run --rounds times, alternating
  (cpu mode: 3), and report the median round.
- train_s: wall time of one training run from host numpy (upload included),
  after the warm-up above (JIT compilation and CUDA context creation excluded
  for everyone).
- B > 1: FAISS and flashkmeans-cpu have no batch API; they run the B
  problems one after another (ms/iter and train_s are sums over the B).
"""

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from compare_measure import (ELT, GPU_ASSIGN_FLOPS, GPU_ITERS, H2D_BYTES_PER_S, UPDATE_BYTES_PER_S,
                             Optional, cpu_rate)

BIG = 1 << 30  # max_points_per_centroid: no subsampling, every point clustered


@dataclass
class Result:
    centroids: np.ndarray  # (B, K, d) float32
    ms_per_iter: float
    train_s: float
    peak_mem_bytes: int = None
    notes: dict = field(default_factory=dict)


# --- implementations -----------------------------------------------------------------


class Impl:
    name = "?"
    on_gpu = False
    needs = ()  # Optional names

    def available(self):
        return Optional.first_missing(self.needs)

    def exact(self, cfg):
        return False

    def estimate_s(self, cfg, niter, threads):
        raise NotImplementedError

    def run(self, prob, niter, ctx):
        raise NotImplementedError


def _ms_from_stats(times):
    """ms/iter from cumulative per-iteration times (seconds): the median
    iteration among iterations 3..n."""
    times = [float(t) for t in times]
    if len(times) < 4:
        raise ValueError(f"need niter >= 4 for the per-iteration time, got {len(times)} iterations")
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"iteration_stats.time is not cumulative: {times[:5]}")
    return statistics.median(b - a for a, b in zip(times[1:], times[2:])) * 1e3


def _problems_in_turn(prob, ctx, on_gpu, train_one):
    """Implementations with no batch API run the B problems one after
    another; ms/iter and train s are summed. train_one(b) -> (centroids,
    cumulative per-iteration times in seconds, as in iteration_stats)."""
    cent = np.empty_like(prob.init)
    ms = train = 0.0
    with ctx.sampler(on_gpu) as mem:
        for b in range(prob.cfg.B):
            t0 = time.perf_counter()
            cent[b], times = train_one(b)
            train += time.perf_counter() - t0
            ms += _ms_from_stats(times)
    return Result(cent, ms, train, mem.peak)


def _faiss_cp(faiss, niter, seed):
    cp = faiss.ClusteringParameters()
    cp.niter = niter
    cp.max_points_per_centroid = BIG
    cp.min_points_per_centroid = 1
    cp.seed = seed
    if hasattr(cp, "early_stop_threshold"):
        cp.early_stop_threshold = -1.0  # faiss >= 1.14.2 stops at a fixed point otherwise
    return cp


class FaissClustering(Impl):
    """faiss.Clustering + IndexFlatL2 (CPU) or GpuIndexFlatL2, init centroids
    copied into clus.centroids (FAISS starts from them). B problems in turn."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.name = "faiss-gpu-clustering" if gpu else "faiss-cpu"
        self.on_gpu = gpu
        self.needs = ("faiss_gpu",) if gpu else ("faiss",)

    def exact(self, cfg):
        return True

    def estimate_s(self, cfg, niter, threads):
        if self.gpu:
            return faiss_gpu_estimate_s(cfg, niter)
        return niter * cfg.flops_per_iter() / cpu_rate("faiss-cpu", threads) + 0.05 * cfg.B

    def _index(self, faiss, d):
        if not self.gpu:
            return faiss.IndexFlatL2(d), None
        res = faiss.StandardGpuResources()
        conf = faiss.GpuIndexFlatConfig()
        conf.device = 0
        return faiss.GpuIndexFlatL2(res, d, conf), res

    def run(self, prob, niter, ctx):
        faiss = Optional.get("faiss")
        cfg = prob.cfg

        def train_one(b):
            index, res = self._index(faiss, cfg.d)  # res must outlive the index
            clus = faiss.Clustering(cfg.d, cfg.K, _faiss_cp(faiss, niter, ctx.seed))
            faiss.copy_array_to_vector(prob.init[b].ravel(), clus.centroids)
            clus.train(prob.x32[b], index)
            st = clus.iteration_stats
            times = [st.at(i).time for i in range(st.size())]
            return faiss.vector_float_to_array(clus.centroids).reshape(cfg.K, cfg.d), times

        return _problems_in_turn(prob, ctx, self.on_gpu, train_one)


def faiss_gpu_estimate_s(cfg, niter):
    # REFERENCE.md: 130.6 ms/iter at 1M x 1024 x 128, 144.2 at 1M x 8192, 951 at 8M:
    # ~0.96 ns per host element (copy + CPU update) + 14 fs per multiply-add
    per = 9.6e-10 * cfg.B * cfg.N * cfg.d + 1.42e-14 * cfg.B * cfg.N * cfg.K * cfg.d
    return niter * per + 0.5 * cfg.B


class FaissKmeansGpu(Impl):
    """faiss.Kmeans(d, k, gpu=True, ...): the one-liner FAISS users write."""

    name = "faiss-gpu-kmeans"
    on_gpu = True
    needs = ("faiss_gpu",)

    def exact(self, cfg):
        return True

    def estimate_s(self, cfg, niter, threads):
        return faiss_gpu_estimate_s(cfg, niter)

    def run(self, prob, niter, ctx):
        faiss = Optional.get("faiss")
        cfg = prob.cfg
        kw = dict(gpu=True, niter=niter, max_points_per_centroid=BIG, min_points_per_centroid=1,
                  seed=ctx.seed)
        if hasattr(faiss.ClusteringParameters(), "early_stop_threshold"):
            kw["early_stop_threshold"] = -1.0
        cent = np.empty_like(prob.init)
        ms = train = 0.0
        with ctx.sampler(self.on_gpu) as mem:
            for b in range(cfg.B):
                t0 = time.perf_counter()
                km = faiss.Kmeans(cfg.d, cfg.K, **kw)
                km.train(prob.x32[b], init_centroids=prob.init[b])
                train += time.perf_counter() - t0
                ms += _ms_from_stats([s["time"] for s in km.iteration_stats])
                cent[b] = km.centroids
                del km
        return Result(cent, ms, train, mem.peak, {"faiss_gpus": faiss.get_num_gpus()})


def _fk_clustering_kw(niter, seed):
    return dict(niter=niter, max_points_per_centroid=BIG, min_points_per_centroid=1, seed=seed,
                early_stop_threshold=-1.0)


class FlashkmeansCpu(Impl):
    name = "flashkmeans-cpu"
    needs = ("flashkmeans",)

    def exact(self, cfg):
        return True

    def estimate_s(self, cfg, niter, threads):
        return niter * cfg.flops_per_iter() / cpu_rate("flashkmeans-cpu", threads) + 0.05 * cfg.B

    def run(self, prob, niter, ctx):
        fk = Optional.get("flashkmeans")
        cfg = prob.cfg

        def train_one(b):
            km = fk.Kmeans(cfg.d, cfg.K, backend="cpu", **_fk_clustering_kw(niter, ctx.seed))
            km.train(prob.x32[b], init_centroids=prob.init[b])
            return km.centroids, [s["time"] for s in km.iteration_stats]

        return _problems_in_turn(prob, ctx, self.on_gpu, train_one)


class FlashkmeansGpu(Impl):
    """flashkmeans CUDA backend in one precision mode. ms/iter: batch_kmeans
    on a torch tensor on the device (used in place); train_s: Kmeans.train
    (B = 1) or batch_kmeans (B > 1) from host memory."""

    MODES = {  # mode: (dtype option, precision option)
        "fp32": ("float32", "exact"),
        "tf32": ("float32", "tf32"),
        "fp16": ("float16", None),
        "bf16": ("bfloat16", None),
    }
    on_gpu = True
    needs = ("flashkmeans_cuda", "torch_cuda")

    def __init__(self, mode):
        self.mode = mode
        self.name = f"flashkmeans-gpu-{mode}"
        self.dtype, self.precision = self.MODES[mode]

    def exact(self, cfg):
        return self.mode == "fp32"

    def options(self):
        opts = {"backend": "cuda", "dtype": self.dtype}
        if self.precision:
            opts["precision"] = self.precision
        return opts

    def estimate_s(self, cfg, niter, threads):
        rate = GPU_ASSIGN_FLOPS["flashkmeans"]["tf32" if self.mode == "tf32" else self.dtype]
        per = cfg.flops_per_iter() / rate + cfg.B * cfg.N * cfg.d * ELT[self.dtype] / UPDATE_BYTES_PER_S
        return GPU_ITERS(niter) * (per + 2e-4) + cfg.B * cfg.N * cfg.d * 4 / H2D_BYTES_PER_S + 1.0

    def run(self, prob, niter, ctx):
        fk = Optional.get("flashkmeans")
        gpu, cfg = ctx.gpu, prob.cfg
        opts = self.options()
        xd = gpu.points(prob, self.dtype)
        ms, samples = gpu.ms_per_iter(
            lambda it: fk.batch_kmeans(xd, cfg.K, niter=it, init_centroids=prob.init, **opts), niter)
        gpu.free()  # the in-place runs' temporaries (xd stays cached for the other modes)
        # end to end from the host: the stored 16-bit data when the mode computes
        # in the configuration's dtype, else float32 (the engine converts on the device)
        host = prob.x32
        if self.dtype != "float32" and prob.host(self.dtype) is not None:
            host = prob.x16 if self.dtype == "float16" else gpu.from_host(prob, self.dtype, device=False)
        with ctx.sampler(self.on_gpu) as mem:
            t0 = time.perf_counter()
            if cfg.B == 1:
                km = fk.Kmeans(cfg.d, cfg.K, **_fk_clustering_kw(niter, ctx.seed), **opts)
                km.train(host[0], init_centroids=prob.init[0])
                cent = km.centroids[None]
            else:
                cent = fk.batch_kmeans(host, cfg.K, niter=niter, init_centroids=prob.init, **opts).centroids
            gpu.torch.cuda.synchronize()
            train = time.perf_counter() - t0
        return Result(np.asarray(cent, np.float32), ms, train, mem.peak, {"ms_samples": samples})


class FlashKmeansRef(Impl):
    """Flash-KMeans (the flash_kmeans wheel): batch_kmeans_Euclid on device
    points in the configuration's dtype (fp32 input runs on TF32), tol=-1 so
    it never stops early, the shared init; or its FlashKMeans class, which
    has no init argument (its own random init with replacement, seed 0): its
    objective is not from the shared init."""

    on_gpu = True
    needs = ("flash_kmeans",)

    def __init__(self, use_class):
        self.use_class = use_class
        self.name = "flash-kmeans-class" if use_class else "flash-kmeans"

    def estimate_s(self, cfg, niter, threads):
        rate = GPU_ASSIGN_FLOPS["flash-kmeans"][cfg.dtype]
        per = cfg.flops_per_iter() / rate + cfg.B * cfg.N * cfg.d * ELT[cfg.dtype] / UPDATE_BYTES_PER_S
        # + Triton's compilation for each new shape (the class reuses flash-kmeans's kernels)
        jit = 2.0 if self.use_class else 8.0
        return GPU_ITERS(niter) * (per + 3e-4) + cfg.B * cfg.N * cfg.d * 4 / H2D_BYTES_PER_S + jit

    def _call(self, fkm, torch, x, K, iters, c0, seed):
        if self.use_class:
            km = fkm.FlashKMeans(x.shape[-1], K, niter=iters, tol=-1.0, seed=seed)
            km.train(x)
            return km.centroids_b
        return fkm.batch_kmeans_Euclid(x, K, max_iters=iters, tol=-1.0, init_centroids=c0.clone())[1]

    def run(self, prob, niter, ctx):
        fkm = Optional.get("flash_kmeans")
        gpu, cfg = ctx.gpu, prob.cfg
        torch = gpu.torch
        xd = gpu.points(prob, cfg.dtype)
        c0 = torch.from_numpy(prob.init).to(gpu.dev, xd.dtype)
        ms, samples = gpu.ms_per_iter(lambda it: self._call(fkm, torch, xd, cfg.K, it, c0, 0), niter)
        gpu.free()
        host = gpu.from_host(prob, cfg.dtype, device=False)
        if cfg.B == 1 and self.use_class:
            host = host[0]  # (N, d): its user path (N > 2^20 streams from the host)
        with ctx.sampler(self.on_gpu) as mem:
            t0 = time.perf_counter()
            if self.use_class:  # it uploads the host tensor itself
                x, c0 = host, None
            else:
                x, c0 = host.to(gpu.dev), torch.from_numpy(prob.init).to(gpu.dev).to(host.dtype)
            cent = self._call(fkm, torch, x, cfg.K, niter, c0, 0)
            torch.cuda.synchronize()
            train = time.perf_counter() - t0
        cent = cent.reshape(cfg.B, cfg.K, cfg.d).float().cpu().numpy()
        notes = {"ms_samples": samples}
        if self.use_class:
            notes["init"] = "own (FlashKMeans has no init argument)"
        return Result(cent, ms, train, mem.peak, notes)


class TorchLloyd(Impl):
    """Plain PyTorch Lloyd: the full (B, N, K) distance matrix
    ||x||^2 - 2 x.c + ||c||^2 in the data's dtype (fp32 with TF32 off),
    argmin, index_add_ of the points (float32) and bincount; an empty cluster
    keeps its centroid. Runs out of memory where the matrix does not fit."""

    name = "torch-lloyd"
    on_gpu = True
    needs = ("torch_cuda",)

    def exact(self, cfg):
        return cfg.dtype == "float32"

    def estimate_s(self, cfg, niter, threads):
        elems = cfg.B * cfg.N * cfg.K
        if elems * ELT[cfg.dtype] > 75e9:
            return 5.0  # the distance matrix does not fit: out of memory at once
        gemm = cfg.flops_per_iter() / (51e12 if cfg.dtype == "float32" else 500e12)
        per = 1.35e-11 * elems * (1.2 if cfg.dtype == "float32" else 1.0) + gemm
        return GPU_ITERS(niter) * per + cfg.B * cfg.N * cfg.d * 4 / H2D_BYTES_PER_S + 1.0

    @staticmethod
    def lloyd(torch, x, c0, iters):
        B, N, d = x.shape
        K = c0.shape[1]
        c = c0.clone()
        x_sq = x.float().pow(2).sum(-1)  # (B, N)
        offsets = (torch.arange(B, device=x.device) * K)[:, None]
        for _ in range(iters):
            dist = torch.bmm(x, c.to(x.dtype).transpose(1, 2))  # (B, N, K)
            dist.mul_(-2).add_(x_sq[:, :, None].to(x.dtype)).add_(c.pow(2).sum(-1)[:, None, :].to(x.dtype))
            labels = (dist.argmin(-1) + offsets).reshape(-1)
            del dist
            sums = torch.zeros(B * K, d, device=x.device, dtype=torch.float32)
            sums.index_add_(0, labels, x.reshape(-1, d).float())
            counts = torch.bincount(labels, minlength=B * K).reshape(B, K)
            new = sums.reshape(B, K, d) / counts.clamp_min(1)[:, :, None]
            c = torch.where((counts > 0)[:, :, None], new, c)
        return c

    def run(self, prob, niter, ctx):
        gpu, cfg = ctx.gpu, prob.cfg
        torch = gpu.torch
        tf32 = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False  # exact fp32
        try:
            xd = gpu.points(prob, cfg.dtype)
            c0 = torch.from_numpy(prob.init).to(gpu.dev)
            ms, samples = gpu.ms_per_iter(lambda it: self.lloyd(torch, xd, c0, it), niter)
            gpu.free()
            host = gpu.from_host(prob, cfg.dtype, device=False)
            with ctx.sampler(self.on_gpu) as mem:
                t0 = time.perf_counter()
                c = self.lloyd(torch, host.to(gpu.dev), torch.from_numpy(prob.init).to(gpu.dev), niter)
                torch.cuda.synchronize()
                train = time.perf_counter() - t0
            return Result(c.cpu().numpy(), ms, train, mem.peak, {"ms_samples": samples})
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32


def implementations(mode):
    """The implementations of a mode, in the order they run (the objective
    reference first)."""
    cpu = [FlashkmeansCpu(), FaissClustering(gpu=False)]
    if mode == "cpu":
        return cpu
    return cpu + [FlashkmeansGpu(m) for m in FlashkmeansGpu.MODES] + [
        FaissKmeansGpu(), FaissClustering(gpu=True),
        FlashKmeansRef(use_class=False), FlashKmeansRef(use_class=True), TorchLloyd(),
    ]
