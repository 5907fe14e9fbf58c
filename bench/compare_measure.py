"""Measuring tools shared by bench/compare.py's implementations: guarded
imports of the optional packages, peak-memory samplers, the GPU helper (device
copies of the points, the device timing method, nvml) and the one objective
evaluator, plus the cost model behind the skips and --dry-run.

Device timing (Gpu.ms_per_iter): (t(niter + 2) - t(2)) / niter with
torch.cuda.synchronize around each call, median of 3, after a warm-up call:
the method of bench/flash_kmeans_ref.py and bench_lloyd, so ratios are fair.
"""

import gc
import os
import statistics
import threading
import time

import numpy as np

class Unavailable(Exception):
    """The implementation cannot run here (missing package, no GPU)."""


def _short(e):
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0][:200] if msg else ''}"


def is_oom(e):
    name = type(e).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(e).lower()


# --- optional packages, imported once, with the reason when they are missing ------


class Optional:
    """Lazy guarded imports: get(name) returns the module or raises
    Unavailable('unavailable: <reason>')."""

    _cache = {}

    @classmethod
    def get(cls, name):
        if name not in cls._cache:
            try:
                if name == "faiss_gpu":
                    faiss = cls.get("faiss")
                    n = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
                    if n <= 0:
                        raise Unavailable(f"faiss {faiss.__version__} has no GPU support or sees no GPU")
                    mod = faiss
                elif name == "torch_cuda":
                    torch = cls.get("torch")
                    if not torch.cuda.is_available():
                        raise Unavailable("torch sees no CUDA GPU")
                    mod = torch
                elif name == "flashkmeans_cuda":
                    fk = cls.get("flashkmeans")
                    if not fk.cuda_compiled():
                        raise Unavailable("this flashkmeans build has no CUDA kernels")
                    if not fk.cuda_available():
                        raise Unavailable("flashkmeans sees no CUDA device")
                    mod = fk
                elif name == "flash_kmeans":
                    cls.get("torch_cuda")
                    import flash_kmeans
                    try:  # the package falls back to a torch version when Triton fails
                        import flash_kmeans.kmeans_triton_impl  # noqa: F401
                    except Exception as e:
                        raise Unavailable(f"flash_kmeans Triton kernels do not import ({_short(e)})")
                    mod = flash_kmeans
                else:
                    mod = __import__(name)
                cls._cache[name] = mod
            except Unavailable as e:
                cls._cache[name] = e
            except Exception as e:  # ImportError, or a broken install (OSError, ...)
                cls._cache[name] = Unavailable(f"import {name} failed: {_short(e)}")
        mod = cls._cache[name]
        if isinstance(mod, Unavailable):
            raise mod
        return mod

    @classmethod
    def reason(cls, name):
        try:
            cls.get(name)
            return None
        except Unavailable as e:
            return str(e)

    @classmethod
    def first_missing(cls, names):
        """Why the first unavailable package of `names` is missing, or None."""
        for n in names:
            r = cls.reason(n)
            if r:
                return r
        return None


def host_threads():
    try:
        return int(Optional.get("faiss").omp_get_max_threads())
    except Exception:
        return os.cpu_count() or 1


# --- peak memory -------------------------------------------------------------------


class PeakSampler:
    """Samples read() every ~2 ms in a background thread while the body runs;
    peak = max sample - the sample taken before. The engines release the GIL
    while they run, so the thread keeps sampling."""

    def __init__(self, read, period=0.002):
        self.read, self.period = read, period
        self.peak = None

    def __enter__(self):
        self.base = self.read()
        self.max = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.max = max(self.max, self.read())
            time.sleep(self.period)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.max = max(self.max, self.read())
        self.peak = int(self.max - self.base)
        return False


class NullSampler:
    """No way to measure here: peak None."""

    peak = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --- the GPU side: device copies, timing, nvml, the objective ---------------------


class Gpu:
    """torch + pynvml on CUDA device 0; caches each configuration's points on
    the device per dtype (dropped between configurations)."""

    def __init__(self):
        self.torch = Optional.get("torch_cuda")
        self.dev = self.torch.device("cuda", 0)
        self.cache = {}
        self.nvml = None
        self.nvml_reason = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml_handle = self._nvml_handle(pynvml)
            self.nvml = pynvml
        except Exception as e:
            self.nvml_reason = f"pynvml: {_short(e)}"

    def _nvml_handle(self, pynvml):
        # NVML numbers devices without CUDA_VISIBLE_DEVICES: match by UUID
        uuid = getattr(self.torch.cuda.get_device_properties(0), "uuid", None)
        if uuid is not None:
            want = str(uuid).lower().removeprefix("gpu-")
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                got = pynvml.nvmlDeviceGetUUID(h)
                got = got.decode() if isinstance(got, bytes) else got
                if got.lower().removeprefix("gpu-") == want:
                    return h
        vis = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
        return pynvml.nvmlDeviceGetHandleByIndex(int(vis) if vis.isdigit() else 0)

    def used_bytes(self):
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.nvml_handle).used)

    def sampler(self):
        """Peak device memory (all of the device's used memory, minus before)."""
        return NullSampler() if self.nvml is None else PeakSampler(self.used_bytes)

    def tensor_dtype(self, dtype):
        return {"float32": self.torch.float32, "float16": self.torch.float16,
                "bfloat16": self.torch.bfloat16}[dtype]

    def from_host(self, prob, dtype, device=True):
        """prob's points as a torch tensor in `dtype` (B, N, d): on the device,
        or on the host (pageable) for end-to-end runs. 16-bit data that the
        configuration stores in another dtype is converted from float32."""
        torch = self.torch
        h = prob.host(dtype)
        if h is None:
            t = torch.from_numpy(prob.x32)
            return t.to(self.dev).to(self.tensor_dtype(dtype)) if device else t.to(self.tensor_dtype(dtype))
        t = torch.from_numpy(h.view(np.int16)).view(torch.bfloat16) if dtype == "bfloat16" else torch.from_numpy(h)
        return t.to(self.dev) if device else t

    def points(self, prob, dtype):
        key = (prob.cfg.name, dtype)
        if key not in self.cache:
            self.cache[key] = self.from_host(prob, dtype)
        return self.cache[key]

    def drop(self):
        self.cache.clear()
        self.free()

    def free(self):
        gc.collect()
        self.torch.cuda.synchronize()
        self.torch.cuda.empty_cache()

    def wall_s(self, fn, *args):
        self.torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        self.torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    def ms_per_iter(self, iters, niter, reps=3):
        """(t(niter + 2) - t(2)) / niter, median of `reps`, after a warm-up:
        iters(n) runs n iterations on device-resident points."""
        iters(2)
        samples = []
        for _ in range(reps):
            t_long, _ = self.wall_s(iters, niter + 2)
            t_short, _ = self.wall_s(iters, 2)
            samples.append((t_long - t_short) / niter * 1e3)
        return statistics.median(samples), samples

    def objective(self, x, centroids):
        """sum over points of min_k ||x - c_k||^2 for x (B, N, d), a float32
        tensor on the device, and centroids (B, K, d): float64, in chunks of
        rows."""
        torch = self.torch
        total = 0.0
        B, N, _ = x.shape
        for b in range(B):
            c = torch.from_numpy(np.ascontiguousarray(centroids[b])).to(self.dev, torch.float64)
            c_sq = (c * c).sum(1)
            rows = max(1, min(N, (1 << 30) // (8 * c.shape[0])))
            for r0 in range(0, N, rows):
                xc = x[b, r0 : r0 + rows].double()
                m = torch.addmm(c_sq[None, :], xc, c.T, alpha=-2).amin(1)
                total += float((m + (xc * xc).sum(1)).clamp_min(0).sum())
        return total


def objective_numpy(x32, centroids):
    """The same evaluator on the host (cpu mode): float64, chunked."""
    total = 0.0
    B, N, _ = x32.shape
    for b in range(B):
        c = centroids[b].astype(np.float64)
        c_sq = (c * c).sum(1)
        rows = max(256, min(N, (1 << 24) // c.shape[0]))
        for r0 in range(0, N, rows):
            xc = x32[b, r0 : r0 + rows].astype(np.float64)
            m = (c_sq[None, :] - 2.0 * (xc @ c.T)).min(1)
            total += float(np.maximum(m + (xc * xc).sum(1), 0).sum())
    return total


# --- cost model: seconds for one whole measurement ------------------------------------
# Per-iteration models calibrated on REFERENCE.md (H200; H100 within a few %)
# and on the 2-core dev VM; used to skip what would take too long and for --dry-run.

GPU_ITERS = lambda niter: 4 * niter + 14  # noqa: E731  warm-up 2, 3 x (niter+2 + 2), end-to-end niter
ELT = {"float32": 4, "float16": 2, "bfloat16": 2}
GPU_ASSIGN_FLOPS = {  # FLOP/s of the assignment
    "flashkmeans": {"float16": 290e12, "bfloat16": 290e12, "tf32": 100e12, "float32": 60e12},
    "flash-kmeans": {"float16": 350e12, "bfloat16": 350e12, "float32": 200e12},
}
UPDATE_BYTES_PER_S = 1.2e12
H2D_BYTES_PER_S = 10e9  # pageable host memory
# CPU FLOP/s per thread, dev VM (2 threads, faiss-cpu 1.15.1 wheel): faiss 73 G,
# flashkmeans 57 G. On the GPU host REFERENCE.md has FAISS CPU at 211 GFLOP/s
# with 16 threads: 13 G per thread; with more than 2 threads that figure is used
# for both (flashkmeans CPU was not measured there).
CPU_FLOPS_PER_THREAD = {"faiss-cpu": 73e9, "flashkmeans-cpu": 57e9}
CPU_FLOPS_PER_THREAD_MANY = 13.2e9


def cpu_rate(name, threads):
    per = CPU_FLOPS_PER_THREAD[name] if threads <= 2 else CPU_FLOPS_PER_THREAD_MANY
    return per * threads


def objective_estimate_s(cfg, on_gpu, threads):
    if on_gpu:
        return cfg.flops_per_iter() / 40e12 + 0.05
    return cfg.flops_per_iter() / (10e9 * threads) + 0.05
